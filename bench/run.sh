#!/usr/bin/env bash
# Launch workspaces through the API against the sandbox cloud with real Celery workers; print the
# wall time to all-running and the EC2 API calls per workspace. Arguments go to launch_workspaces.py:
#   bench/run.sh --count 100 --workers 2
source "$(dirname "$0")/../scripts/_venv.sh"
exec .venv/bin/python bench/launch_workspaces.py "$@"
