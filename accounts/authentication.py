"""Bearer-token authentication and token scopes for the REST API."""

from rest_framework import authentication, exceptions, permissions

from accounts.models import ApiToken, TokenScope
from accounts.services import TokenRejected, token_authenticate
from platform_site.api import ratelimit


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer carrel_...`. Failures are counted per IP; too many and the IP waits."""

    keyword = b"bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        ip = getattr(request._request, "client_ip", None)
        wait = ratelimit.failed_auth_wait(ip)
        if wait is not None:
            raise exceptions.Throttled(wait=wait, detail="Too many failed authentications.", code="AUTH_THROTTLED")
        if len(header) != 2:
            ratelimit.record_failed_auth(ip)
            raise exceptions.AuthenticationFailed("Malformed Authorization header.", code="TOKEN_INVALID")
        try:
            token = token_authenticate(secret=header[1].decode("latin-1"), ip=ip)
        except TokenRejected as rejected:
            ratelimit.record_failed_auth(ip)
            raise exceptions.AuthenticationFailed(rejected.message, code=rejected.code) from None
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
