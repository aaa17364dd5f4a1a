"""Spend in budget periods: what enforcement (thresholds) and the launch check (reservations) count against an
allocation, from one definition (periods from budgets.services.periods, open intervals from their period's start)."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import reduce
from operator import or_

from django.db.models import Q, Sum

from budgets import ledger
from budgets.models import Allocation, CostEntry
from budgets.selectors import open_workspaces
from budgets.services.periods import Period, current_period

ZERO = Decimal(0)


@dataclass
class Spending:
    """The current period's spend (closed + open) by project and by (project, member)."""

    by_project: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    by_member: dict[tuple[str, int | None], Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    # The open (unwritten) part of each workspace's cost, counted above too.
    open_by_workspace: dict[str, Decimal] = field(default_factory=dict)

    def add(self, project_id: str, member_id: int | None, amount: Decimal) -> None:
        self.by_project[project_id] += amount
        self.by_member[(project_id, member_id)] += amount


def _periods(allocations: list[Allocation], now: datetime) -> dict[str, Period]:
    """Each funded project's current period (budgets.services.periods)."""
    return {
        a.project_id: current_period(a.pool, zone=ledger.zone_of(a.project.organization.time_zone), now=now)
        for a in allocations
    }


def _period_clauses(periods: dict[str, Period]) -> Q:
    """Entries in their allocation's current period: one clause per distinct period."""
    by_period: dict[tuple[datetime, datetime], list[str]] = defaultdict(list)
    for project_id, period in periods.items():
        by_period[(period.start, period.end)].append(project_id)
    clauses = [
        Q(project_id__in=project_ids, start__gte=start, start__lt=end)
        for (start, end), project_ids in by_period.items()
    ]
    return reduce(or_, clauses) if clauses else Q(pk__in=[])


def period_spending(allocations: list[Allocation], now: datetime) -> Spending:
    """Two queries: the closed entries of every funded project summed by project and member, and the open
    intervals of their live workspaces."""
    spending = Spending()
    if not allocations:
        return spending
    project_ids = [a.project_id for a in allocations]
    periods = _periods(allocations, now)
    closed = (
        CostEntry.objects.filter(project_id__in=project_ids, start__lt=now)
        .filter(_period_clauses(periods))
        .values_list("project_id", "member_id")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("project_id", "member_id", "total")
    )
    for project_id, member_id, total in closed:
        spending.add(project_id, member_id, total)
    for workspace in open_workspaces(Q(project_id__in=project_ids)):
        period = periods[workspace.project_id]
        if not period.start <= now < period.end:
            continue
        cost = ledger.open_cost(workspace, now=now, since=period.start)
        spending.add(workspace.project_id, workspace.owner_id, cost.total)
        spending.open_by_workspace[workspace.pk] = cost.total
    return spending
