"""Sending, resending and revoking invitations."""

from datetime import datetime, timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from invitations import dispatch
from invitations.models import DeliveryStatus, Invitation, InvitationResend, InvitationStatus
from invitations.services.limits import MESSAGE_MAX_LENGTH, check_limits, lock_sending
from invitations.services.links import new_salt
from platform_site.errors import Conflict, PermissionDenied, ValidationFailed
from platform_site.text import clean_text
from projects.models import Project, ProjectMember, ProjectRole
from projects.services import PROJECT_RANKS, require_project_role

# --- Sending ---------------------------------------------------------------------------------------


def require_verified_inviter(actor: User) -> None:
    """Only people whose own address is verified send invitations (e-mails that name them) to others.

    Superusers are exempt: they are made with `createsuperuser` or by another superuser, not by signing up.
    """
    if getattr(actor, "is_superuser", False):
        return
    email = (getattr(actor, "email", "") or "").strip()
    if email and EmailAddress.objects.filter(user=actor, email__iexact=email, verified=True).exists():
        return
    raise PermissionDenied(
        "Verify your e-mail address before inviting anyone.",
        code="EMAIL_NOT_VERIFIED",
        details=f"Invitations are e-mailed in your name; {email or 'your account'} is not verified yet.",
        remediation=(
            "Open the confirmation link Carrel e-mailed you, or send a new one from "
            f"{settings.CARREL_PUBLIC_URL}/accounts/email/ (Manage e-mail addresses), then retry."
        ),
    )


def clean_message(message: str | None, *, field: str = "message") -> str:
    """The inviter's note, as plain text: line breaks and tabs only, no control or bidi characters, capped."""
    message = (message or "").replace("\r\n", "\n").replace("\r", "\n")
    message = clean_text(message, field=field, allow_newlines=True)
    if len(message) > MESSAGE_MAX_LENGTH:
        raise ValidationFailed(
            f"The {field} is too long.",
            details=f"{len(message)} characters; at most {MESSAGE_MAX_LENGTH}.",
            fields={field: [f"Ensure this field has no more than {MESSAGE_MAX_LENGTH} characters."]},
        )
    return message


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
    if PROJECT_RANKS[role] > PROJECT_RANKS[actor_role]:
        raise PermissionDenied(
            f"You cannot invite someone as '{role}': it is above your own role ('{actor_role}').",
            code="ROLE_TOO_HIGH",
        )


def _is_member(project: Project, email: str) -> bool:
    return ProjectMember.objects.current().filter(project=project, user__email=email).exists()


def _enqueue_delivery(invitation: Invitation) -> None:
    dispatch.send_invitation_email(invitation.pk)


def invitation_send(
    *,
    actor: User,
    project: Project,
    email: str,
    role: str = ProjectRole.MEMBER,
    message: str = "",
    expires_in_days: int | None = None,
    access_expires_at: datetime | None = None,
) -> Invitation:
    """Owners and admins with a verified address invite, never above their own role and within the daily
    limits; the e-mail goes out after commit."""
    actor_role = require_project_role(user=actor, project=project, minimum=ProjectRole.ADMIN)
    require_verified_inviter(actor)
    with transaction.atomic():
        lock_sending(actor=actor, organization_id=project.organization_id)
        check_limits(actor=actor, organization=project.organization, wanted=1, now=timezone.now())
        return send_one(
            actor=actor,
            actor_role=actor_role,
            project=project,
            email=email,
            role=role,
            message=message,
            expires_in_days=expires_in_days,
            access_expires_at=access_expires_at,
        )


def send_one(
    *,
    actor: User,
    actor_role: str,
    project: Project,
    email: str,
    role: str,
    message: str,
    expires_in_days: int | None = None,
    access_expires_at: datetime | None = None,
) -> Invitation:
    email = _normalise_email(email)
    _check_role(actor_role=actor_role, role=role)
    message = clean_message(message)
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
    new_salt(invitation)
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


def _require_manager(*, actor: User, invitation: Invitation) -> str:
    return require_project_role(user=actor, project=invitation.project, minimum=ProjectRole.ADMIN)


@transaction.atomic
def invitation_resend(*, actor: User, invitation: Invitation) -> Invitation:
    """A new link (the old one stops working), a fresh expiry, and another e-mail; counts toward the limits."""
    _require_manager(actor=actor, invitation=invitation)
    require_verified_inviter(actor)
    lock_sending(actor=actor, organization_id=invitation.organization_id)
    invitation = Invitation.objects.select_for_update().select_related("project", "organization").get(pk=invitation.pk)
    if invitation.status != InvitationStatus.PENDING:
        raise Conflict(
            f"Only pending invitations can be resent; this one is {invitation.status}.", code="INVITATION_NOT_PENDING"
        )
    now = timezone.now()
    check_limits(actor=actor, organization=invitation.organization, wanted=1, now=now)
    new_salt(invitation)
    invitation.resend_count += 1
    invitation.last_resent = now
    invitation.expires_at = now + timedelta(days=settings.CARREL_INVITATION_TTL_DAYS)
    invitation.delivery_status = DeliveryStatus.QUEUED
    invitation.delivery_error = ""
    invitation.save()
    InvitationResend.objects.create(
        invitation=invitation, organization_id=invitation.organization_id, resent_by=actor, resent_at=now
    )
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
def invitation_revoke(*, actor: User, invitation: Invitation) -> Invitation:
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
