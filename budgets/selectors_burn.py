"""Many projects' budgets at a glance (the console's home): what each has spent of its allocation, how fast it
spends (the 7-day burn rate of budgets.reports) and how long the rest lasts at that rate, in a constant number of
queries however many projects and workspaces there are.

budgets.reports computes the same figures for one project in depth; this reads them for a list, from the daily
rollup and the open intervals (budgets.selectors_pools.spent_by_project), with the same rules: the burn window
of reports.burn_window_start, the period of reports.period_of and the runway of reports.runway_at."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from budgets import ledger, reports
from budgets.models import Allocation
from budgets.selectors import ZERO, money
from budgets.selectors_pools import allocation_figures, spent_by_project
from projects.models import Project

# spent_by_project counts the open intervals of a window that has not ended yet: the burn window ends just after now.
JUST_AFTER = timedelta(microseconds=1)


@dataclass(frozen=True)
class ProjectBurn:
    allocated: Decimal
    spent: Decimal  # in the allocation's current period
    remaining: Decimal
    utilization: Decimal | None  # spent / allocated
    status: str  # ok, warning, exceeded
    daily_burn: Decimal  # average per day over the burn window
    runway_days: Decimal
    runway_end: datetime
    period_end: datetime


def project_burns(projects: list[Project], *, now: datetime | None = None) -> dict[str, ProjectBurn]:
    """The funded projects among `projects` (organization loaded) by id; unfunded ones are absent."""
    now = now or timezone.now()
    allocations = list(
        Allocation.objects.filter(project_id__in=[project.pk for project in projects]).select_related(
            "pool__organization"
        )
    )
    if not allocations:
        return {}
    figures = allocation_figures(allocations, now=now)
    zones = {a.project_id: ledger.zone_of(a.pool.organization.time_zone) for a in allocations}
    windows = {pid: (reports.burn_window_start(now, zone), now + JUST_AFTER) for pid, zone in zones.items()}
    week = spent_by_project(windows, now=now, zones=zones)
    burns = {}
    for allocation in allocations:
        project_id, zone = allocation.project_id, zones[allocation.project_id]
        elapsed = reports.days_between(windows[project_id][0], now)
        daily = week[project_id] / elapsed if elapsed > 0 else ZERO
        figure = figures[allocation.pk]
        _, period_end = reports.period_of(allocation, now, zone)
        days, end = reports.runway_at(remaining=figure.remaining, daily_burn=daily, now=now, period_end=period_end)
        burns[project_id] = ProjectBurn(
            allocated=allocation.amount,
            spent=figure.spent,
            remaining=figure.remaining,
            utilization=figure.utilization,
            status=figure.status,
            daily_burn=money(daily),
            runway_days=days,
            runway_end=end,
            period_end=period_end,
        )
    return burns
