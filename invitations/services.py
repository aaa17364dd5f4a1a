"""Invitations: send, resend, revoke, accept, decline, bulk, expiry. Rules live here, for API, browser and admin."""

import base64
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import Membership, Organization, OrgRole, User
from audit.services import audit_record
from invitations import dispatch
from invitations.models import DeliveryStatus, Invitation, InvitationResend, InvitationStatus
from platform_site.actors import SYSTEM
from platform_site.error_codes import ErrorCode
from platform_site.errors import CarrelError, Conflict, NotFound, PermissionDenied, ValidationFailed
from platform_site.text import clean_text
from projects.models import Project, ProjectMember, ProjectRole
from projects.services import PROJECT_RANKS, require_project_role


class Gone(CarrelError):
    status_code = 410
    default_code = ErrorCode.INVITATION_EXPIRED
    default_message = "The invitation has expired."


class InvitationRateLimited(CarrelError):
    """A daily sending limit (per inviter or per organization) is spent. `retry_after`: seconds until it frees up."""

    status_code = 429
    default_code = ErrorCode.INVITATION_RATE_LIMITED
    default_message = "The daily invitation limit is reached."

    def __init__(self, message: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


# Sending limits. Settings (with environment overrides in settings/base.py) win over these defaults.
LIMIT_WINDOW = timedelta(hours=24)
DEFAULT_PER_INVITER_PER_DAY = 50
DEFAULT_PER_ORGANIZATION_PER_DAY = 200
DEFAULT_BULK_MAX = 100
MESSAGE_MAX_LENGTH = 1000


def per_inviter_per_day() -> int:
    return int(getattr(settings, "CARREL_INVITATIONS_PER_INVITER_PER_DAY", DEFAULT_PER_INVITER_PER_DAY))


def per_organization_per_day() -> int:
    return int(getattr(settings, "CARREL_INVITATIONS_PER_ORGANIZATION_PER_DAY", DEFAULT_PER_ORGANIZATION_PER_DAY))


def bulk_max() -> int:
    return int(getattr(settings, "CARREL_INVITATIONS_BULK_MAX", DEFAULT_BULK_MAX))


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


def link_proof(invitation: Invitation) -> str:
    """What the browser session keeps after the link was opened, instead of the link's token.

    A keyed HMAC of the token's stored hash: it cannot be turned back into the token, nobody without the server's
    secret key can make one from the database, and a resend (new salt, new hash) invalidates it with the old link.
    """
    return salted_hmac(
        "carrel.invitations.link-proof", f"{invitation.pk}:{invitation.token_hash}", algorithm="sha256"
    ).hexdigest()


def _link_proof_matches(invitation: Invitation, proof: str | None) -> bool:
    return bool(proof) and hmac.compare_digest(link_proof(invitation), str(proof))


def _token_matches(invitation: Invitation, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(token_digest(str(token)), invitation.token_hash)


def _link_not_valid() -> NotFound:
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
    if invitation is None or not _link_proof_matches(invitation, proof):
        raise _link_not_valid()
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
        raise _link_not_valid()
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


def _require_verified_inviter(actor: User) -> None:
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


def _lock_sending(*, actor: User, organization_id: str) -> None:
    """Serialise the limit check with the sends it allows, across processes: first the organization, then the
    inviter (always in that order). PostgreSQL: transaction-scoped advisory locks, which touch no table rows.
    SQLite: transactions begin IMMEDIATE (settings), so writers are serialised already."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for name in (f"organization:{organization_id}", f"inviter:{getattr(actor, 'pk', None)}"):
            key = int.from_bytes(hashlib.sha256(f"carrel.invitations.limit:{name}".encode()).digest()[:8], "big")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key - 2**63])


def _human_wait(seconds: int) -> str:
    hours, minutes = divmod(max(1, math.ceil(seconds / 60)), 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _limit_usage(*, actor: User, organization: Organization, now: datetime) -> list[tuple[str, int, list[datetime]]]:
    """Per limit: its scope, its size, and when each e-mail it counts was sent in the last 24 hours (oldest first).
    Counted from the database, so it holds across processes without Redis: invitations created, plus resends."""
    since = now - LIMIT_WINDOW
    by_inviter = [
        *Invitation.objects.filter(invited_by=actor, invited_at__gt=since).values_list("invited_at", flat=True),
        *InvitationResend.objects.filter(resent_by=actor, resent_at__gt=since).values_list("resent_at", flat=True),
    ]
    by_organization = [
        *Invitation.objects.filter(organization=organization, invited_at__gt=since).values_list(
            "invited_at", flat=True
        ),
        *InvitationResend.objects.filter(organization=organization, resent_at__gt=since).values_list(
            "resent_at", flat=True
        ),
    ]
    return [
        ("inviter", per_inviter_per_day(), sorted(by_inviter)),
        ("organization", per_organization_per_day(), sorted(by_organization)),
    ]


def _check_limits(
    *,
    actor: User,
    organization: Organization,
    wanted: int,
    now: datetime,
    usage: list[tuple[str, int, list[datetime]]] | None = None,
) -> None:
    """Refuse (429, nothing sent) when `wanted` more e-mails would pass the inviter's or the organization's
    limit over the last 24 hours (`usage`: from `_limit_usage`, taken before this request wrote anything)."""
    if usage is None:
        usage = _limit_usage(actor=actor, organization=organization, now=now)
    refusals = []
    for scope, limit, times in usage:
        remaining = max(0, limit - len(times))
        if wanted <= remaining:
            continue
        # The wanted room opens when enough of the oldest sends leave the window (never, if wanted > limit).
        wait = LIMIT_WINDOW if wanted > limit else times[len(times) + wanted - limit - 1] + LIMIT_WINDOW - now
        refusals.append((scope, limit, remaining, max(1, math.ceil(wait.total_seconds()))))
    if not refusals:
        return
    # Tell about the tighter limit; wait until every limit involved has room again.
    scope, limit, remaining, _ = min(refusals, key=lambda refusal: (refusal[2], -refusal[3]))
    retry_after = max(refusal[3] for refusal in refusals)
    who = "you" if scope == "inviter" else f"the organization {organization.name}"
    per = "per inviter" if scope == "inviter" else "per organization"
    free_at = (now + timedelta(seconds=retry_after)).replace(microsecond=0)
    if wanted > limit:
        details = f"This request alone is larger than the limit of {limit} invitations in 24 hours."
        remediation = f"Send at most {limit} invitations a day ({remaining} now), in smaller requests."
    else:
        details = (
            "The limit counts invitations sent and resent over the last 24 hours; enough of them leave the window "
            f"at {free_at.isoformat().replace('+00:00', 'Z')} (in {_human_wait(retry_after)})."
        )
        remediation = f"Retry after {retry_after} seconds, or send at most {remaining} invitation(s) now."
    raise InvitationRateLimited(
        f"Daily invitation limit reached: {who} can send {remaining} more invitation(s) now "
        f"(at most {limit} {per} in 24 hours); this request needs {wanted}. Nothing was sent.",
        code="INVITATION_RATE_LIMITED",
        details=details,
        remediation=remediation,
        retry_after=retry_after,
        extra={"limit": limit, "remaining": remaining, "requested": wanted, "retry_after": retry_after},
    )


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
    _require_verified_inviter(actor)
    with transaction.atomic():
        _lock_sending(actor=actor, organization_id=project.organization_id)
        _check_limits(actor=actor, organization=project.organization, wanted=1, now=timezone.now())
        return _send(
            actor=actor,
            actor_role=actor_role,
            project=project,
            email=email,
            role=role,
            message=message,
            expires_in_days=expires_in_days,
            access_expires_at=access_expires_at,
        )


def _send(
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


def _require_manager(*, actor: User, invitation: Invitation) -> str:
    return require_project_role(user=actor, project=invitation.project, minimum=ProjectRole.ADMIN)


@transaction.atomic
def invitation_resend(*, actor: User, invitation: Invitation) -> Invitation:
    """A new link (the old one stops working), a fresh expiry, and another e-mail; counts toward the limits."""
    _require_manager(actor=actor, invitation=invitation)
    _require_verified_inviter(actor)
    _lock_sending(actor=actor, organization_id=invitation.organization_id)
    invitation = Invitation.objects.select_for_update().select_related("project", "organization").get(pk=invitation.pk)
    if invitation.status != InvitationStatus.PENDING:
        raise Conflict(
            f"Only pending invitations can be resent; this one is {invitation.status}.", code="INVITATION_NOT_PENDING"
        )
    now = timezone.now()
    _check_limits(actor=actor, organization=invitation.organization, wanted=1, now=now)
    _new_salt(invitation)
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


# --- Answering ------------------------------------------------------------------------------------


def _check_link(invitation: Invitation, *, token: str | None, link_proof: str | None) -> bool:
    """Whether the link was presented (its token, or a session's proof of it); a wrong one is a 404."""
    if token is not None and not _token_matches(invitation, token):
        raise _link_not_valid()
    if link_proof is not None and not _link_proof_matches(invitation, link_proof):
        raise _link_not_valid()
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
    *,
    actor: User,
    project: Project,
    rows: list[dict],
    default_role: str = ProjectRole.MEMBER,
    default_message: str = "",
) -> BulkResult:
    """Each row on its own: one bad row does not sink the others. But the request as a whole must fit the daily
    limits: if the invitations it would send do not, it is refused (429) and nothing is written or sent."""
    actor_role = require_project_role(user=actor, project=project, minimum=ProjectRole.ADMIN)
    _require_verified_inviter(actor)
    most = bulk_max()
    if len(rows) > most:
        raise ValidationFailed(
            f"At most {most} invitations per request; this one has {len(rows)}.",
            remediation=f"Split the list into requests of {most} or fewer.",
            fields={"invitations": [f"Ensure this field has no more than {most} elements."]},
        )
    default_message = clean_message(default_message, field="default_message")
    result = BulkResult()
    with transaction.atomic():
        _lock_sending(actor=actor, organization_id=project.organization_id)
        now = timezone.now()
        usage = _limit_usage(actor=actor, organization=project.organization, now=now)
        seen: set[str] = set()
        for row in rows:
            email = str(row.get("email", "")).strip().lower()
            if email in seen:
                result.results.append({"email": email, "status": "skipped", "reason": "Listed twice."})
                continue
            seen.add(email)
            try:
                invitation = _send(
                    actor=actor,
                    actor_role=actor_role,
                    project=project,
                    email=email,
                    role=row.get("role") or default_role,
                    message=row.get("message") or default_message,
                )
            except Conflict as error:
                result.results.append(
                    {"email": email, "status": "skipped", "code": error.code, "reason": error.message}
                )
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
        # Against the limits as they were before this request. On refusal the rollback drops the new rows, their
        # audit events and their queued e-mails (on_commit callbacks) alike.
        _check_limits(
            actor=actor, organization=project.organization, wanted=result.summary["sent"], now=now, usage=usage
        )
    return result


# --- Expiry ------------------------------------------------------------------------------------------


def invitations_expire(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return Invitation.objects.filter(status=InvitationStatus.PENDING, expires_at__lte=now).update(
        status=InvitationStatus.EXPIRED
    )


def memberships_expire(*, now: datetime | None = None) -> int:
    """End project memberships whose access date has passed (visiting collaborators, courses)."""
    now = now or timezone.now()
    ended = 0
    for member in ProjectMember.objects.filter(expires_at__lte=now).select_related("project", "user"):
        with transaction.atomic():
            audit_record(
                actor=SYSTEM,
                action="project_member.expire",
                target=member,
                organization=member.project.organization,
                metadata={"user": member.user.email},
            )
            member.delete()
            ended += 1
    return ended
