"""Settings for the benchmarks: the default (sandbox) settings, measured as production runs them.

The benchmark points CARREL_VAR_DIR (and DATABASE_URL / REDIS_URL) at its own throwaway places before
this module loads, so the SQLite file, the file cache and the filesystem broker are the run's own.
"""

import os

from platform_site.settings import *  # noqa: F403
from platform_site.settings import DATABASES, env_bool

# Measure the code as it runs in production: DEBUG keeps every SQL query in memory.
DEBUG = env_bool("DJANGO_DEBUG", False)

# Count the EC2 calls per operation in the shared cache (the report reads them with api_call_counts);
# no fault injection.
CARREL_CLOUD_CLIENT_HOOKS = ["tests.cloud_hooks.count_calls"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"]["timeout"] = int(os.environ.get("CARREL_BENCH_SQLITE_TIMEOUT", "60"))
    if env_bool("CARREL_BENCH_SQLITE_WAL", False):
        # Write-ahead logging: readers no longer wait for the writer (an experiment; the sandbox does not).
        DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL;"
