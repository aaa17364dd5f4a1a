"""The workspace agent's token: issued at launch, derived (never stored), good for one workspace's heartbeat.

secret = "carrel_agent_" + HMAC-SHA256(SECRET_KEY, "carrel-agent:" + workspace id + ":" + nonce). The row holds
the nonce and the secret's SHA-256: the database alone yields no token, and a retried launch renders the same
user data (EC2 refuses a reused ClientToken with different parameters)."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from idle.models import AgentToken

AGENT_TOKEN_PREFIX = "carrel_agent_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AgentTokenRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _derive(workspace_id: str, nonce: str) -> str:
    mac = hmac.new(settings.SECRET_KEY.encode(), f"carrel-agent:{workspace_id}:{nonce}".encode(), hashlib.sha256)
    return AGENT_TOKEN_PREFIX + mac.hexdigest()


def agent_token_issue(*, workspace_id: str) -> AgentToken:
    """A fresh token for the workspace (replacing any earlier one). Call inside the launch's transaction."""
    nonce = secrets.token_hex(16)
    token, _ = AgentToken.objects.update_or_create(
        workspace_id=workspace_id,
        defaults={
            "nonce": nonce,
            "key_hash": _digest(_derive(workspace_id, nonce)),
            "created_at": timezone.now(),
            "revoked_at": None,
            "last_used_at": None,
        },
    )
    return token


def agent_token_secret(token: AgentToken) -> str:
    """The secret the workspace's user data carries (only the provisioning task asks for it)."""
    return _derive(token.workspace_id, token.nonce)


def agent_token_revoke(*, workspace_id: str) -> None:
    AgentToken.objects.filter(workspace_id=workspace_id, revoked_at__isnull=True).update(revoked_at=timezone.now())


def agent_token_authenticate(*, secret: str) -> AgentToken:
    """The live token for a presented secret (with its workspace), or AgentTokenRejected."""
    if not secret.startswith(AGENT_TOKEN_PREFIX) or len(secret) > 128:
        raise AgentTokenRejected("TOKEN_INVALID", "The agent token is not valid.")
    digest = _digest(secret)
    token = AgentToken.objects.select_related("workspace").filter(key_hash=digest).first()
    if token is None or not hmac.compare_digest(token.key_hash, digest):
        raise AgentTokenRejected("TOKEN_INVALID", "The agent token is not valid.")
    if token.revoked_at is not None or token.workspace.state in ("terminating", "terminated"):
        raise AgentTokenRejected("TOKEN_REVOKED", "The agent token was revoked.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        AgentToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
