#!/usr/bin/env bash
# Start the Carrel sandbox: web console + API + Celery worker + beat, SQLite, no servers needed.
source "$(dirname "$0")/_venv.sh"
export CARREL_SANDBOX=1
export ACCOUNT_EMAIL_VERIFICATION="${ACCOUNT_EMAIL_VERIFICATION:-optional}"
exec .venv/bin/python manage.py sandbox "$@"
