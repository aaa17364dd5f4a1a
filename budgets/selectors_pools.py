"""Reading budget pools and allocations: what has been spent against them, from the ledger.

An allocation's spend is its project's ledger rows inside the pool's current period (the whole pool from its start
to its end date; for a monthly pool, the current calendar month in the organization's time zone, amounts being per
month), plus the open interval of the project's live workspaces while that period is current. Every function here
costs a constant number of queries however many pools, allocations or projects it reads: one GROUP BY over the
ledger and one query of open workspaces for all of them.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone

from budgets import ledger
from budgets.models import Allocation, BudgetAlert, BudgetPool, CostDay, CostEntry, MemberCap
from budgets.selectors import ZERO, money, open_spend_by_project, open_workspaces
from budgets.services.periods import current_period
from platform_site.actors import Caller

__all__ = ["ZERO", "money"]

RATE = Decimal("0.0001")
PERCENT = Decimal("0.01")
Window = tuple[datetime, datetime]


def period_window(pool: BudgetPool, *, now: datetime) -> Window:
    """The pool's current period (budgets.services.periods). Needs `pool.organization` loaded."""
    period = current_period(pool, zone=ledger.zone_of(pool.organization.time_zone), now=now)
    return period.start, period.end


def spent_by_project(
    windows: Mapping[str, Window], *, now: datetime, zones: Mapping[str, ZoneInfo] | None = None
) -> dict[str, Decimal]:
    """Each project's spend inside its window, in two queries however long the windows are: whole days from
    the daily rollup (CostDay), the window's first and last days from the ledger's rows (an entry never crosses
    a day in the organization's time zone, `zones[project_id]`, UTC when missing), open intervals priced now."""
    spent = {project_id: ZERO for project_id in windows}
    by_window: dict[tuple[Window, str], list[str]] = defaultdict(list)
    for project_id, (start, end) in windows.items():
        zone = (zones or {}).get(project_id) or ledger.zone_of("UTC")
        by_window[((start, min(end, now)), zone.key)].append(project_id)
    for project_id, total in _closed_by_project(by_window):
        spent[project_id] += total
    # An interval left open since before the period began counts from the period's start.
    current = {project_id: start for project_id, (start, end) in windows.items() if start <= now < end}
    for project_id, cost in open_spend_by_project(current, now=now).items():
        spent[project_id] += cost.total
    return spent


# One window's closed spend: its first and last days' rows from the ledger, the whole days between from the
# daily rollup. On PostgreSQL the parts of every window are one UNION ALL, written once rather than compiled.
_WINDOW_ROWS_SQL = (
    "SELECT project_id, SUM(amount) FROM budgets_costentry WHERE project_id = ANY(%s::varchar[])"
    " AND day = ANY(%s::date[]) AND start >= %s AND start < %s GROUP BY project_id"
)
_WINDOW_DAYS_SQL = (
    "SELECT project_id, SUM(amount) FROM budgets_costday WHERE project_id = ANY(%s::varchar[])"
    " AND day > %s AND day < %s GROUP BY project_id"
)


def _closed_by_project(by_window: Mapping[tuple[Window, str], list[str]]) -> list[tuple[str, Decimal]]:
    """(project, closed spend) parts of each (window, time zone)'s projects, in one round trip; a project may
    appear in several parts (rows and days), each to be added."""
    spans = []  # (projects, first day, last day, start, end) of each window that has begun
    for ((start, end), zone_name), project_ids in by_window.items():
        if start < end:
            zone = ledger.zone_of(zone_name)
            spans.append((project_ids, start.astimezone(zone).date(), end.astimezone(zone).date(), start, end))
    if connection.vendor == "postgresql":
        parts: list[str] = []
        params: list = []
        for project_ids, first, last, start, end in spans:
            parts.append(_WINDOW_ROWS_SQL)
            params += [project_ids, sorted({first, last}), start, end]
            if (last - first).days > 1:
                parts.append(_WINDOW_DAYS_SQL)
                params += [project_ids, first, last]
        if not parts:
            return []
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(f"({part})" for part in parts), params)
            return [(project_id, total) for project_id, total in cursor.fetchall()]
    # SQLite: the same sums as two grouped querysets.
    rows, days = Q(), Q()
    for project_ids, first, last, start, end in spans:
        rows |= Q(project_id__in=project_ids, day__in={first, last}, start__gte=start, start__lt=end)
        if (last - first).days > 1:
            days |= Q(project_id__in=project_ids, day__gt=first, day__lt=last)
    sums = [
        model.objects.filter(condition).values_list("project_id").annotate(total=Sum("amount")).order_by()
        for model, condition in ((CostEntry, rows), (CostDay, days))
        if condition
    ]
    return [(project_id, total) for queryset in sums for project_id, total in queryset]


