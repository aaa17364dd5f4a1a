"""The daily cost digest: project owners and admins opt in; an hourly task sends it once per local day.

The day is claimed on the membership row (`cost_digest_sent_on`, a conditional update) in the transaction that
enqueues the e-mail, so two runs of the task, or a run per hour, never send it twice the same day."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import Membership, User
from audit.services import audit_record
from budgets import dispatch, ledger
from budgets.models import Allocation, CostEntry
from budgets.selectors import money, open_workspaces
from budgets.services.reservations import committed
from platform_site.errors import PermissionDenied
from projects.models import Project, ProjectMember, ProjectRole
from projects.services import effective_project_role, project_role_of

SEND_AFTER = time(7, 0)
TOP_WORKSPACES = 5
MANAGERS = (ProjectRole.OWNER, ProjectRole.ADMIN)
ZERO = Decimal(0)


def cost_digest_set(*, actor: User, project: Project, enabled: bool) -> ProjectMember:
    """Turn the daily digest on or off for the caller's own membership (project owners and admins)."""
    role = project_role_of(user=actor, project=project)
    membership: ProjectMember | None = ProjectMember.objects.current().filter(project=project, user=actor).first()
    if role not in MANAGERS or membership is None:
        raise PermissionDenied(
            "Only the project's owners and admins can receive its daily cost digest.",
            details=f"Your role in project {project.name} is '{role or 'none'}'"
            + ("" if membership else ", and you are not one of its members")
            + ".",
            remediation="Ask a project owner to make you an admin of the project (its members list).",
        )
    with transaction.atomic():
        changed = membership.cost_digest != enabled
        membership.cost_digest = enabled
        membership.save(update_fields=["cost_digest"])
        if changed:
            audit_record(
                actor=actor,
                action="project.cost_digest",
                target=project,
                organization=project.organization,
                metadata={"enabled": enabled},
            )
    return membership


def digests_due(now: datetime | None = None) -> list[tuple[int, date]]:
    """Claim today's digest of every opted-in owner or admin whose organization's day is past 07:00, and enqueue
    it. Returns the (membership id, day) pairs claimed."""
    now = now or timezone.now()
    candidates = (
        ProjectMember.objects.current()
        .filter(cost_digest=True, project__deleted_at__isnull=True)
        .select_related("project__organization")
    )
    org_roles = dict(
        ((organization_id, user_id), role)
        for organization_id, user_id, role in Membership.objects.filter(
            organization_id__in=candidates.values("project__organization_id"),
            user_id__in=candidates.values("user_id"),
        ).values_list("organization_id", "user_id", "role")
    )
    claimed = []
    for member in candidates:
        organization = member.project.organization
        local = now.astimezone(ledger.zone_of(organization.time_zone))
        if local.time() < SEND_AFTER or member.cost_digest_sent_on == local.date():
            continue
        role = effective_project_role(
            project_role=member.role, org_role=org_roles.get((organization.pk, member.user_id))
        )
        if role not in MANAGERS:
            continue  # no longer an owner or admin: the option stays, but nothing is sent
        with transaction.atomic():
            taken = (
                ProjectMember.objects.filter(pk=member.pk, cost_digest=True)
                .exclude(cost_digest_sent_on=local.date())
                .update(cost_digest_sent_on=local.date())
            )
            if taken:
                dispatch.send_cost_digest(member.pk, local.date().isoformat())
                claimed.append((member.pk, local.date()))
    return claimed


@dataclass(frozen=True)
class TopWorkspace:
    name: str
    owner: str
    state: str
    cost: Decimal


@dataclass(frozen=True)
class Digest:
    project: Project
    day: date  # the day the digest is for (sent on the next day)
    yesterday: Decimal
    month_to_date: Decimal
    allocated: Decimal | None
    spent_in_period: Decimal | None
    remaining: Decimal | None
    top: list[TopWorkspace]


def digest_of(*, project: Project, today: date, now: datetime | None = None) -> Digest:
    """Yesterday's spend (the organization's calendar day), month to date, what the allocation has left in its
    period, and the month's top workspaces."""
    now = now or timezone.now()
    yesterday = today - timedelta(days=1)
    first = today.replace(day=1)
    entries = CostEntry.objects.filter(project_id=project.pk)
    yesterday_total = entries.filter(day=yesterday).aggregate(total=Sum("amount"))["total"] or ZERO
    by_workspace = dict(
        entries.filter(day__gte=first, day__lte=today)
        .values_list("workspace_id")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("workspace_id", "total")
    )
    zone = ledger.zone_of(project.organization.time_zone)
    first_midnight = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    for workspace in open_workspaces(Q(project_id=project.pk)):
        cost = ledger.open_cost(workspace, now=now, since=first_midnight).total
        by_workspace[workspace.pk] = by_workspace.get(workspace.pk, ZERO) + cost
    month_to_date = sum(by_workspace.values(), ZERO)
    ranked = sorted(by_workspace.items(), key=lambda item: item[1], reverse=True)[:TOP_WORKSPACES]
    names = {
        w.pk: w
        for w in project.workspaces.filter(pk__in=[pk for pk, _ in ranked])
        .select_related("owner")
        .only("id", "name", "state", "owner__email")
    }
    top = [
        TopWorkspace(names[pk].name, names[pk].owner.email, names[pk].state, money(cost))
        for pk, cost in ranked
        if pk in names and cost > 0
    ]
    allocation = Allocation.objects.select_related("pool", "project__organization").filter(project=project).first()
    allocated = spent = remaining = None
    if allocation is not None:
        state = committed(allocation=allocation, member_id=None, now=now)
        allocated, spent = money(allocation.amount), money(state.spent)
        remaining = money(allocation.amount - state.spent)
    return Digest(project, yesterday, money(yesterday_total), money(month_to_date), allocated, spent, remaining, top)
