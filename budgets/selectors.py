"""Reading money: what workspaces, projects and allocations have cost, from the ledger plus what is open.

Every figure is closed CostEntry rows (summed in SQL) plus the open interval of each live workspace (priced
from fields on its row by budgets.ledger.open_cost), so a list of any length costs a constant number of
queries."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from typing import Any, cast

from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone

from budgets import ledger
from budgets.models import CostEntry
from workspaces.models import Workspace, WorkspaceState

MONEY = Decimal("0.0001")
HOUR = Decimal(3600)
ZERO = Decimal(0)


def money(value: Decimal) -> Decimal:
    """Money as the API shows it: USD to 4 places (the ledger keeps 8)."""
    return value.quantize(MONEY, rounding=ROUND_HALF_UP)


def workspace_costs(workspaces: Iterable[Workspace], *, now: datetime | None = None) -> dict[str, Decimal]:
    """Cost so far of each workspace: its closed ledger rows' total (kept on its row) plus the open interval
    priced now. No query; the workspaces need `organization` loaded (select_related) for the discount."""
    now = now or timezone.now()
    return {w.pk: w.cost_closed + ledger.open_cost(w, now=now).total for w in workspaces}


# What workspace_row_costs reads from each row (workspaces.selectors.workspace_list_rows selects them).
COST_ROW_FIELDS = (
    "id",
    "state",
    "cost_closed",
    "ledger_through",
    "run_billed_seconds",
    "hourly_rate",
    "volume_billed",
    "storage_monthly_rate",
    "organization__discount_percent",
)


def workspace_row_costs(rows: Iterable[Mapping[str, Any]], *, now: datetime | None = None) -> dict[str, Decimal]:
    """workspace_costs for rows of values (COST_ROW_FIELDS) instead of model objects: the same ledger pricing
    (ledger.open_cost reads only attributes), without building a Workspace per row. No query."""
    now = now or timezone.now()
    costs = {}
    for row in rows:
        fields = SimpleNamespace(**{name: row[name] for name in COST_ROW_FIELDS if "__" not in name})
        discount = row["organization__discount_percent"] or Decimal(0)
        open_part = ledger.open_cost(cast(Workspace, fields), now=now, discount=discount)
        costs[row["id"]] = row["cost_closed"] + open_part.total
    return costs


@dataclass(frozen=True)
class Spend:
    compute: Decimal
    storage: Decimal
    snapshot: Decimal

    @property
    def total(self) -> Decimal:
        return self.compute + self.storage + self.snapshot


def spend(*, entries: Q, workspaces: Q | None, start: datetime | None = None, end: datetime | None = None) -> Spend:
    """Spend by kind of the entries matching `entries` (and, for the open part, of the live workspaces
    matching `workspaces`; None leaves it out), between `start` and `end` (now when None). Two queries."""
    now = timezone.now()
    end = min(end, now) if end else now
    filtered = CostEntry.objects.filter(entries)
    if start is not None:
        filtered = filtered.filter(start__gte=start)
    filtered = filtered.filter(start__lt=end)
    by_kind = dict(filtered.values_list("kind").annotate(total=Sum("amount")).order_by().values_list("kind", "total"))
    compute = by_kind.get(CostEntry.Kind.COMPUTE, ZERO)
    storage = by_kind.get(CostEntry.Kind.STORAGE, ZERO)
    if workspaces is not None and end >= now:
        for workspace in open_workspaces(workspaces):
            cost = ledger.open_cost(workspace, now=now)
            compute += cost.compute
            storage += cost.storage
    return Spend(compute=compute, storage=storage, snapshot=by_kind.get(CostEntry.Kind.SNAPSHOT, ZERO))


def open_workspaces(workspaces: Q) -> list[Workspace]:
    """The workspaces with an open interval that may cost something, with what open_cost reads."""
    return list(
        Workspace.objects.filter(workspaces)
        .filter(ledger_through__isnull=False)
        .exclude(state__in=ledger.NOT_CLOSED_DAILY - {WorkspaceState.LAUNCHING})
        .select_related("organization")
        .only(
            "id",
            "state",
            "ledger_through",
            "run_billed_seconds",
            "hourly_rate",
            "volume_billed",
            "storage_monthly_rate",
            "organization__discount_percent",
            "project_id",
            "owner_id",
            "name",
        )
    )


@dataclass(frozen=True)
class ComputeUsage:
    seconds_by_type: dict[str, Decimal]
    cost: Decimal


def workspace_compute_usage(workspace: Workspace, *, now: datetime | None = None) -> ComputeUsage:
    """Billed compute seconds of one workspace per instance type (closed + open) and its total cost."""
    now = now or timezone.now()
    seconds: dict[str, Decimal] = dict(
        CostEntry.objects.filter(workspace_id=workspace.pk, kind=CostEntry.Kind.COMPUTE)
        .values_list("item")
        .annotate(total=Sum("quantity"))
        .order_by()
        .values_list("item", "total")
    )
    open_seconds = ledger.open_compute_seconds(workspace, now=now)
    if open_seconds:
        seconds[workspace.instance_type] = seconds.get(workspace.instance_type, ZERO) + open_seconds
    return ComputeUsage(seconds_by_type=seconds, cost=workspace_costs([workspace], now=now)[workspace.pk])


# --- Open intervals summed in SQL ----------------------------------------------------------------------------------
#
# open_cost per workspace, summed per project by PostgreSQL instead of loading every live workspace (10,000 rows
# of a big project) into Python. The sum is kept exact: SQL returns only sums of products of stored decimals
# (rate × (100 - discount), times the cursor's epoch), and Python finishes with `now`, which is linear:
#   compute = Σ rate·(100-d)·(now - cursor) / 360000   (+ the 60-second minimum of a run that just began)
#   storage = Σ monthly·(100-d)·month_fraction(cursor, now) / 100, grouped by the cursor's UTC month so that
#             the proration by each month's own length (ledger.month_fraction) stays exact.

_OPEN_SPEND_SQL = """
SELECT g.project_id, date_trunc('month', g.cursor AT TIME ZONE 'UTC') AS month,
       SUM(g.rate * g.net), SUM(g.rate * g.net * EXTRACT(EPOCH FROM g.cursor)), SUM(g.minimum * g.net),
       SUM(g.storage * g.net), SUM(g.storage * g.net * EXTRACT(EPOCH FROM g.cursor))
