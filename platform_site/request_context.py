"""Who is asking and from where, for the current request: read by audit records, logs and limits.

Services need the client IP and request id for the audit trail without taking a request argument,
so the middleware publishes them in a context variable.
"""

import contextvars
import ipaddress
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


def valid_ip(value: object) -> str | None:
    """`value` as a canonical IP address string, or None when it is not exactly one address.

    Whatever ends up here is stored (audit trail, token last-use, firewall rules) and used as a rate-limit
    key, so anything else than a plain IPv4 or IPv6 address (a host name, `1.2.3.4.5`, markup, a port, an
    IPv6 zone) is refused rather than cleaned up. IPv4-mapped IPv6 addresses count as their IPv4 address.
    """
    if not isinstance(value, str) or not value or len(value) > 45:
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    return str(address)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or the one the outermost trusted proxy saw.

    With CARREL_TRUSTED_PROXY_COUNT = N, each of our N proxies appends the address it received the
    connection from to X-Forwarded-For, so the Nth entry from the right was written by the outermost
    trusted proxy: everything left of it is whatever the client sent and is ignored. When that entry is
    missing or is not a valid IP address, the address falls back to REMOTE_ADDR (the nearest proxy);
    an invalid address is never returned.
    """
    proxies = settings.CARREL_TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= proxies:
            trusted = valid_ip(forwarded[-proxies])
            if trusted is not None:
                return trusted
    return valid_ip(request.META.get("REMOTE_ADDR"))


def request_id_for(request: HttpRequest) -> str:
    """Keep a well-formed X-Request-ID from the caller (for tracing across services), else mint one."""
    supplied = request.META.get("HTTP_X_REQUEST_ID", "")
    if _REQUEST_ID_RE.match(supplied):
        return supplied
    return f"req_{uuid.uuid4().hex}"
