"""Who may send how many invitations: the daily limits per inviter and per organization, counted from the rows."""

import hashlib
import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from accounts.models import Organization, User
from invitations.models import Invitation, InvitationResend
from platform_site.error_codes import ErrorCode
from platform_site.errors import CarrelError


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


def lock_sending(*, actor: User, organization_id: str) -> None:
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


def limit_usage(*, actor: User, organization: Organization, now: datetime) -> list[tuple[str, int, list[datetime]]]:
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


def check_limits(
    *,
    actor: User,
    organization: Organization,
    wanted: int,
    now: datetime,
    usage: list[tuple[str, int, list[datetime]]] | None = None,
) -> None:
    """Refuse (429, nothing sent) when `wanted` more e-mails would pass the inviter's or the organization's
    limit over the last 24 hours (`usage`: from `limit_usage`, taken before this request wrote anything)."""
    if usage is None:
        usage = limit_usage(actor=actor, organization=organization, now=now)
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
