"""Settings for bench/lists: production's (DEBUG off, PostgreSQL, Redis, the access log on), plus a copy of every
access line as one JSON object per line in CARREL_BENCH_ACCESS_LOG, which the bench reads the server's time and
the queries of each request from.

bench/lists_run.py sets the environment production requires (secret key, allowed hosts, public URL) and raises the
rate limits (CARREL_RATE_LIMIT_*) before this module loads.
"""

import json
import logging
import os
from typing import Any

from platform_site.settings.production import *  # noqa: F403
from platform_site.settings.production import LOGGING

# The same dictionary, typed for the additions below.
_logging: dict[str, Any] = LOGGING

ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "queries")


class AccessJsonFormatter(logging.Formatter):
    """The access line's fields (as the middleware gives them, duration to 0.1 ms) and the worker's pid."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {name: getattr(record, name, None) for name in ACCESS_FIELDS}
        entry["time"] = record.created
        entry["pid"] = record.process
        return json.dumps(entry)


if os.environ.get("CARREL_BENCH_ACCESS_LOG"):
    _logging["formatters"]["bench_access"] = {"()": AccessJsonFormatter}
    _logging["handlers"]["bench_access"] = {
        "class": "logging.FileHandler",
        "filename": os.environ["CARREL_BENCH_ACCESS_LOG"],
        "formatter": "bench_access",
        "filters": ["redact_secrets"],
    }
    _logging["loggers"]["carrel.access"] = {
        **_logging["loggers"]["carrel.access"],
        "handlers": ["bench_access"],
        # The console gets the plain line as in production (the bench keeps it in the server's log file).
        "propagate": True,
    }
