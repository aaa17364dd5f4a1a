#!/usr/bin/env bash
# Time the idle sweep over 10,000 running workspaces with heartbeats in a fresh PostgreSQL database (issue #11):
#   bench/idle.sh                 # --count 10000 --small 1000 --runs 7
#   bench/idle.sh --count 2000    # a quick check
# PostgreSQL: CARREL_BENCH_PG (default postgres://postgres@127.0.0.1:5432); the database carrel_bench_idle is
# dropped and created before, dropped after (--keep keeps it).
source "$(dirname "$0")/../scripts/_venv.sh"
exec .venv/bin/python bench/idle_sweep.py "$@"
