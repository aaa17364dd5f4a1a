"""Invitations: send, resend, revoke, accept, decline, bulk, expiry. Rules live here, for API, browser and admin."""

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, OrgRole
from audit.services import audit_record
from invitations.models import DeliveryStatus, Invitation, InvitationStatus
from platform_site.errors import CarrelError, Conflict, NotFound, PermissionDenied, ValidationFailed
from projects.models import PROJECT_ROLE_RANK, Project, ProjectMember, ProjectRole
from projects.services import require_project_role


class Gone(CarrelError):
    status_code = 410
    default_code = "INVITATION_EXPIRED"
    default_message = "The invitation has expired."


# --- Tokens -------------------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    """The link's secret: 256 bits derived from the stored salt and the server's secret key."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"invitation:{invitation.pk}:{invitation.token_salt}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_salt(invitation: Invitation) -> None:
    invitation.token_salt = secrets.token_hex(32)
    invitation.token_hash = token_digest(invitation_token(invitation))


def invitation_link(invitation: Invitation) -> str:
    return f"{settings.CARREL_PUBLIC_URL}/invitations/accept/{invitation_token(invitation)}/"


def invitation_by_token(token: str) -> Invitation:
    """The invitation a presented token opens, or 404 INVITATION_NOT_FOUND."""
    digest = token_digest(token or "")
    invitation = (
        Invitation.objects.select_related("project", "project__organization", "invited_by")
        .filter(token_hash=digest, project__deleted_at__isnull=True)
        .first()
    )
    if invitation is None or not hmac.compare_digest(invitation.token_hash, digest):
        raise NotFound(
            "This invitation link is not valid.",
            code="INVITATION_NOT_FOUND",
            remediation="Ask the person who invited you to send a new invitation.",
        )
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


# --- Sending ---------------------------------------------------------------------------------------


def _normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed(fields={"email": ["Enter a valid e-mail address."]}) from None
    return email


def _check_role(*, actor_role: str, role: str) -> None:
    if role not in ProjectRole.values:
        raise ValidationFailed(fields={"role": [f"One of {', '.join(ProjectRole.values)}."]})
    if PROJECT_ROLE_RANK[role] > PROJECT_ROLE_RANK[actor_role]:
        raise PermissionDenied(
            f"You cannot invite someone as '{role}': it is above your own role ('{actor_role}').",
            code="ROLE_TOO_HIGH",
        )


def _is_member(project: Project, email: str) -> bool:
    return ProjectMember.objects.filter(project=project, user__email=email).exists()


def _enqueue_delivery(invitation: Invitation) -> None:
    from invitations import tasks

    transaction.on_commit(lambda: tasks.send_invitation_email.delay(invitation.pk))


def invitation_send(
    *,
    actor,
    project: Project,
    email: str,
    role: str = ProjectRole.MEMBER,
    message: str = "",
    expires_in_days: int | None = None,
    access_expires_at: datetime | None = None,
) -> Invitation:
    """Owners and admins invite, never above their own role; the e-mail goes out after commit."""
    actor_role = require_project_role(user=actor, project=project, minimum=ProjectRole.ADMIN)
    email = _normalise_email(email)
    _check_role(actor_role=actor_role, role=role)
    days = expires_in_days or settings.CARREL_INVITATION_TTL_DAYS
    if not 1 <= days <= 90:
        raise ValidationFailed(fields={"expires_in_days": ["Between 1 and 90 days."]})
    if access_expires_at is not None and access_expires_at <= timezone.now():
        raise ValidationFailed(fields={"access_expires_at": ["Must be in the future."]})
    if _is_member(project, email):
        raise Conflict(f"{email} is already a member of the project.", code="ALREADY_MEMBER")
    now = timezone.now()
    # A lapsed invitation no longer blocks a new one.
    Invitation.objects.filter(
        project=project, email=email, status=InvitationStatus.PENDING, expires_at__lte=now
    ).update(status=InvitationStatus.EXPIRED)
    invitation = Invitation(
        organization_id=project.organization_id,
        project=project,
        email=email,
        role=role,
        message=message,
        invited_by=actor,
        invited_at=now,
        expires_at=now + timedelta(days=days),
        access_expires_at=access_expires_at,
    )
    _new_salt(invitation)
    try:
        with transaction.atomic():
            invitation.save(force_insert=True)
            audit_record(
                actor=actor,
                action="invitation.send",
                target=invitation,
                organization=project.organization,
                metadata={"email": email, "role": role},
            )
    except IntegrityError:
        raise Conflict(
            f"{email} already has a pending invitation to this project.",
            code="INVITATION_EXISTS",
            remediation="Resend the pending invitation instead.",
        ) from None
    _enqueue_delivery(invitation)
    return invitation


def _require_manager(*, actor, invitation: Invitation) -> str:
    return require_project_role(user=actor, project=invitation.project, minimum=ProjectRole.ADMIN)


