"""Money reports: a project's budget and cost analysis, and the helpers budgets.history (the caller's current
costs, cost history) shares.

Selectors only (nothing is written). Every figure comes from the ledger (CostEntry rows, summed in SQL) plus
the open interval of each live workspace (budgets.ledger.open_cost), as budgets.selectors does; the one
exception is hibernation savings, the compute a stopped or hibernated workspace did NOT pay, which is time
read from the state transitions and priced at the workspace's compute rate. Each report costs a constant
number of queries, whatever the number of workspaces or ledger rows.

"Day" and "month" are the organization's (its time zone): CostEntry.day is already its local date.
Closed rows are filtered on `day` (indexed with project, organization, workspace) and, where a window
starts at an instant rather than a midnight, on `start` too.
"""

import functools
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Organization
from budgets import ledger
from budgets.models import Allocation, BudgetAlert, CostDay, CostEntry
from budgets.selectors import HOUR, ZERO, money, open_spend
from budgets.services.periods import current_period, month_of
from idle.selectors import idle_savings
from platform_site.sql import RowLoader, among
from projects.models import Project
from workspaces.models import StateTransition, Workspace, WorkspaceState

S = WorkspaceState
DAY = Decimal(86400)
HUNDRED = Decimal(100)
PERCENT = Decimal("0.1")
FRACTION = Decimal("0.0001")
BURN_DAYS = 7
TOP = 5
ALERTS_LISTED = 20
# The compute a workspace does not pay while it is in these states is what hibernation (or stopping) saves.
RESTING = frozenset({S.STOPPED, S.HIBERNATED})
# Stopped this long and still paying for its volume: worth a recommendation.
LONG_STOPPED = timedelta(days=7)
# A workspace without an idle policy is assumed needed for a working day; the rest could be hibernated.
WORKING_HOURS_PER_DAY = Decimal(8)
NOT_INCLUDED = ["data_transfer", "taxes", "support_plans"]


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    return (part * HUNDRED / whole).quantize(PERCENT, rounding=ROUND_HALF_UP)


