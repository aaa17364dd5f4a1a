"""Bearer-token authentication, token scopes, and password checks under the failed-login lockout."""

import math
import time

from allauth.account.adapter import get_adapter as get_account_adapter
from django.core.cache import cache
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest
from rest_framework import authentication, exceptions, permissions

from accounts.models import ApiToken, TokenScope
from accounts.services import TokenRejected, token_authenticate
from platform_site.api import ratelimit


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer carrel_...` (never a query parameter: URLs end up in logs and Referers).

    The token is checked first: a valid token is never refused for what others did from its address.
    A rejected one counts as a failed authentication against the client address and against the token
    itself; once either is over CARREL_FAILED_AUTH_LIMIT, rejected tokens answer 429 AUTH_THROTTLED.
    """

    keyword = b"bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        ip = getattr(request._request, "client_ip", None)
        secret = header[1].decode("latin-1") if len(header) == 2 else None
        try:
            if secret is None:
                raise TokenRejected("TOKEN_INVALID", "Malformed Authorization header.")
            token = token_authenticate(secret=secret, ip=ip)
        except TokenRejected as rejected:
            ratelimit.refuse_bearer_token(ip, secret, code=rejected.code, message=rejected.message)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class TokenScopePermission(permissions.BasePermission):
    """Reads need the `read` scope, anything else `write`. Session (browser) requests are not scoped.

    A view may set `required_scope` to ask for a different scope for all its methods.
    """

    message = "This token lacks the scope this request needs."
    code = "INSUFFICIENT_SCOPE"

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        required = getattr(view, "required_scope", None)
        if required is None:
            required = TokenScope.READ if request.method in permissions.SAFE_METHODS else TokenScope.WRITE
        if required == "any" or token.has_scope(required):
            return True
        self.message = f"This token lacks the '{required}' scope this request needs."
        return False


# --- Passwords ------------------------------------------------------------------------------------------
#
# Every password check goes through the same lockout as the login page:
#  - allauth's ACCOUNT_RATE_LIMITS["login_failed"] (per address and per account, in the cache), consumed by
#    the account adapter's authenticate(), which the login page uses too;
#  - Carrel's failed-authentication counter per account e-mail (in the database, so it holds when a cache
#    culls), checked by FailedLoginLockoutBackend, first in AUTHENTICATION_BACKENDS.
# A locked account is refused even with the right password; otherwise the lockout would be an oracle.


def _throttled(wait: int) -> exceptions.Throttled:
    return exceptions.Throttled(wait=wait, detail="Too many failed authentications.", code="AUTH_THROTTLED")


def password_authenticate(request: HttpRequest, *, email: str, password: str):
    """The user with this e-mail and password, 401 AUTHENTICATION_FAILED, or 429 AUTH_THROTTLED."""
    ip = getattr(request, "client_ip", None)
    credentials = [("email", email)]
    wait = ratelimit.failed_auth_wait(ip, credentials=credentials, per_address=False)
    if wait is not None:
        raise _throttled(wait)
    # An address over the limit only refuses wrong passwords (a valid credential is never refused for what
    # others did from the same address); remember whether it was over before this attempt counts.
    address_wait = ratelimit.failed_auth_wait(ip)
    try:
        user = get_account_adapter(request).authenticate(request, email=email, password=password)
    except DjangoValidationError as error:
        if getattr(error, "code", None) == "too_many_login_attempts":
            raise _throttled(allauth_login_wait(request, email=email)) from None
        raise
    if user is None:  # counted against the address and the e-mail by accounts.signals.count_failed_login
        if address_wait is not None:
            raise _throttled(address_wait)
        raise exceptions.AuthenticationFailed("Wrong e-mail or password.", code="AUTHENTICATION_FAILED")
    return user


def allauth_login_wait(request: HttpRequest, *, email: str) -> int:
    """Seconds until allauth's login_failed limits let this account try again (for Retry-After)."""
    from allauth.core.internal import ratelimit as allauth_ratelimit

    waits: list[float] = []
    try:
        rates = allauth_ratelimit.get_rates(app="allauth.account", action="login_failed")
        key = get_account_adapter(request)._get_login_attempts_cache_key(request, email=email)
        now = time.time()
        for rate in rates:
            cache_key = allauth_ratelimit.get_cache_key(
                request, app="allauth.account", action="login_failed", rate=rate, key=key
            )
            live = [stamp for stamp in cache.get(cache_key, []) if stamp > now - rate.duration]
            if len(live) >= rate.amount:
                waits.append(live[rate.amount - 1] + rate.duration - now)
        if not waits:
            waits = [max(rate.duration for rate in rates)]
    except Exception:  # allauth's internals moved: the longest window is a safe answer
        waits = [300]
    return max(1, math.ceil(max(waits)))


class FailedLoginLockoutBackend:
    """First in AUTHENTICATION_BACKENDS: refuses every password check (the login page, the admin, token
    purge) for an account with too many failed authentications in the current window, whatever the
    password. Raising PermissionDenied stops django.contrib.auth.authenticate from trying the others."""

    def authenticate(self, request, username=None, password=None, **credentials):
        login = credentials.get("email") or username
        if not login or password is None:
            return None
        client_ip = getattr(request, "client_ip", None) if request is not None else None
        if ratelimit.failed_auth_wait(client_ip, credentials=[("email", login)], per_address=False) is not None:
            raise DjangoPermissionDenied("Too many failed authentications for this account.")
        return None

    # No get_user(): this backend never logs anyone in, so sessions never name it (and force_login skips it).
