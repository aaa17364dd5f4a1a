"""Invitation links: tokens derived with HMAC (only their SHA-256 is stored), link proofs for the session."""

import base64
import hashlib
import hmac
import secrets

from django.conf import settings
from django.utils.crypto import salted_hmac

from invitations.models import Invitation, InvitationStatus
from invitations.services.limits import Gone
from platform_site.errors import Conflict, NotFound

# --- Tokens -------------------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    """The link's secret: 256 bits derived from the stored salt and the server's secret key."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"invitation:{invitation.pk}:{invitation.token_salt}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_salt(invitation: Invitation) -> None:
    invitation.token_salt = secrets.token_hex(32)
    invitation.token_hash = token_digest(invitation_token(invitation))


def invitation_link(invitation: Invitation) -> str:
    return f"{settings.CARREL_PUBLIC_URL}/invitations/accept/{invitation_token(invitation)}/"


def link_proof(invitation: Invitation) -> str:
    """What the browser session keeps after the link was opened, instead of the link's token.

    A keyed HMAC of the token's stored hash: it cannot be turned back into the token, nobody without the server's
    secret key can make one from the database, and a resend (new salt, new hash) invalidates it with the old link.
    """
    return salted_hmac(
        "carrel.invitations.link-proof", f"{invitation.pk}:{invitation.token_hash}", algorithm="sha256"
    ).hexdigest()


def link_proof_matches(invitation: Invitation, proof: str | None) -> bool:
    return bool(proof) and hmac.compare_digest(link_proof(invitation), str(proof))


def token_matches(invitation: Invitation, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(token_digest(str(token)), invitation.token_hash)


def link_not_valid() -> NotFound:
    return NotFound(
        "This invitation link is not valid.",
        code="INVITATION_NOT_FOUND",
        remediation="Ask the person who invited you to send a new invitation.",
    )


def invitation_by_link_proof(invitation_id: str | None, proof: str | None) -> Invitation:
    """The invitation whose link this session opened (see `link_proof`), or 404 INVITATION_NOT_FOUND."""
    invitation: Invitation | None = None
    if invitation_id and proof:
        invitation = (
            Invitation.objects.select_related("project", "project__organization", "invited_by")
            .filter(pk=str(invitation_id), project__deleted_at__isnull=True)
            .first()
        )
    if invitation is None or not link_proof_matches(invitation, proof):
        raise link_not_valid()
    return invitation


def invitation_by_token(token: str) -> Invitation:
    """The invitation a presented token opens, or 404 INVITATION_NOT_FOUND."""
    digest = token_digest(token or "")
    invitation: Invitation | None = (
        Invitation.objects.select_related("project", "project__organization", "invited_by")
        .filter(token_hash=digest, project__deleted_at__isnull=True)
        .first()
    )
    if invitation is None or not hmac.compare_digest(invitation.token_hash, digest):
        raise link_not_valid()
    return invitation


def check_usable(invitation: Invitation) -> None:
    """Distinct answers: used (409), revoked (410), expired (410)."""
    if invitation.status == InvitationStatus.ACCEPTED:
        raise Conflict("This invitation has already been accepted.", code="INVITATION_ALREADY_ACCEPTED")
    if invitation.status == InvitationStatus.DECLINED:
        raise Conflict("This invitation was declined.", code="INVITATION_ALREADY_DECLINED")
    if invitation.status == InvitationStatus.REVOKED:
        raise Gone(
            "This invitation was revoked.",
            code="INVITATION_REVOKED",
            remediation="Ask the project's owner or admins for a new invitation.",
        )
    if invitation.status == InvitationStatus.EXPIRED or invitation.is_past_expiry:
        raise Gone(
            "This invitation has expired.",
            code="INVITATION_EXPIRED",
            remediation="Ask the project's owner or admins to resend it.",
        )
