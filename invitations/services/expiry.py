"""Expiry: invitations past their date, memberships past their access date."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from invitations.models import Invitation, InvitationStatus
from platform_site.actors import SYSTEM
from projects.models import ProjectMember

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
