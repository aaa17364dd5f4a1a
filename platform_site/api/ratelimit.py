"""Fixed-window rate limits with the rerobots headers on every /api/ response.

    X-RateLimit-Limit: N   X-RateLimit-Remaining: M (< N)   X-RateLimit-Reset: epoch seconds

Counters live in the Django cache: Redis when REDIS_URL is set (INCR is atomic, so concurrent web
processes share one count), the local cache otherwise. A caller is counted per bearer token, else
per logged-in user, else per client IP. Failed authentications are counted per IP separately.
"""

import hashlib
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from platform_site.api.errors import envelope

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$")
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def parse_rate(rate: str) -> tuple[int, int]:
    """'3600/hour' or '20/15min' -> (requests, window seconds)."""
    match = _RATE_RE.match(rate)
    if not match:
        raise ValueError(f"Bad rate {rate!r}: use e.g. '100/minute' or '20/15min'")
    count, multiplier, unit = match.groups()
    return int(count), int(multiplier or 1) * _UNIT_SECONDS[unit]


@dataclass(frozen=True)
class Window:
    limit: int
    count: int
    reset: int  # epoch seconds when the window ends

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def retry_after(self, now: float | None = None) -> int:
        return max(1, int(self.reset - (now or time.time())))


def _window_key(scope: str, ident: str, rate: str) -> tuple[str, int, int, int]:
    limit, period = parse_rate(rate)
    start = int(time.time() // period * period)
    return f"rl:{scope}:{ident}:{period}:{start}", limit, period, start + period


def hit(scope: str, ident: str, rate: str) -> Window:
    key, limit, period, reset = _window_key(scope, ident, rate)
    cache.add(key, 0, timeout=period + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=period + 5)
        count = 1
    return Window(limit=limit, count=count, reset=reset)


def peek(scope: str, ident: str, rate: str) -> Window:
    key, limit, _, reset = _window_key(scope, ident, rate)
    return Window(limit=limit, count=int(cache.get(key, 0)), reset=reset)


# --- Failed authentication, per client IP ----------------------------------------------------


def failed_auth_wait(ip: str | None) -> int | None:
    """Seconds to wait if this IP has failed authentication too often in the current window."""
    window = peek("authfail", ip or "unknown", settings.CARREL_FAILED_AUTH_LIMIT)
    return window.retry_after() if window.count >= window.limit else None


def record_failed_auth(ip: str | None) -> None:
    hit("authfail", ip or "unknown", settings.CARREL_FAILED_AUTH_LIMIT)


# --- The middleware ------------------------------------------------------------------------------


def caller_identity(request: HttpRequest) -> tuple[str, str]:
    """(scope, identifier) the request is counted against. Bearer secrets are hashed, never kept."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return "token", hashlib.sha256(header[7:].strip().encode()).hexdigest()[:32]
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return "user", str(user.pk)
    return "ip", request.client_ip or "unknown"


def set_headers(response: HttpResponse, window: Window) -> None:
    response["X-RateLimit-Limit"] = str(window.limit)
    response["X-RateLimit-Remaining"] = str(window.remaining)
    response["X-RateLimit-Reset"] = str(window.reset)


class RateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        scope, ident = caller_identity(request)
        window = hit(scope, ident, settings.CARREL_RATE_LIMITS[scope])
        if window.exceeded:
            retry_after = window.retry_after()
            response = JsonResponse(
                envelope(
                    status_code=429,
                    code="RATE_LIMITED",
                    message="Too many requests.",
                    details=f"The limit is {window.limit} requests per window; retry after {retry_after} seconds.",
                ),
                status=429,
            )
            response["Retry-After"] = str(retry_after)
        else:
            response = self.get_response(request)
        set_headers(response, window)
        return response
