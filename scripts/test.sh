#!/usr/bin/env bash
# Run the whole test suite (plus lint and the migrations check). Uses PostgreSQL and Redis when
# DATABASE_URL / REDIS_URL are set (CI sets both), SQLite and a local cache otherwise.
source "$(dirname "$0")/_venv.sh"
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check --quiet .
echo "==> mypy"
# The files and settings are in pyproject.toml ([tool.mypy]). The django-stubs plugin imports the test settings,
# which make a broker folder per run id: give mypy a fixed one instead of a new folder per run.
CARREL_TEST_RUN_ID=mypy .venv/bin/mypy
echo "==> makemigrations --check"
env -u DATABASE_URL .venv/bin/python manage.py makemigrations --check --dry-run
echo "==> pytest (database: ${DATABASE_URL:-sqlite}, redis: ${REDIS_URL:-none})"
exec .venv/bin/pytest "$@"
