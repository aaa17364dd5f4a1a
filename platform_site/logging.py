"""Log formats and filters named by settings.LOGGING.

Every request writes exactly one access line (`carrel.access`, see platform_site.middleware): its request id,
method, path with secrets redacted, status and duration. Django's `django.request` logger would add a second
line for every 4xx ("Not Found: /api/…", "Bad Request: …", sometimes with a traceback) and an "Internal Server
Error" line without a traceback for a 500 the API's exception handler has already logged with one;
`UncaughtServerErrorsOnly` keeps only what nothing else logs: the traceback of an exception no handler caught.

Two formats, chosen by CARREL_LOG_FORMAT: `plain` (one human-readable line) and `json` (one JSON object per
line, for a log collector). Both redact secrets from the whole formatted text, tracebacks included.
"""

import json
import logging
from datetime import UTC, datetime

from platform_site.middleware import redact_secrets

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# Fields an access line carries besides its message (platform_site.middleware.RequestContextMiddleware).
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "queries")


class UncaughtServerErrorsOnly(logging.Filter):
    """For `django.request`: keep a response's record only when it is a 5xx with its exception's traceback.

    4xx responses and 5xx answers that carry no traceback (the API's handler logged the exception already, or
    a view answered 503 on purpose) are in the access line. Records without a status are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if not isinstance(status, int):
            return True
        return status >= 500 and bool(record.exc_info)


class PlainFormatter(logging.Formatter):
    """`time LEVEL logger [request id] message`, then the traceback if any, secrets redacted."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return redact_secrets(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id; for access lines also method, path,
    status and duration_ms; `exception` (the traceback) when there is one. Other `extra` values are left out:
    they may be objects (Django puts the request there) or carry what should not be logged."""

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        entry: dict[str, object] = {
            "time": time.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_secrets(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or "-",
        }
        for field in ACCESS_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = redact_secrets(value) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = redact_secrets(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact_secrets(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)
