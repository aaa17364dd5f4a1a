"""Who is asking and from where, for the current request: read by audit records, logs and limits.

Services need the client IP and request id for the audit trail without taking a request argument,
so the middleware publishes them in a context variable.
"""

import contextvars
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None


_EMPTY = RequestContext()
_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("carrel_request_context", default=None)


def current() -> RequestContext:
    return _current.get() or _EMPTY


def activate(context: RequestContext) -> contextvars.Token:
    return _current.set(context)


def deactivate(token: contextvars.Token) -> None:
    _current.reset(token)


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the address the last trusted proxy saw when proxies are configured."""
    proxies = settings.CARREL_TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None


def request_id_for(request: HttpRequest) -> str:
    """Keep a well-formed X-Request-ID from the caller (for tracing across services), else mint one."""
    supplied = request.META.get("HTTP_X_REQUEST_ID", "")
    if _REQUEST_ID_RE.match(supplied):
        return supplied
    return f"req_{uuid.uuid4().hex}"
