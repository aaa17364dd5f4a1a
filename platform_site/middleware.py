import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import connections
from django.http import HttpRequest, HttpResponse

from platform_site import request_context

# allauth's rate limits read the client address from this header (ALLAUTH_TRUSTED_CLIENT_IP_HEADER). The
# middleware always overwrites it with request_context.client_ip's answer, so allauth and Carrel agree on
# the address and a value the client sends under that name is never used.
CLIENT_IP_HEADER = "X-Carrel-Client-IP"
CLIENT_IP_META = "HTTP_" + CLIENT_IP_HEADER.upper().replace("-", "_")

access_logger = logging.getLogger("carrel.access")
security_logger = logging.getLogger("django.security.DisallowedHost")


class RequestContextMiddleware:
    """Gives every request an id (echoed as X-Request-ID) and publishes id and client IP.

    Under /api/ it also answers two kinds of bad request with the error envelope before anything else
    runs: a Host header not in ALLOWED_HOSTS (400 BAD_HOST) and a body larger than
    DATA_UPLOAD_MAX_MEMORY_SIZE (413 REQUEST_TOO_LARGE).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        request.request_id = request_context.request_id_for(request)
        request.client_ip = request_context.client_ip(request)
        request.META.pop(CLIENT_IP_META, None)
        if request.client_ip:
            request.META[CLIENT_IP_META] = request.client_ip
        request.__dict__.pop("headers", None)  # rebuilt from META on next use
        token = request_context.activate(
            request_context.RequestContext(request_id=request.request_id, ip=request.client_ip)
        )
        counter = QueryCounter()
        try:
            with counter.counting(enabled=settings.CARREL_ACCESS_LOG):
                response = self._refuse_early(request) or self.get_response(request)
        finally:
            request_context.deactivate(token)
        response["X-Request-ID"] = request.request_id
        if settings.CARREL_ACCESS_LOG:
            log_access(request, response, duration_ms=(time.monotonic() - started) * 1000, queries=counter.count)
        return response

    def _refuse_early(self, request: HttpRequest) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        from platform_site.api.errors import REMEDIATION_BAD_HOST, REMEDIATION_TOO_LARGE, json_error

        try:
            request.get_host()
        except DisallowedHost as exc:
            security_logger.warning("%s", exc)
            return json_error(
                request,
                status_code=400,
                code="BAD_HOST",
                message="The Host header names a host this server does not serve.",
                details="The host is not in ALLOWED_HOSTS.",
                remediation=REMEDIATION_BAD_HOST,
            )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return json_error(
                request,
                status_code=413,
                code="REQUEST_TOO_LARGE",
                message="The request body is too large.",
                details=f"The body has {length} bytes; the limit is {limit}.",
                remediation=REMEDIATION_TOO_LARGE,
            )
        # A NUL character can be stored by no text column of PostgreSQL's: refuse it before any query does.
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return json_error(
                request,
                status_code=400,
                code="BAD_REQUEST",
                message="The URL contains a NUL character.",
                details="Neither the path nor a query parameter may contain %00.",
                remediation="Remove the NUL (%00) from the URL.",
            )
        return None


class QueryCounter:
    """Counts the SQL statements a request runs, with DEBUG off too (`connection.queries` is kept only with
    DEBUG, and keeps every statement's text): one wrapper call per statement, on every configured database.

    The wrappers belong to the thread's connections, so the count is the request's own under threaded
    workers as well. A statement counts once whether it ran (execute) or was run many times (executemany).
    Statements run while a streaming response is sent, after the middleware has returned, are not counted.
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict) -> Any:
        self.count += 1
        return execute(sql, params, many, context)

    @contextlib.contextmanager
    def counting(self, *, enabled: bool = True) -> Iterator["QueryCounter"]:
        if not enabled:
            yield self
            return
        with contextlib.ExitStack() as stack:
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(self))
            yield self


def log_access(request: HttpRequest, response: HttpResponse, *, duration_ms: float, queries: int | None = None) -> None:
    """The request's one access line: `GET /path?query 404 12ms 3q`, secrets redacted.

    Method, path, status and duration are also record attributes (fields of the JSON format), and so are the
    number of SQL statements (`queries`, when counted) and the request id: the line is written after the
    request's context has ended.
    """
    path = redact_secrets(request.get_full_path())
    duration = round(duration_ms, 1)
    extra: dict[str, object] = {
        "request_id": getattr(request, "request_id", None) or "-",
        "method": request.method,
        "path": path,
        "status": response.status_code,
        "duration_ms": duration,
    }
    message, args = "%s %s %s %dms", [request.method, path, response.status_code, duration_ms]
    if queries is not None:
        message += " %dq"
        args.append(queries)
        extra["queries"] = queries
    access_logger.info(message, *args, extra=extra)


class RequestContextLogFilter(logging.Filter):
    """Gives every record a `request_id`: its own (the access line's), else the request Django logged it for,
    else the current request's, else "-" (work outside a request: Celery, management commands)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            request_id = getattr(getattr(record, "request", None), "request_id", None)
            record.request_id = request_id or request_context.current().request_id or "-"
        return True


# --- Secrets never reach a log ----------------------------------------------------------------------

# Query parameters that carry credentials: OAuth `code`/`state`/`access_token`, allauth keys, anything
# named like a token, secret, password, key or signature.
_SECRET_QUERY_RE = re.compile(
    r"(?i)(?P<name>[?&;](?:[\w.\-\[\]]*(?:token|secret|passw(?:or)?d|key|signature)|code|sig|state|auth)=)"
    r"[^&;#\s\"'<>]*"
)
# Paths that carry a secret as a segment: the e-mailed invitation link, allauth's e-mail confirmation
# and password reset links.
_SECRET_PATH_RE = re.compile(
    r"(?P<name>/(?:invitations/accept|accounts/confirm-email|accounts/password/reset/key)/)[^/?#\s\"'<>]+"
)
_BEARER_RE = re.compile(r"(?i)(?P<name>\bbearer\s+)[^\s\"',;]+")
_CARREL_TOKEN_RE = re.compile(r"(?P<name>\bcarrel_)[A-Za-z0-9_\-]{16,}")
REDACTED = "[redacted]"


def redact_secrets(text: str) -> str:
    """`text` (a URL, a request line, a log message) with credentials replaced by [redacted]."""
    for pattern in (_SECRET_QUERY_RE, _SECRET_PATH_RE, _BEARER_RE, _CARREL_TOKEN_RE):
        text = pattern.sub(lambda match: match.group("name") + REDACTED, text)
    return text


class RedactSecretsLogFilter(logging.Filter):
    """Rewrites a record's message with redact_secrets: request lines of runserver (`django.server`),
    `django.request` warnings, the access log, anything else that prints a URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report, not ours
            return True
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
