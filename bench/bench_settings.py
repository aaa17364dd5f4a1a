"""Settings for the benchmarks: the default (sandbox) settings with a few knobs for many concurrent writers.

The benchmark points CARREL_VAR_DIR (and DATABASE_URL / REDIS_URL) at its own throwaway places before
this module loads, so the SQLite file, the file cache and the filesystem broker are the run's own.
"""

import os

from platform_site.settings import *  # noqa: F403
from platform_site.settings import DATABASES, REDIS_URL, env_bool

# Measure the code as it runs in production: DEBUG keeps every SQL query in memory.
DEBUG = env_bool("DJANGO_DEBUG", False)

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The web server and the workers' threads write at once. A transaction that reads and then writes
    # (every launch does) fails at once with "database is locked" when another connection is writing,
    # whatever the timeout, unless it takes the write lock when it begins (IMMEDIATE). Then it waits,
    # up to the timeout (the default 5 s is too short for a burst of launches).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": int(os.environ.get("CARREL_BENCH_SQLITE_TIMEOUT", "60")),
            "transaction_mode": "IMMEDIATE",
        }
    )
    if env_bool("CARREL_BENCH_SQLITE_WAL", False):
        # Write-ahead logging: readers no longer wait for the writer (an experiment; the sandbox does not).
        DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL;"

if not REDIS_URL:
    # The EC2 call counters must be shared by the workers and the benchmark, and exact: the file cache's
    # incr is a read-modify-write, so concurrent workers would lose counts. This one takes a file lock.
    CACHES = {
        "default": {
            "BACKEND": "bench.locked_file_cache.LockedFileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),  # noqa: F405
        }
    }
