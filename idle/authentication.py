"""The workspace agent's credential, accepted by the heartbeat view only (no other view lists this class).

`Authorization: Bearer carrel_agent_…`. The request's user stays anonymous: the token names a workspace, not a
person, so nothing that checks who is asking can mistake an agent for someone. Anywhere else the same header is
an unknown API token (401 TOKEN_INVALID)."""

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from idle.models import AgentToken
from idle.tokens import AgentTokenRejected, agent_token_authenticate
from platform_site.api import ratelimit


class AgentTokenAuthentication(authentication.BaseAuthentication):
    """A rejected agent token counts as a failed authentication against the client address and the token, as
    API tokens do (accounts.authentication); over the limit, rejected ones answer 429 AUTH_THROTTLED."""

    keyword = b"bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        ip = getattr(request._request, "client_ip", None)
        secret = header[1].decode("latin-1") if len(header) == 2 else None
        try:
            if secret is None:
                raise AgentTokenRejected("TOKEN_INVALID", "Malformed Authorization header.")
            token = agent_token_authenticate(secret=secret)
        except AgentTokenRejected as rejected:
            ratelimit.refuse_bearer_token(ip, secret, code=rejected.code, message=rejected.message)
        return AnonymousUser(), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="agent"'


class IsWorkspaceAgent(permissions.BasePermission):
    """Only a live agent token: no API token, no session."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, AgentToken):
            return True
        raise exceptions.NotAuthenticated("This endpoint takes a workspace agent token.")


class AgentTokenScheme(OpenApiAuthenticationExtension):
    target_class = "idle.authentication.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A workspace's agent token (`carrel_agent_…`), written into its user data at launch and revoked "
                "when it terminates. Good only for POST /api/v1/agent/heartbeat."
            ),
        }