def spent_by_member(*, project_id: str, window: Window, now: datetime) -> dict[int, Decimal]:
    """Each member's spend in one project inside `window` (closed rows by member, open by workspace owner)."""
    start, end = window
    spent: dict[int, Decimal] = defaultdict(lambda: ZERO)
    if start < min(end, now):
        closed = (
            CostEntry.objects.filter(project_id=project_id, member_id__isnull=False, start__gte=start)
            .filter(start__lt=min(end, now))
            .values_list("member_id")
            .annotate(total=Sum("amount"))
            .order_by()
            .values_list("member_id", "total")
        )
        for member_id, total in closed:
            spent[member_id] += total
    if start <= now < end:
        for workspace in open_workspaces(Q(project_id=project_id)):
            spent[workspace.owner_id] += ledger.open_cost(workspace, now=now, since=start).total
    return dict(spent)


@dataclass(frozen=True)
class Figures:
    """A limit and what was spent against it in the current period."""

    limit: Decimal
    spent: Decimal
    warn_at: Decimal  # the fraction of the limit from which the status is "warning"
    period_start: datetime
    period_end: datetime

    @property
    def remaining(self) -> Decimal:
        return money(self.limit - self.spent)

    @property
    def utilization(self) -> Decimal | None:
        """spent / limit to 4 places; None for a limit of zero (no rate of nothing)."""
        if not self.limit:
            return None
        return (self.spent / self.limit).quantize(RATE, rounding=ROUND_HALF_UP)

    @property
    def status(self) -> str:
        if self.spent >= self.limit and (self.limit or self.spent):
            return "exceeded"
        if self.spent >= self.limit * self.warn_at and self.limit:
            return "warning"
        return "ok"


@dataclass(frozen=True)
class PoolFigures(Figures):
    allocated: Decimal = ZERO

    @property
    def unallocated(self) -> Decimal:
        return money(self.limit - self.allocated)


def _warn_at(allocation: Allocation) -> Decimal:
    thresholds = [Decimal(value) for value in allocation.alert_thresholds or []]
    return min(thresholds) if thresholds else allocation.pool.alert_threshold


def allocation_figures(allocations: Iterable[Allocation], *, now: datetime | None = None) -> dict[str, Figures]:
    """Figures of each allocation, in two queries. Needs `pool__organization` loaded (select_related)."""
    now = now or timezone.now()
    listed = list(allocations)
    windows = {allocation.project_id: period_window(allocation.pool, now=now) for allocation in listed}
    zones = {allocation.project_id: ledger.zone_of(allocation.pool.organization.time_zone) for allocation in listed}
    spent = spent_by_project(windows, now=now, zones=zones)
    return {
        allocation.pk: Figures(
            limit=allocation.amount,
            spent=money(spent[allocation.project_id]),
            warn_at=_warn_at(allocation),
            period_start=windows[allocation.project_id][0],
            period_end=windows[allocation.project_id][1],
        )
        for allocation in listed
    }


def pool_figures(pools: Iterable[BudgetPool], *, now: datetime | None = None) -> dict[str, PoolFigures]:
    """Figures of each pool (all its allocations, whoever asks), in three queries. Needs `organization` loaded."""
    now = now or timezone.now()
    listed = list(pools)
    windows = {pool.pk: period_window(pool, now=now) for pool in listed}
    rows = list(
        Allocation.objects.filter(pool_id__in=list(windows)).order_by().values_list("pool_id", "project_id", "amount")
    )
    zone_of_pool = {pool.pk: ledger.zone_of(pool.organization.time_zone) for pool in listed}
    spent = spent_by_project(
        {project_id: windows[pool_id] for pool_id, project_id, _ in rows},
        now=now,
        zones={project_id: zone_of_pool[pool_id] for pool_id, project_id, _ in rows},
    )
    allocated: dict[str, Decimal] = defaultdict(lambda: ZERO)
    pool_spent: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for pool_id, project_id, amount in rows:
        allocated[pool_id] += amount
        pool_spent[pool_id] += spent[project_id]
    return {
        pool.pk: PoolFigures(
            limit=pool.total_amount,
            spent=money(pool_spent[pool.pk]),
            warn_at=pool.alert_threshold,
            period_start=windows[pool.pk][0],
            period_end=windows[pool.pk][1],
            allocated=allocated[pool.pk],
        )
        for pool in listed
    }


