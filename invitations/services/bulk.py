"""Bulk invitations: per-row results, refused whole when over the daily limit."""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from invitations.services.limits import bulk_max, check_limits, limit_usage, lock_sending
from invitations.services.sending import clean_message, require_verified_inviter, send_one
from platform_site.errors import CarrelError, Conflict, ValidationFailed
from projects.models import Project, ProjectRole
from projects.services import require_project_role

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
    require_verified_inviter(actor)
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
        lock_sending(actor=actor, organization_id=project.organization_id)
        now = timezone.now()
        usage = limit_usage(actor=actor, organization=project.organization, now=now)
        seen: set[str] = set()
        for row in rows:
            email = str(row.get("email", "")).strip().lower()
            if email in seen:
                result.results.append({"email": email, "status": "skipped", "reason": "Listed twice."})
                continue
            seen.add(email)
            try:
                invitation = send_one(
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
        check_limits(
            actor=actor, organization=project.organization, wanted=result.summary["sent"], now=now, usage=usage
        )
    return result