@transaction.atomic
def invitation_resend(*, actor, invitation: Invitation) -> Invitation:
    """A new link (the old one stops working), a fresh expiry, and another e-mail."""
    _require_manager(actor=actor, invitation=invitation)
    invitation = Invitation.objects.select_for_update().select_related("project").get(pk=invitation.pk)
    if invitation.status != InvitationStatus.PENDING:
        raise Conflict(
            f"Only pending invitations can be resent; this one is {invitation.status}.", code="INVITATION_NOT_PENDING"
        )
    now = timezone.now()
    _new_salt(invitation)
    invitation.resend_count += 1
    invitation.last_resent = now
    invitation.expires_at = now + timedelta(days=settings.CARREL_INVITATION_TTL_DAYS)
    invitation.delivery_status = DeliveryStatus.QUEUED
    invitation.delivery_error = ""
    invitation.save()
    audit_record(
        actor=actor,
        action="invitation.resend",
        target=invitation,
        organization=invitation.organization,
        metadata={"resend_count": invitation.resend_count},
    )
    _enqueue_delivery(invitation)
    return invitation


@transaction.atomic
def invitation_revoke(*, actor, invitation: Invitation) -> Invitation:
    _require_manager(actor=actor, invitation=invitation)
    now = timezone.now()
    if not Invitation.objects.filter(pk=invitation.pk, status=InvitationStatus.PENDING).update(
        status=InvitationStatus.REVOKED, revoked_at=now
    ):
        invitation.refresh_from_db()
        raise Conflict(
            f"Only pending invitations can be revoked; this one is {invitation.status}.", code="INVITATION_NOT_PENDING"
        )
    invitation.status, invitation.revoked_at = InvitationStatus.REVOKED, now
    audit_record(actor=actor, action="invitation.revoke", target=invitation, organization=invitation.organization)
    return invitation


# --- Answering ------------------------------------------------------------------------------------


def _check_invitee(*, actor, invitation: Invitation, token: str | None) -> None:
    owns_address = EmailAddress.objects.filter(user=actor, email__iexact=invitation.email, verified=True).exists()
    if owns_address:
        return
    if (
        settings.CARREL_INVITATIONS_ALLOW_ANY_ACCOUNT
        and token
        and hmac.compare_digest(token_digest(token), invitation.token_hash)
    ):
        return
    raise PermissionDenied(
        "This invitation was sent to another e-mail address.",
        code="INVITATION_EMAIL_MISMATCH",
        details="Log in with the invited address, or add and verify it on your account.",
    )


def invitation_accept(*, actor, invitation: Invitation, token: str | None = None) -> Invitation:
    """Single use, even under concurrent accepts: the row lock lets exactly one through."""
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("project", "project__organization")
            .get(pk=invitation.pk)
        )
        if token is not None and not hmac.compare_digest(token_digest(token), invitation.token_hash):
            raise NotFound("This invitation link is not valid.", code="INVITATION_NOT_FOUND")
        check_usable(invitation)
        _check_invitee(actor=actor, invitation=invitation, token=token)
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
        if not created and PROJECT_ROLE_RANK[invitation.role] > PROJECT_ROLE_RANK[member.role]:
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
def invitation_decline(*, actor, invitation: Invitation, reason: str = "", token: str | None = None) -> Invitation:
    invitation = Invitation.objects.select_for_update().select_related("project").get(pk=invitation.pk)
    if token is not None and not hmac.compare_digest(token_digest(token), invitation.token_hash):
        raise NotFound("This invitation link is not valid.", code="INVITATION_NOT_FOUND")
    check_usable(invitation)
    _check_invitee(actor=actor, invitation=invitation, token=token)
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


# --- Bulk -------------------------------------------------------------------------------------------


@dataclass
class BulkResult:
    results: list[dict] = field(default_factory=list)

    @property
    def summary(self) -> dict:
        counts = {"sent": 0, "failed": 0, "skipped": 0}
        for row in self.results:
            counts[row["status"]] += 1
        return {"total": len(self.results), **counts}


def invitation_bulk(
    *, actor, project: Project, rows: list[dict], default_role: str = ProjectRole.MEMBER, default_message: str = ""
) -> BulkResult:
    """Each row on its own: one bad row does not sink the others."""
    require_project_role(user=actor, project=project, minimum=ProjectRole.ADMIN)
    result = BulkResult()
    seen: set[str] = set()
    for row in rows:
        email = str(row.get("email", "")).strip().lower()
        if email in seen:
            result.results.append({"email": email, "status": "skipped", "reason": "Listed twice."})
            continue
        seen.add(email)
        try:
            invitation = invitation_send(
                actor=actor,
                project=project,
                email=email,
                role=row.get("role") or default_role,
                message=row.get("message") or default_message,
            )
        except Conflict as error:
            result.results.append({"email": email, "status": "skipped", "code": error.code, "reason": error.message})
        except CarrelError as error:
            result.results.append(
                {
                    "email": email,
                    "status": "failed",
                    "code": error.code,
                    "reason": error.message,
                    "fields": error.fields,
                }
            )
        else:
            result.results.append({"email": email, "status": "sent", "invitation_id": invitation.pk})
    return result


# --- Expiry ------------------------------------------------------------------------------------------


def invitations_expire(*, now=None) -> int:
    now = now or timezone.now()
    return Invitation.objects.filter(status=InvitationStatus.PENDING, expires_at__lte=now).update(
        status=InvitationStatus.EXPIRED
    )


def memberships_expire(*, now=None) -> int:
    """End project memberships whose access date has passed (visiting collaborators, courses)."""
    now = now or timezone.now()
    ended = 0
    for member in ProjectMember.objects.filter(expires_at__lte=now).select_related("project", "user"):
        with transaction.atomic():
            audit_record(
                actor=None,
                action="project_member.expire",
                target=member,
                organization=member.project.organization,
                metadata={"user": member.user.email},
            )
            member.delete()
            ended += 1
    return ended
