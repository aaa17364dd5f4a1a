"""Accepting and declining invitations."""

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, OrgRole, User
from audit.services import audit_record
from invitations.models import Invitation, InvitationStatus
from invitations.services.links import check_usable, link_not_valid, link_proof_matches, token_matches
from platform_site.errors import Conflict, PermissionDenied
from projects.models import ProjectMember
from projects.services import PROJECT_RANKS

# --- Answering ------------------------------------------------------------------------------------


def _check_link(invitation: Invitation, *, token: str | None, link_proof: str | None) -> bool:
    """Whether the link was presented (its token, or a session's proof of it); a wrong one is a 404."""
    if token is not None and not token_matches(invitation, token):
        raise link_not_valid()
    if link_proof is not None and not link_proof_matches(invitation, link_proof):
        raise link_not_valid()
    return token is not None or link_proof is not None


def _check_invitee(*, actor: User, invitation: Invitation, link_presented: bool) -> None:
    owns_address = EmailAddress.objects.filter(user=actor, email__iexact=invitation.email, verified=True).exists()
    if owns_address:
        return
    if settings.CARREL_INVITATIONS_ALLOW_ANY_ACCOUNT and link_presented:
        return
    raise PermissionDenied(
        "This invitation was sent to another e-mail address.",
        code="INVITATION_EMAIL_MISMATCH",
        details="Log in with the invited address, or add and verify it on your account.",
    )


def invitation_accept(
    *, actor: User, invitation: Invitation, token: str | None = None, link_proof: str | None = None
) -> Invitation:
    """Single use, even under concurrent accepts: the row lock lets exactly one through.

    `token` is the link's token (API); `link_proof` what the browser session keeps of it (see `link_proof()`).
    """
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("project", "project__organization")
            .get(pk=invitation.pk)
        )
        presented = _check_link(invitation, token=token, link_proof=link_proof)
        check_usable(invitation)
        _check_invitee(actor=actor, invitation=invitation, link_presented=presented)
        now = timezone.now()
        updated = Invitation.objects.filter(pk=invitation.pk, status=InvitationStatus.PENDING).update(
            status=InvitationStatus.ACCEPTED, accepted_at=now, accepted_by=actor
        )
        if updated != 1:  # a concurrent accept won (databases without row locks)
            raise Conflict("This invitation has already been accepted.", code="INVITATION_ALREADY_ACCEPTED")
        invitation.status, invitation.accepted_at, invitation.accepted_by = InvitationStatus.ACCEPTED, now, actor
        project = invitation.project
        Membership.objects.get_or_create(
            organization=project.organization, user=actor, defaults={"role": OrgRole.MEMBER}
        )
        member, created = ProjectMember.objects.get_or_create(
            project=project,
            user=actor,
            defaults={"role": invitation.role, "expires_at": invitation.access_expires_at},
        )
        if not created and member.expires_at is not None and member.expires_at <= now:
            # Access that ran out (and was not yet swept away) is granted anew, as the invitation says.
            member.role, member.expires_at = invitation.role, invitation.access_expires_at
            member.save(update_fields=["role", "expires_at"])
        elif not created and PROJECT_RANKS[invitation.role] > PROJECT_RANKS[member.role]:
            member.role = invitation.role
            member.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action="invitation.accept",
            target=invitation,
            organization=project.organization,
            metadata={"role": invitation.role, "email": invitation.email},
        )
    return invitation


@transaction.atomic
def invitation_decline(
    *,
    actor: User,
    invitation: Invitation,
    reason: str = "",
    token: str | None = None,
    link_proof: str | None = None,
) -> Invitation:
    invitation = Invitation.objects.select_for_update().select_related("project").get(pk=invitation.pk)
    presented = _check_link(invitation, token=token, link_proof=link_proof)
    check_usable(invitation)
    _check_invitee(actor=actor, invitation=invitation, link_presented=presented)
    now = timezone.now()
    Invitation.objects.filter(pk=invitation.pk).update(
        status=InvitationStatus.DECLINED, declined_at=now, decline_reason=reason[:2000]
    )
    invitation.status, invitation.declined_at, invitation.decline_reason = InvitationStatus.DECLINED, now, reason
    audit_record(
        actor=actor,
        action="invitation.decline",
        target=invitation,
        organization=invitation.organization,
        metadata={"reason": reason[:200]},
    )
    return invitation