@dataclass(frozen=True)
class Summary:
    pool: BudgetPool
    figures: PoolFigures
    allocations: list[Allocation]  # those the caller may see, each with `.figures`
    alerts: list[BudgetAlert]
    top_spending: list[dict]


def pool_summary(pool: BudgetPool, *, user: Caller, now: datetime | None = None, alerts: int = 50) -> Summary:
    """The pool's figures (all of it) and the allocations, alerts and top spenders the caller may see (a project
    owner sees their own project's only). Five queries whatever the number of allocations."""
    now = now or timezone.now()
    every = list(Allocation.objects.filter(pool_id=pool.pk).select_related("project", "allocated_by"))
    for allocation in every:
        allocation.pool = pool
    figures = allocation_figures(every, now=now)
    window = period_window(pool, now=now)
    total = PoolFigures(
        limit=pool.total_amount,
        spent=money(sum((figures[a.pk].spent for a in every), ZERO)),
        warn_at=pool.alert_threshold,
        period_start=window[0],
        period_end=window[1],
        allocated=sum((a.amount for a in every), ZERO),
    )
    visible_ids = set(Allocation.objects.visible_to(user).filter(pool_id=pool.pk).values_list("pk", flat=True))
    shown = [allocation for allocation in every if allocation.pk in visible_ids]
    for allocation in shown:
        allocation.figures = figures[allocation.pk]
    alert_rows = list(
        BudgetAlert.objects.filter(pool_id=pool.pk)
        .filter(Q(allocation_id__isnull=True) | Q(allocation_id__in=visible_ids))
        .select_related("member")[:alerts]
    )
    spenders = sorted((a for a in shown if figures[a.pk].spent > 0), key=lambda a: (-figures[a.pk].spent, a.pk))
    top = [
        {
            "project_id": allocation.project_id,
            "project_name": allocation.project.name,
            "spent": figures[allocation.pk].spent,
            "percentage": (figures[allocation.pk].spent * 100 / total.spent).quantize(PERCENT, ROUND_HALF_UP),
        }
        for allocation in spenders[:10]
    ]
    return Summary(pool=pool, figures=total, allocations=shown, alerts=alert_rows, top_spending=top)


def member_caps(allocation: Allocation, *, now: datetime | None = None) -> list[MemberCap]:
    """The allocation's caps, each with `.spent` (the member's spend in the current period). Three queries.
    Needs `allocation.pool.organization` loaded."""
    now = now or timezone.now()
    caps = list(MemberCap.objects.filter(allocation_id=allocation.pk).select_related("user").order_by("user__email"))
    spent = spent_by_member(project_id=allocation.project_id, window=period_window(allocation.pool, now=now), now=now)
    for cap in caps:
        cap.spent = money(spent.get(cap.user_id, ZERO))  # type: ignore[attr-defined]
    return caps


@dataclass(frozen=True)
class ProjectBudgetBrief:
    """What a project list shows of a project's money (the seed's `budget` object)."""

    allocation_id: str
    pool_id: str
    total_allocated: Decimal
    current_spend: Decimal
    remaining: Decimal
    utilization_rate: Decimal | None
    status: str


def project_budget_briefs(project_ids: Iterable[str], *, now: datetime | None = None) -> dict[str, ProjectBudgetBrief]:
    """The money of each funded project among `project_ids` (unfunded ones are absent), in three queries."""
    allocations = Allocation.objects.filter(project_id__in=list(project_ids)).select_related("pool__organization")
    figures = allocation_figures(allocations, now=now)
    return {
        allocation.project_id: ProjectBudgetBrief(
            allocation_id=allocation.pk,
            pool_id=allocation.pool_id,
            total_allocated=allocation.amount,
            current_spend=figures[allocation.pk].spent,
            remaining=figures[allocation.pk].remaining,
            utilization_rate=figures[allocation.pk].utilization,
            status=figures[allocation.pk].status,
        )
        for allocation in allocations
    }
