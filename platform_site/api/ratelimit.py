"""Fixed-window rate limits with the rerobots headers on every /api/ response.

    X-RateLimit-Limit: N   X-RateLimit-Remaining: M (< N)   X-RateLimit-Reset: epoch seconds

Counters live in the Django cache: Redis when REDIS_URL is set (INCR is atomic, so concurrent web
processes share one count), the local cache otherwise. A caller is counted per bearer token, else
per logged-in user, else per client IP. Failed authentications are counted separately, in the database
(see below).
"""

import hashlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import IntegrityError, transaction
from django.db.models import F
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
    return Window(limit=limit, count=_count(key, timeout=period + 5), reset=reset)


def _count(key: str, *, timeout: int) -> int:
    """One more request in the window `key`; the count so far. Every API request pays for this, so on Redis it
    is one round trip (SET NX EX, then INCR, in one MULTI) through a client kept for the process, where the cache
    API would take two and build a Redis client for each."""
    client = _redis_client()
    if client is not None:
        name = cache.make_and_validate_key(key)
        pipeline = client.pipeline(transaction=True)
        pipeline.set(name, 0, ex=timeout, nx=True)
        pipeline.incr(name)
        return int(pipeline.execute()[1])
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


def _redis_client() -> Any:
    """The Redis client of the default cache (kept on the cache object, which is per thread), or None."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    client = getattr(backend, "_carrel_rate_client", None)
    if client is None:
        client = backend._cache.get_client(write=True)  # the cache's own pool and connection settings
        backend._carrel_rate_client = client  # type: ignore[attr-defined]
    return client


def peek(scope: str, ident: str, rate: str) -> Window:
    key, limit, _, reset = _window_key(scope, ident, rate)
    return Window(limit=limit, count=int(cache.get(key, 0)), reset=reset)


# --- Failed authentication, per client address and per credential ----------------------------
#
# Counted in the database (accounts.FailedAuthCounter), not the cache: a cache may cull or evict a counter
# (the file cache used without Redis culls a third of its entries at MAX_ENTRIES), and whoever fails
# authentication on purpose controls how many cache entries there are.
#
# Each failure counts against the client address and against the credential presented (a token's or an
# e-mail's SHA-256), so rotating addresses does not reset the count for a credential. Callers decide what
# an exceeded limit means: a bearer token is checked first and only an invalid one is refused, so a bad
# neighbour never locks out a valid token; a password check for an account over its limit is refused
# before the password is looked at (a lockout), as allauth does.

Credential = tuple[str, str]  # (kind, value): ("token", secret) or ("email", address)


def credential_ident(kind: str, value: str) -> str:
    value = value.strip().lower() if kind == "email" else value
    return f"{kind}:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()}"


def _failed_auth_keys(
    ip: str | None, credentials: Iterable[Credential], *, per_address: bool = True
) -> tuple[list[str], int, int]:
    """The counter keys of the current window, the limit and the window's end (epoch seconds)."""
    limit, period = parse_rate(settings.CARREL_FAILED_AUTH_LIMIT)
    start = int(time.time() // period * period)
    idents = [f"ip:{ip or 'unknown'}"] if per_address else []
    idents += [credential_ident(kind, value) for kind, value in credentials]
    return [f"authfail:{ident}:{period}:{start}" for ident in idents], limit, start + period


def failed_auth_wait(ip: str | None, *, credentials: Iterable[Credential] = (), per_address: bool = True) -> int | None:
    """Seconds to wait if the address (unless per_address=False) or any of the credentials failed too
    often in the current window, else None."""
    from accounts.models import FailedAuthCounter

    keys, limit, reset = _failed_auth_keys(ip, list(credentials), per_address=per_address)
    if not keys:
        return None
    counts = FailedAuthCounter.objects.filter(key__in=keys).values_list("count", flat=True)
    if any(count >= limit for count in counts):
        return max(1, int(reset - time.time()))
    return None


def refuse_bearer_token(ip: str | None, secret: str | None, *, code: str, message: str) -> NoReturn:
    """Refuse a rejected bearer token (an API or agent token): 429 AUTH_THROTTLED once the address or the token
    is over the failed-authentication limit, else count this failure against both and answer 401 `code`."""
    from rest_framework import exceptions

    credentials: list[Credential] = [("token", secret)] if secret else []
    wait = failed_auth_wait(ip, credentials=credentials)
    if wait is not None:
        raise exceptions.Throttled(
            wait=wait, detail="Too many failed authentications.", code="AUTH_THROTTLED"
        ) from None
    record_failed_auth(ip, credentials=credentials)
    raise exceptions.AuthenticationFailed(message, code=code) from None


def record_failed_auth(ip: str | None, *, credentials: Iterable[Credential] = (), per_address: bool = True) -> None:
    """Count one failure against the address and each credential (an atomic upsert per key)."""
    from accounts.models import FailedAuthCounter

    keys, _, reset = _failed_auth_keys(ip, list(credentials), per_address=per_address)
    window_end = datetime.fromtimestamp(reset, tz=UTC)
    created = False
    for key in keys:
        if FailedAuthCounter.objects.filter(key=key).update(count=F("count") + 1):
            continue
        try:
            with transaction.atomic():
                FailedAuthCounter.objects.create(key=key, count=1, window_end=window_end)
            created = True
        except IntegrityError:  # another process created it first
            FailedAuthCounter.objects.filter(key=key).update(count=F("count") + 1)
    if created:
        FailedAuthCounter.objects.filter(window_end__lt=datetime.now(tz=UTC) - timedelta(seconds=5)).delete()


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
