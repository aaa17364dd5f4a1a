#!/usr/bin/env bash
# Load 1,000,000 ledger rows into a fresh PostgreSQL database and time the money endpoints (issue #9):
#   bench/money/run.sh                  # --rows 1000000 --workspaces 200 --projects 20 --requests 20
#   bench/money/run.sh --rows 100000    # a quick check
# PostgreSQL: CARREL_BENCH_PG (default postgres://postgres@127.0.0.1:5432); the database carrel_bench_money is
# dropped and created before, dropped after (--keep keeps it). See bench/money/README.md.
source "$(dirname "$0")/../../scripts/_venv.sh"
exec .venv/bin/python bench/money/money_bench.py "$@"