def fraction(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    return (part / whole).quantize(FRACTION, rounding=ROUND_HALF_UP)


def days_between(start: datetime, end: datetime) -> Decimal:
    return ledger.seconds_between(start, end) / DAY


# --- Calendar (the organization's time zone) ---------------------------------------------------------------------


def local_midnight(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(zoneinfo.ZoneInfo("UTC"))


def month_bounds(now: datetime, zone: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """The local calendar month containing `now`: its first midnight and the next month's."""
    month = month_of(now, zone)
    return month.start, month.end


def burn_window_start(now: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The 7 days of the burn rate: today so far and the 6 days before it (local midnights)."""
    return local_midnight(now.astimezone(zone).date() - timedelta(days=BURN_DAYS - 1), zone)


def allocation_of(project: Project) -> Allocation | None:
    try:
        return project.allocation  # reverse one-to-one: select_related("allocation__pool") loads it
    except Allocation.DoesNotExist:
        return None


def period_of(allocation: Allocation, now: datetime, zone: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """The budget period the allocation's amount is for (budgets.services.periods). For a whole-term pool the
    end is the allocation's own end date when it has one (runway stops there)."""
    period = current_period(allocation.pool, zone=zone, now=now)
    if allocation.pool.period == allocation.pool.Period.MONTHLY:
        return period.start, period.end
    return period.start, allocation.end_date or period.end


def since(moment: datetime, zone: zoneinfo.ZoneInfo) -> Q:
    """Closed rows that start at or after `moment`: the day filter lets the (…, day) indexes work."""
    return Q(day__gte=moment.astimezone(zone).date(), start__gte=moment)


# --- Open intervals and hibernation savings -----------------------------------------------------------------------

WORKSPACE_FIELDS = (
    "id",
    "name",
    "state",
    "project_id",
    "owner_id",
    "instance_type",
    "hibernation_capable",
    "template_snapshot",
    "ledger_through",
    "run_billed_seconds",
    "hourly_rate",
    "volume_billed",
    "storage_monthly_rate",
    "root_volume_gb",
    "state_changed_at",
    "created_at",
    "organization__discount_percent",
    "organization__time_zone",
)


_WORKSPACE_TABLES = "workspaces_workspace w JOIN accounts_organization o ON o.id = w.organization_id"


@functools.cache
def _workspace_loaders() -> tuple[RowLoader, RowLoader, str]:
    """WORKSPACE_FIELDS as one hand-written select (`w` the workspace, `o` its organization), less the template
    snapshot: the budget's readers (pricing, savings) never look at it, and it is the widest column."""
    own = [name for name in WORKSPACE_FIELDS if "__" not in name and name != "template_snapshot"]
    own.append("organization_id")
    workspace = RowLoader(Workspace, "w", own)
    organization = RowLoader(Organization, "o", ["id", *(n.split("__")[1] for n in WORKSPACE_FIELDS if "__" in n)])
    return workspace, organization, f"SELECT {workspace.columns}, {organization.columns}"


def _workspaces_where(condition: str, params: dict) -> list[Workspace]:
    """The workspaces matching `condition` (SQL over `w`), with what open_cost and the savings read, by id: what
    workspaces_active_since's queryset reads, from a query written once (PostgreSQL)."""
    return [workspace for workspace, _ in _workspaces_with("NULL", condition, params)]


def _workspaces_with(column: str, condition: str, params: dict) -> list[tuple[Workspace, Any]]:
    """_workspaces_where, each workspace with the value of one more `column` (SQL over `w`) read along."""
    workspace_loader, organization_loader, select = _workspace_loaders()
    width = workspace_loader.width + organization_loader.width
    with connection.cursor() as cursor:
        # The callers' constant SQL; every value is a parameter.
        cursor.execute(f"{select}, {column} FROM {_WORKSPACE_TABLES} WHERE {condition} ORDER BY w.id", params)
        rows = cursor.fetchall()
    found = []
    for row in rows:
        workspace = workspace_loader.load(row[: workspace_loader.width])
        workspace.organization = organization_loader.load(row[workspace_loader.width : width])
        found.append((workspace, row[width]))
    return found


def workspaces_active_since(scope: Q, moment: datetime) -> list[Workspace]:
    """The workspaces of `scope` that were live at some point since `moment` (terminated ones that ended
    before it cannot have cost anything since), with what open_cost and the savings read."""
    return list(
        Workspace.objects.filter(scope)
        .filter(~Q(state=S.TERMINATED) | Q(state_changed_at__gte=moment))
        .select_related("organization")
        .only(*WORKSPACE_FIELDS)
        .order_by("pk")
    )


def open_costs(workspaces: Iterable[Workspace], now: datetime) -> dict[str, ledger.OpenCost]:
    """The not-yet-closed cost of each workspace (no query)."""
    result = {}
    for workspace in workspaces:
        if workspace.ledger_through is None or workspace.state in ledger.NOT_CLOSED_DAILY - {S.LAUNCHING}:
            continue
        cost = ledger.open_cost(workspace, now=now)
        if cost.total:
            result[workspace.pk] = cost
    return result


def discount_factor(workspace: Workspace) -> Decimal:
    return (HUNDRED - (workspace.organization.discount_percent or ZERO)) / HUNDRED


def resting_savings(workspaces: list[Workspace], starts: dict[str, datetime], now: datetime) -> dict[str, Decimal]:
    """What each workspace's stopped and hibernated time since its window start (`starts`) would have cost
    at its compute rate (less the organization's discount). One query, for every workspace at once: their
    transitions since the earliest start, walked in Python."""
    if not workspaces:
        return {}
    earliest = min(starts.values())
    # effective_at (the cloud's time of the change) is never after created_at (when Carrel saw it), so the
    # indexed created_at bounds every transition whose effective time can fall in a window.
    rows = (
        StateTransition.objects.filter(workspace_id__in=[w.pk for w in workspaces], created_at__gte=earliest)
        .annotate(at=Coalesce("effective_at", "created_at"))
        .order_by("workspace_id", "created_at", "id")
        .values_list("workspace_id", "from_state", "to_state", "at")
    )
    events: dict[str, list[tuple[str, str, datetime]]] = defaultdict(list)
    for workspace_id, from_state, to_state, at in rows:
        events[workspace_id].append((from_state, to_state, at))
    savings = {}
    for workspace in workspaces:
        start = starts[workspace.pk]
        history = events.get(workspace.pk, [])
        state = history[0][0] if history else workspace.state
        cursor, resting = start, Decimal(0)
        for _from_state, to_state, at in history:
            at = max(at, start)
            if state in RESTING and at > cursor:
                resting += ledger.seconds_between(cursor, at)
            cursor, state = max(cursor, at), to_state
        if state in RESTING and now > cursor:
            resting += ledger.seconds_between(cursor, now)
        if resting:
            savings[workspace.pk] = resting * workspace.hourly_rate / HOUR * discount_factor(workspace)
    return savings


# --- A project's money ---------------------------------------------------------------------------------------------


@dataclass
class ProjectMoney:
    """What a project's budget and cost analysis are computed from: one pass over its ledger."""

    project: Project
    allocation: Allocation | None
    zone: zoneinfo.ZoneInfo
    now: datetime
    period_start: datetime | None
    period_end: datetime | None
    workspaces: list[Workspace]
    by_kind: dict[str, Decimal] = field(default_factory=dict)  # the period's spend by kind
    by_workspace: dict[str, Decimal] = field(default_factory=dict)  # the period's spend by workspace
    month_to_date: Decimal = ZERO
    week: Decimal = ZERO  # the burn window's spend
    week_compute_seconds: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    names: dict[str, str] = field(default_factory=dict)

    @property
    def spent(self) -> Decimal:
        return sum(self.by_kind.values(), ZERO)

    @property
    def burn_rate_daily(self) -> Decimal:
        elapsed = days_between(burn_window_start(self.now, self.zone), self.now)
        return self.week / elapsed if elapsed > 0 else ZERO


def project_money(project: Project, *, now: datetime | None = None) -> ProjectMoney:
    """The project's spend in its budget period (its whole history when it is unfunded), this month and in
    the last 7 days, by kind and by workspace. Three queries (plus one for names of workspaces gone)."""
    now = now or timezone.now()
    zone = ledger.zone_of(project.organization.time_zone)
    allocation = allocation_of(project)
    month_start, _ = month_bounds(now, zone)
    week_start = burn_window_start(now, zone)
    period_start, period_end = period_of(allocation, now, zone) if allocation else (None, None)
    # An unfunded project's "period" is its whole life.
    earliest = min(period_start or project.created_at, month_start, week_start)
    workspaces = workspaces_active_since(Q(project=project), earliest)
    money_ = ProjectMoney(
        project=project,
        allocation=allocation,
        zone=zone,
        now=now,
        period_start=period_start,
        period_end=period_end,
        workspaces=workspaces,
        names={w.pk: w.name for w in workspaces},
    )
    in_period = since(period_start, zone) if period_start else Q()
    in_month, in_week = since(month_start, zone), since(week_start, zone)
    rows = (
        CostEntry.objects.filter(project=project)
        .filter(in_period | in_month | in_week if period_start else Q())
        .values_list("workspace_id", "kind")
        .annotate(
            period=Sum("amount", filter=in_period) if period_start else Sum("amount"),
            month=Sum("amount", filter=in_month),
            week=Sum("amount", filter=in_week),
            week_seconds=Sum("quantity", filter=in_week & Q(kind=CostEntry.Kind.COMPUTE)),
        )
        .order_by()
        .values_list("workspace_id", "kind", "period", "month", "week", "week_seconds")
    )
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    by_workspace: dict[str, Decimal] = defaultdict(Decimal)
    for workspace_id, kind, period, month, week, week_seconds in rows:
        by_kind[kind] += period or ZERO
        if period:
            by_workspace[workspace_id] += period
        money_.month_to_date += month or ZERO
        money_.week += week or ZERO
        if week_seconds:
            money_.week_compute_seconds[workspace_id] = (
                money_.week_compute_seconds.get(workspace_id, ZERO) + week_seconds
            )
    for workspace in workspaces:
        if workspace.state in ledger.COMPUTE_BILLED:
            seconds = ledger.open_compute_seconds(workspace, now=now, since=week_start)
            if seconds:
                money_.week_compute_seconds[workspace.pk] = (
                    money_.week_compute_seconds.get(workspace.pk, ZERO) + seconds
                )
    for workspace in workspaces:
        if workspace.ledger_through is None or workspace.state in ledger.NOT_CLOSED_DAILY - {S.LAUNCHING}:
            continue
        # The open interval counts in each window from the window's start at the earliest.
        cost = ledger.open_cost(workspace, now=now, since=period_start)
        by_kind[CostEntry.Kind.COMPUTE] += cost.compute
        by_kind[CostEntry.Kind.STORAGE] += cost.storage
        if cost.total:
            by_workspace[workspace.pk] += cost.total
        money_.month_to_date += ledger.open_cost(workspace, now=now, since=month_start).total
        money_.week += ledger.open_cost(workspace, now=now, since=week_start).total
    money_.by_kind, money_.by_workspace = dict(by_kind), dict(by_workspace)
    missing = [pk for pk in top_workspaces(money_) if pk not in money_.names]
    if missing:
        money_.names.update(Workspace.objects.filter(pk__in=missing).values_list("pk", "name"))
    return money_


def budget_money(project: Project, *, now: datetime | None = None) -> tuple[ProjectMoney, Decimal]:
    """What project_budget reads of project_money, and the hibernation savings, without loading the project's
    workspaces (10,000 of a big project) or its ledger rows into Python: sums by kind and window in SQL, the
    open intervals summed in SQL (selectors.open_spend), the top spenders ranked in SQL and priced
    exactly in Python, and resting time walked only for the workspaces that rested. PostgreSQL only."""
    now = now or timezone.now()
    zone = ledger.zone_of(project.organization.time_zone)
    allocation = allocation_of(project)
    month_start, _ = month_bounds(now, zone)
    week_start = burn_window_start(now, zone)
    period_start, period_end = period_of(allocation, now, zone) if allocation else (None, None)
    money_ = ProjectMoney(
        project=project,
        allocation=allocation,
        zone=zone,
        now=now,
        period_start=period_start,
        period_end=period_end,
        workspaces=[],
    )
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    windows = {"period": period_start, "month": month_start, "week": week_start}
    for name, by_kind_closed in closed_since(project.pk, windows, zone).items():
        if name == "period":
            for kind, amount in by_kind_closed.items():
                by_kind[kind] += amount
        elif name == "month":
            money_.month_to_date += sum(by_kind_closed.values(), ZERO)
        else:
            money_.week += sum(by_kind_closed.values(), ZERO)
    opened = open_spend_by_windows(project.pk, windows, now=now)
    by_kind[CostEntry.Kind.COMPUTE] += opened["period"].compute
    by_kind[CostEntry.Kind.STORAGE] += opened["period"].storage
    money_.month_to_date += opened["month"].total
    money_.week += opened["week"].total
    money_.by_kind = dict(by_kind)
    top = top_spenders(project, since_=period_start, zone=zone, now=now, count=TOP)
    money_.by_workspace = {workspace.pk: cost for workspace, cost in top}
    money_.names = {workspace.pk: workspace.name for workspace, _ in top}
    start = period_start or project.created_at
    rested = rested_workspaces(project, since_=start)
    savings = resting_savings(rested, {w.pk: start for w in rested}, now)
    return money_, sum(savings.values(), ZERO)


def closed_since(
    project_id: str, windows: dict[str, datetime | None], zone: zoneinfo.ZoneInfo
) -> dict[str, dict[str, Decimal]]:
    """The project's closed cost by kind since each window's start (None: its whole history), in one query
    however long the windows: whole days from the daily rollup (CostDay), each window's first day from the
    ledger's rows (an entry never crosses a day in the organization's time zone)."""
    found: dict[str, dict[str, Decimal]] = {name: defaultdict(Decimal) for name in windows}
    first_days = {name: start.astimezone(zone).date() for name, start in windows.items() if start is not None}
    earliest = min(first_days.values()) if len(first_days) == len(windows) else None
    if connection.vendor == "postgresql":
        for kind, *amounts in _closed_since_rows(project_id, windows, first_days, earliest):
            for name, amount in zip(windows, amounts, strict=True):
                found[name][kind] += amount or ZERO
        return {name: dict(by_kind) for name, by_kind in found.items()}
    days = CostDay.objects.filter(project_id=project_id)
    if earliest is not None:
        days = days.filter(day__gt=earliest)
    sums = {name: Sum("amount", filter=Q(day__gt=first_days[name]) if name in first_days else Q()) for name in windows}
    rows = days.values("kind").annotate(**sums).order_by()
    if first_days:
        # The first days' rows and the whole days after them, in one round trip (UNION ALL of the two sums).
        entries = CostEntry.objects.filter(project_id=project_id, day__in=set(first_days.values()))
        first = {
            name: Sum("amount", filter=Q(day=first_days[name], start__gte=windows[name]))
            if name in first_days
            else Value(None, output_field=DecimalField())
            for name in windows
        }
        rows = entries.values("kind").annotate(**first).order_by().union(rows, all=True)
    for row in rows:
        for name in windows:
            found[name][row["kind"]] += row[name] or ZERO
    return {name: dict(by_kind) for name, by_kind in found.items()}


def _closed_since_rows(
    project_id: str, windows: dict[str, datetime | None], first_days: dict[str, date], earliest: date | None
) -> list[tuple]:
    """closed_since's sums as one hand-written UNION ALL (PostgreSQL): (kind, one sum per window) rows."""
    day_sums, day_params = [], []
    for name in windows:
        if name in first_days:
            day_sums.append("SUM(amount) FILTER (WHERE day > %s)")
            day_params.append(first_days[name])
        else:
            day_sums.append("SUM(amount)")
    params: list[Any] = [*day_params, project_id]
    # Only the fixed fragments above are joined into the text; every value is a parameter.
    sql = f"SELECT kind, {', '.join(day_sums)} FROM budgets_costday WHERE project_id = %s"  # noqa: S608
    if earliest is not None:
        sql += " AND day > %s"
        params.append(earliest)
    sql += " GROUP BY kind"
    if first_days:
        row_sums, row_params = [], []
        for name, start in windows.items():
            if name in first_days:
                row_sums.append("SUM(amount) FILTER (WHERE day = %s AND start >= %s)")
                row_params += [first_days[name], start]
            else:
                row_sums.append("NULL::numeric")
        sql = (
            f"(SELECT kind, {', '.join(row_sums)} FROM budgets_costentry"  # noqa: S608
            " WHERE project_id = %s AND day = ANY(%s::date[]) GROUP BY kind)"
            f" UNION ALL ({sql})"
        )
        params = [*row_params, project_id, sorted(set(first_days.values())), *params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def open_spend_by_windows(
    project_id: str, windows: dict[str, datetime | None], *, now: datetime
) -> dict[str, ledger.OpenCost]:
    """The project's open cost from each window's start (usually the period, the month and the week): one query."""
    return open_spend({name: (project_id, start) for name, start in windows.items()}, now=now)


# Ranked in SQL in floats (an approximation is enough to rank), priced exactly (closed rows summed as decimals,
# the open part by ledger.open_cost): a margin of candidates so that rounding in the ranking cannot leave out a
# true top spender.
_TOP_CANDIDATES = 20
# Ranking is the one pass over every workspace of the project a budget report makes (about half of its database
# time at 10,000 workspaces). Which workspaces are the candidates is kept this long per project and period; their
# figures are priced anew on every request, so every amount shown is exact and only a workspace climbing into the
# top from outside the candidates may show up to this late.
TOP_CANDIDATES_SECONDS = 30
_TOP_SPENDERS_SQL = """
WITH ranked AS (
    -- One pass over the project's workspaces that ever had a ledger cursor (the others never cost anything), from
    -- the covering index workspace_open_cost, in floats kept beside the numerics (the rank_* columns): ranking
    -- needs no exact decimals, and converting every row's numerics on each read cost most of this query.
    SELECT w.id AS workspace_id,
        -- The closed cost in the period: for a workspace created in it, all of its closed cost, kept on its row
        -- (cost_closed: its ledger rows start at or after its creation); for an older one, its rows since then.
        CASE WHEN %(since)s::timestamptz IS NULL OR w.created_at >= %(since)s THEN w.rank_cost_closed
             ELSE COALESCE(older.amount, 0) END
        -- The open interval, as ledger.open_cost prices it (from the period's start at the earliest; the rates
        -- are 0 where nothing is billed), a run's 60-second minimum only where fewer seconds are open.
        + CASE WHEN opened.seconds <= 0 THEN 0
               ELSE %(net)s * (
                   w.rank_compute_per_second
                     * CASE WHEN opened.seconds < %(minimum)s
                            THEN GREATEST(opened.seconds, (%(minimum)s - w.run_billed_seconds)::float8)
                            ELSE opened.seconds END
                   + w.rank_storage_per_second * opened.seconds)
          END AS amount
    FROM workspaces_workspace w
    CROSS JOIN LATERAL (
        -- GREATEST ignores a NULL period start (the whole life).
        SELECT %(now_epoch)s - GREATEST(w.rank_cursor_epoch, %(since_epoch)s) AS seconds
    ) opened
    LEFT JOIN (
        -- Workspaces created before the period: their rows in it, from the (workspace, day) index.
        SELECT e.workspace_id, SUM(e.amount::float8) AS amount
        FROM workspaces_workspace o
        JOIN budgets_costentry e ON e.workspace_id = o.id
        WHERE o.project_id = %(project)s AND o.ledger_through IS NOT NULL AND o.created_at < %(since)s
          AND e.project_id = %(project)s AND e.day >= %(day)s AND e.start >= %(since)s
        GROUP BY e.workspace_id
    ) older ON older.workspace_id = w.id
    WHERE w.project_id = %(project)s AND w.ledger_through IS NOT NULL
      -- A workspace terminated before the period cost nothing in it.
      AND (w.state <> %(terminated)s OR %(since)s::timestamptz IS NULL OR w.state_changed_at >= %(since)s)
    ORDER BY amount DESC, w.id COLLATE "C"
    LIMIT %(limit)s
)
-- The candidates' closed cost, exact, from the (workspace, day) index.
SELECT r.workspace_id, COALESCE((
    SELECT SUM(e.amount) FROM budgets_costentry e
    WHERE e.workspace_id = r.workspace_id AND e.project_id = %(project)s
      AND (%(day)s::date IS NULL OR (e.day >= %(day)s AND e.start >= %(since)s))
), 0)
FROM ranked r
WHERE r.amount > 0
"""
# The kept candidates' closed cost, exact, as above: read along with each candidate's row.
_CANDIDATE_CLOSED_COLUMN = """COALESCE((
    SELECT SUM(e.amount) FROM budgets_costentry e
    WHERE e.workspace_id = w.id AND e.project_id = %(project)s
      AND (%(day)s::date IS NULL OR (e.day >= %(day)s AND e.start >= %(since)s))
), 0)"""
# Still the project's (a kept candidate may have moved to another project since).
_CANDIDATES = "w.id = ANY(%(candidates)s::varchar[]) AND w.project_id = %(project)s"


def top_spenders(
    project: Project, *, since_: datetime | None, zone: zoneinfo.ZoneInfo, now: datetime, count: int
) -> list[tuple[Workspace, Decimal]]:
    """The `count` workspaces that cost the project most since `since_` (its whole life when None), with that
    cost (closed rows plus ledger.open_cost, exact), most first, ties by id. The candidates are kept
    TOP_CANDIDATES_SECONDS per project and period: one query reads them with their closed cost, two when they are
    ranked again. Their figures are always read now."""
    params = {
        "project": project.pk,
        "since": since_,
        "day": since_.astimezone(zone).date() if since_ else None,
        "now": now,
        "minimum": ledger.MINIMUM_RUN_SECONDS,
        "now_epoch": now.timestamp(),
        "since_epoch": since_.timestamp() if since_ else None,
        "terminated": S.TERMINATED,
        "limit": _TOP_CANDIDATES,
        "net": float((100 - (project.organization.discount_percent or 0)) / 100),
    }
    kept = f"budgets:top-candidates:{project.pk}:{params['since_epoch']}"
    candidates = cache.get(kept)
    if candidates is None:
        with connection.cursor() as cursor:
            cursor.execute(_TOP_SPENDERS_SQL, params)
            closed = dict(cursor.fetchall())
        cache.set(kept, list(closed), TOP_CANDIDATES_SECONDS)
        workspaces = _workspaces_where(_CANDIDATES, {**params, "candidates": list(closed)}) if closed else []
    else:
        read = _workspaces_with(_CANDIDATE_CLOSED_COLUMN, _CANDIDATES, {**params, "candidates": candidates})
        workspaces = [workspace for workspace, _ in read]
        closed = {workspace.pk: amount for workspace, amount in read}
    priced = []
    for workspace in workspaces:
        cost = closed[workspace.pk]
        if workspace.ledger_through is not None and workspace.state not in ledger.NOT_CLOSED_DAILY - {S.LAUNCHING}:
            cost += ledger.open_cost(workspace, now=now, since=since_).total
        if cost > 0:
            priced.append((workspace, cost))
    priced.sort(key=lambda item: (-item[1], item[0].pk))
    return priced[:count]


_RESTED_SQL = """
w.project_id = %(project)s
AND (w.state = ANY(%(resting)s) OR w.id = ANY(ARRAY(
    -- Transitions into or out of rest since then, from their partial index (workspace_transition_resting).
    SELECT t.workspace_id FROM workspaces_statetransition t JOIN workspaces_workspace tw ON tw.id = t.workspace_id
    WHERE t.created_at >= %(since)s AND tw.project_id = %(project)s
      AND (t.from_state = ANY(%(resting)s) OR t.to_state = ANY(%(resting)s))
)))
AND (w.state <> %(terminated)s OR w.state_changed_at >= %(since)s)
"""


def rested_workspaces(project: Project, *, since_: datetime) -> list[Workspace]:
    """The project's workspaces that were stopped or hibernated at some time since `since_`: resting now, or
    with a transition into or out of a resting state since then (the others saved nothing)."""
    if connection.vendor == "postgresql":
        params = {"project": project.pk, "since": since_, "resting": sorted(RESTING), "terminated": S.TERMINATED}
        return _workspaces_where(_RESTED_SQL, params)
    # Transitions into or out of rest since then, from their partial index (workspace_transition_resting): not
    # every transition of the project's workspaces. The workspaces resting now come from (project, state).
    touched = StateTransition.objects.filter(workspace__project=project, created_at__gte=since_).filter(
        Q(from_state__in=sorted(RESTING)) | Q(to_state__in=sorted(RESTING))
    )
    return workspaces_active_since(
        Q(project=project) & (Q(state__in=sorted(RESTING)) | among("pk", touched.values("workspace_id"))), since_
    )


def top_workspaces(money_: ProjectMoney) -> list[str]:
    ranked = sorted(money_.by_workspace.items(), key=lambda item: (-item[1], item[0]))
    return [pk for pk, cost in ranked[:TOP] if cost > 0]


def projected_spend(money_: ProjectMoney) -> Decimal | None:
    """The period's spend at its end if the last 7 days' burn goes on."""
    if money_.period_end is None:
        return None
    left = max(days_between(money_.now, money_.period_end), ZERO)
    return money_.spent + money_.burn_rate_daily * left


def overspend_risk(money_: ProjectMoney) -> str:
    allocation = money_.allocation
    if allocation is None or not allocation.amount:
        return "low" if allocation is None else "high"
    projected = projected_spend(money_) or money_.spent
    if money_.spent >= allocation.amount or projected >= allocation.amount:
        return "high"
    thresholds = [Decimal(str(t)) for t in allocation.alert_thresholds or []] or [Decimal("0.8")]
    if projected >= allocation.amount * min(thresholds):
        return "medium"
    return "low"


def threshold_flags(money_: ProjectMoney) -> dict[str, bool]:
    """`threshold_<n>_percent`: whether the period's spend reached each of the allocation's thresholds."""
    allocation = money_.allocation
    if allocation is None:
        return {}
    flags = {}
    for raw in sorted({Decimal(str(t)) for t in allocation.alert_thresholds or []}):
        label = (raw * HUNDRED).normalize()
        name = f"threshold_{label:f}".replace(".", "_") + "_percent"
        flags[name] = money_.spent >= allocation.amount * raw
    return flags


def project_budget(project: Project, *, now: datetime | None = None) -> dict:
    """GET /projects/{id}/budget."""
    if connection.vendor == "postgresql":
        money_, savings_total = budget_money(project, now=now)
    else:  # the SQLite sandbox: every workspace priced in Python (budgets.selectors.open_spend_by_project)
        money_ = project_money(project, now=now)
        start = money_.period_start or project.created_at
        savings = resting_savings(money_.workspaces, {w.pk: start for w in money_.workspaces}, money_.now)
        savings_total = sum(savings.values(), ZERO)
    allocation = money_.allocation
    spent = money_.spent
    alerts = list(BudgetAlert.objects.filter(project=project).order_by("-created_at", "-id")[:ALERTS_LISTED])
    return {
        "project_id": project.pk,
        "allocation_id": allocation.pk if allocation else None,
        "budget_id": allocation.pool_id if allocation else None,
        "period_start": money_.period_start,
        "period_end": money_.period_end,
        "total_allocated": money(allocation.amount) if allocation else None,
        "current_spend": money(spent),
        "remaining": money(allocation.amount - spent) if allocation else None,
        "utilization_rate": fraction(spent, allocation.amount) if allocation else None,
        "cost_breakdown": {kind: money(money_.by_kind.get(kind, ZERO)) for kind in CostEntry.Kind.values},
        "not_included": NOT_INCLUDED,
        "hibernation_savings": money(savings_total),
        "idle_savings": idle_savings(project=project, since=money_.period_start, now=money_.now),
        "top_spending_instances": [
            {
                "name": money_.names.get(pk, pk),
                "workspace_id": pk,
                "cost": money(money_.by_workspace[pk]),
                "percentage": percent(money_.by_workspace[pk], spent),
            }
            for pk in top_workspaces(money_)
        ],
        "budget_alerts": {**threshold_flags(money_), "overspend_risk": overspend_risk(money_)},
        "alerts": [
            {
                "id": alert.pk,
                "kind": alert.kind,
                "threshold": alert.threshold,
                "spent": money(alert.spent),
                "limit": money(alert.limit),
                "message": alert.message,
                "period_start": alert.period_start,
                "created_at": alert.created_at,
            }
            for alert in alerts
        ],
    }


def runway(money_: ProjectMoney, *, extra_daily: Decimal = ZERO) -> tuple[Decimal | None, datetime | None]:
    """Days until the allocation is spent at the 7-day burn (plus `extra_daily`), and the date that is;
    capped at the period's end (the allocation's end date, else the pool's). None for an unfunded project."""
    allocation = money_.allocation
    if allocation is None or money_.period_end is None:
        return None, None
    return runway_at(
        remaining=allocation.amount - money_.spent,
        daily_burn=money_.burn_rate_daily + extra_daily,
        now=money_.now,
        period_end=money_.period_end,
    )


def runway_at(
    *, remaining: Decimal, daily_burn: Decimal, now: datetime, period_end: datetime
) -> tuple[Decimal, datetime]:
    """Days until `remaining` is spent at `daily_burn`, capped at the period's end, and the moment that is."""
    to_end = max(days_between(now, period_end), ZERO)
    remaining = max(remaining, ZERO)
    days = min(remaining / daily_burn, to_end) if daily_burn > 0 else to_end
    days = days.quantize(PERCENT, rounding=ROUND_HALF_UP)
    end = period_end if days >= to_end else now + timedelta(seconds=float(days * DAY))
    return days, end


def recommendations(money_: ProjectMoney) -> list[dict]:
    """Simple, real ones: running workspaces with no idle hibernation configured (savings: their billed
    hours above a working day, from the last 7 days, at their rate, for a month), and workspaces stopped or
    hibernated for over 7 days still paying for their volume (savings: that volume's monthly cost)."""
    found: list[dict[str, Any]] = []
    now, zone = money_.now, money_.zone
    days_in_month = days_between(*month_bounds(now, zone))
    for workspace in money_.workspaces:
        factor = discount_factor(workspace)
        idle = (workspace.template_snapshot or {}).get("idle_defaults") or {}
        if workspace.state in ledger.COMPUTE_BILLED and not idle.get("action"):
            window = days_between(max(burn_window_start(now, zone), workspace.created_at), now)
            hours = money_.week_compute_seconds.get(workspace.pk, ZERO) / HOUR
            per_day = hours / window if window > 0 else ZERO
            spare = max(min(per_day, Decimal(24)) - WORKING_HOURS_PER_DAY, ZERO)
            action = "hibernate" if workspace.hibernation_capable else "stop"
            found.append(
                {
                    "type": "hibernation",
                    "instance": workspace.name,
                    "workspace_id": workspace.pk,
                    "potential_savings": money(spare * days_in_month * workspace.hourly_rate * factor),
                    "recommendation": (
                        f"No idle policy: it ran {per_day.quantize(PERCENT)} h a day over the last 7 days. "
                        f"Set idle detection to {action} it after 30 minutes idle."
                    ),
                }
            )
        resting_since = workspace.state_changed_at
        if workspace.state in RESTING and workspace.volume_billed and now - resting_since > LONG_STOPPED:
            found.append(
                {
                    "type": "storage",
                    "instance": workspace.name,
                    "workspace_id": workspace.pk,
                    "potential_savings": money(workspace.storage_monthly_rate * factor),
                    "recommendation": (
                        f"{workspace.state.title()} for {(now - resting_since).days} days, its "
                        f"{workspace.root_volume_gb} GB volume is still billed. Terminate it (keeping a snapshot "
                        "if you need the data) if it is no longer used."
                    ),
                }
            )
    found.sort(key=lambda item: (-item["potential_savings"], item["instance"]))
    return found


def project_cost_analysis(project: Project, *, now: datetime | None = None) -> dict:
    """GET /projects/{id}/cost-analysis."""
    money_ = project_money(project, now=now)
    now = money_.now
    month_start, month_end = month_bounds(now, money_.zone)
    burn = money_.burn_rate_daily
    projected_month = money_.month_to_date + burn * days_between(now, month_end)
    runway_days, runway_end = runway(money_)
    found = recommendations(money_)
    allocation = money_.allocation
    return {
        "project_id": project.pk,
        "month_start": month_start,
        "month_to_date": money(money_.month_to_date),
        "projected_month": money(projected_month),
        "projected_monthly_burn": money(projected_month),
        "current_monthly_burn": money(burn * days_between(month_start, month_end)),
        "burn_rate_daily": money(burn),
        "total_allocated": money(allocation.amount) if allocation else None,
        "current_spend": money(money_.spent),
        "remaining": money(allocation.amount - money_.spent) if allocation else None,
        "runway_days": runway_days,
        "runway_end": runway_end,
        "hibernation_potential_savings": money(
            sum((item["potential_savings"] for item in found if item["type"] == "hibernation"), ZERO)
        ),
        "optimization_recommendations": found,
        "not_included": NOT_INCLUDED,
    }
