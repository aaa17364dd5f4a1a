"""PostgreSQL connections: timestamps read by psycopg's compiled loader.

Django reads every `timestamp with time zone` through a loader written in Python (a regular expression and a
`replace(tzinfo=…)` per value), about five times slower than psycopg's own compiled loader; a page of 100
workspaces reads 300 of them. When the session's time zone is UTC (always under USE_TZ with the default
DATABASES TIME_ZONE: Django sets it when it connects), the compiled loader returns the very same values
(`datetime.timezone.utc` included), so each new connection gets it, under the class attribute Django checks
(`timezone`) before it installs its own loader on a cursor.
"""

import datetime as dt
from typing import Any

try:
    import psycopg
    from psycopg.pq import Format
    from psycopg.types.datetime import TimestamptzLoader
except ImportError:  # pragma: no cover - psycopg is a requirement; SQLite-only setups may lack it
    psycopg = None

_compiled: Any = None
if psycopg is not None:
    _found = psycopg.adapters.get_loader(psycopg.adapters.types["timestamptz"].oid, Format.TEXT)
    # Only psycopg's C implementation (psycopg[binary] or [c]) has a faster loader than the Python one.
    _compiled = None if _found is None or issubclass(_found, TimestamptzLoader) else _found

    class UTCTimestamptzLoader(TimestamptzLoader):
        """psycopg's compiled timestamptz loader, under the attribute Django's cursor compares (`timezone`)."""

        timezone = dt.UTC

        def __init__(self, oid: int, context: Any = None):
            super().__init__(oid, context)
            self.load = _compiled(oid, context).load  # type: ignore[method-assign]


def use_compiled_timestamp_loader(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created: on a PostgreSQL connection whose session is in UTC, read timestamps with the
    compiled loader."""
    if _compiled is None or connection.vendor != "postgresql" or connection.timezone is not dt.UTC:
        return
    raw = connection.connection
    if raw.info.timezone is not dt.UTC:  # the session's time zone, as psycopg's loader reads it
        return
    raw.adapters.register_loader("timestamptz", UTCTimestamptzLoader)