FROM (
    -- Workspaces closed at the same moment (the daily close moves them all to midnight) are one group: the
    -- products are computed per group, not per workspace.
    SELECT w.project_id, 100 - COALESCE(MIN(o.discount_percent), 0) AS net, w.cursor,
           SUM(w.hourly_rate) FILTER (WHERE w.billed AND NOT w.minimum) AS rate,
           SUM(w.hourly_rate * (%(minimum)s - w.run_billed_seconds)) FILTER (WHERE w.billed AND w.minimum) AS minimum,
           SUM(w.storage_monthly_rate) FILTER (WHERE w.volume_billed) AS storage
    FROM (
        SELECT w.project_id, w.organization_id, w.hourly_rate, w.run_billed_seconds, w.storage_monthly_rate,
               w.volume_billed, w.state = ANY(%(billed)s) AS billed, GREATEST(w.ledger_through, s.start) AS cursor,
               -- A run that began less than a minute ago (and inside the window) is billed its 60-second minimum.
               (s.start IS NULL OR s.start <= w.ledger_through) AND w.ledger_through > %(minute_ago)s
                 AND EXTRACT(EPOCH FROM (%(now)s - w.ledger_through)) < %(minimum)s - w.run_billed_seconds AS minimum
        FROM workspaces_workspace w
        JOIN unnest(%(projects)s::varchar[], %(starts)s::timestamptz[]) AS s(project_id, start)
          ON s.project_id = w.project_id
        WHERE w.ledger_through IS NOT NULL AND NOT (w.state = ANY(%(not_open)s))
          AND GREATEST(w.ledger_through, s.start) < %(now)s
    ) w
    JOIN accounts_organization o ON o.id = w.organization_id
    GROUP BY w.project_id, w.organization_id, w.cursor
) g
GROUP BY 1, 2
"""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PERCENT_HOUR = HOUR * 100


def _next_month(moment: datetime) -> datetime:
    return (moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(day=1)


def _months_between(first: datetime, later: datetime) -> int:
    return (later.year - first.year) * 12 + later.month - first.month


def open_spend_by_project(since: Mapping[str, datetime | None], *, now: datetime) -> dict[str, ledger.OpenCost]:
    """The open cost (ledger.open_cost, from each project's `since` when given) of all the live workspaces of
    each project in `since`, summed per project: one query on PostgreSQL, whatever the number of workspaces.
    Other databases (the SQLite sandbox) price each workspace in Python, as before."""
    totals = {project_id: ledger.OpenCost(ZERO, ZERO) for project_id in since}
    if not since:
        return totals
    if connection.vendor != "postgresql":
        for workspace in open_workspaces(Q(project_id__in=list(since))):
            cost = ledger.open_cost(workspace, now=now, since=since[workspace.project_id])
            found = totals[workspace.project_id]
            totals[workspace.project_id] = ledger.OpenCost(found.compute + cost.compute, found.storage + cost.storage)
        return totals
    params: dict[str, Any] = {
        "now": now,
        "minute_ago": now - timedelta(seconds=int(ledger.MINIMUM_RUN_SECONDS)),
        "minimum": ledger.MINIMUM_RUN_SECONDS,
        "billed": sorted(ledger.COMPUTE_BILLED),
        "not_open": sorted(ledger.NOT_CLOSED_DAILY - {WorkspaceState.LAUNCHING}),
        "projects": list(since),
        "starts": [since[project_id] for project_id in since],
    }
    now_epoch = ledger.seconds_between(_EPOCH, now)
    now_month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(_OPEN_SPEND_SQL, params)
        rows = cursor.fetchall()
    for project_id, month, rate, rate_epoch, minimum, storage, storage_epoch in rows:
        compute = ((rate or ZERO) * now_epoch - (rate_epoch or ZERO) + (minimum or ZERO)) / _PERCENT_HOUR
        stored = ZERO
        if storage:
            month = month.replace(tzinfo=UTC)
            if month >= now_month:
                stored = (storage * now_epoch - storage_epoch) / ledger.seconds_in_month(now)
            else:
                # The cursor's month to its end, the whole months after it, and this month so far.
                end = _next_month(month)
                stored = (storage * ledger.seconds_between(_EPOCH, end) - storage_epoch) / ledger.seconds_in_month(
                    month
                )
                stored += storage * _months_between(end, now_month)
                stored += storage * ledger.seconds_between(now_month, now) / ledger.seconds_in_month(now)
            stored /= 100
        found = totals[project_id]
        totals[project_id] = ledger.OpenCost(found.compute + compute, found.storage + stored)
    return totals
