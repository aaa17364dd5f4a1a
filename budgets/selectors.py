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
# A project's whole open spend starts from the sums PostgreSQL keeps (budgets.models.OpenSpendSum): they count
# every open workspace as billed from its cursor, which is exact except for the workspaces whose cursor is less
# than a minute old (a run's 60-second minimum) or past `now` (nothing open yet). Those few are read from the
# index (the range of cursors after a minute ago), taken out as the kept sums count them and put back priced
# exactly. A window that starts later re-prices only the workspaces closed before its start (another range).

_OPEN_SPEND_SQL = """
WITH s AS (
    SELECT * FROM unnest(%(pieces)s::integer[], %(projects)s::varchar[], %(bounds)s::timestamptz[],
                         %(at_bound)s::boolean[]) AS s(piece, project_id, bound, at_bound)
), parts AS (
    -- Priced exactly from each workspace: a window's range of cursors before its start (read from the covering
    -- index workspace_open_cost, not the table), and for a whole piece the cursors of the last minute.
    SELECT s.piece,
           -- The cursor's UTC month (storage is prorated by each month's length); truncating only the rare cursor
           -- from an earlier month, as truncating every row costs more than the rest of the sum.
           CASE WHEN w.cursor >= %(this_month)s THEN %(this_month)s
                ELSE date_trunc('month', w.cursor AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END AS month,
           SUM(w.hourly_rate) FILTER (WHERE w.billed AND NOT w.minimum) AS rate,
           SUM(w.hourly_rate * EXTRACT(EPOCH FROM w.cursor)) FILTER (WHERE w.billed AND NOT w.minimum) AS rate_epoch,
           SUM(w.hourly_rate * (%(minimum)s - w.run_billed_seconds)) FILTER (WHERE w.billed AND w.minimum) AS minimum,
           SUM(w.storage_monthly_rate) FILTER (WHERE w.volume_billed) AS storage,
           SUM(w.storage_monthly_rate * EXTRACT(EPOCH FROM w.cursor)) FILTER (WHERE w.volume_billed) AS storage_epoch
    FROM s CROSS JOIN LATERAL (
        SELECT w.hourly_rate, w.run_billed_seconds, w.storage_monthly_rate, w.volume_billed,
               w.state = ANY(%(billed)s) AS billed,
               CASE WHEN s.at_bound THEN s.bound ELSE w.ledger_through END AS cursor,
               -- A run that began less than a minute ago is billed its 60-second minimum.
               NOT s.at_bound AND w.ledger_through > %(minute_ago)s
                 AND EXTRACT(EPOCH FROM (%(now)s - w.ledger_through)) < %(minimum)s - w.run_billed_seconds AS minimum
        FROM workspaces_workspace w
        WHERE w.project_id = s.project_id AND w.ledger_through IS NOT NULL AND NOT (w.state = ANY(%(not_open)s))
          AND w.ledger_through < COALESCE(s.bound, 'infinity')
          AND w.ledger_through > CASE WHEN s.bound IS NULL THEN %(minute_ago)s ELSE '-infinity'::timestamptz END
        OFFSET 0  -- one index range per piece (a parameterized scan), not a join rescanning the project's range
    ) w
    WHERE w.cursor < %(now)s
    GROUP BY s.piece, month
    UNION ALL
    -- A whole piece: the kept sums...
    SELECT s.piece, k.month, SUM(k.billed_rate), SUM(k.billed_rate_epoch), NULL,
           SUM(k.storage_rate), SUM(k.storage_epoch)
    FROM s JOIN budgets_openspendsum k ON k.project_id = s.project_id
    WHERE s.bound IS NULL
    GROUP BY s.piece, k.month
    UNION ALL
    -- ... less the last minute's cursors as the kept sums count them (they are priced exactly above).
    SELECT s.piece, date_trunc('month', w.ledger_through AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
           -SUM(w.hourly_rate) FILTER (WHERE w.state = ANY(%(billed)s)),
           -SUM(w.hourly_rate * EXTRACT(EPOCH FROM w.ledger_through)) FILTER (WHERE w.state = ANY(%(billed)s)),
           NULL,
           -SUM(w.storage_monthly_rate) FILTER (WHERE w.volume_billed),
           -SUM(w.storage_monthly_rate * EXTRACT(EPOCH FROM w.ledger_through)) FILTER (WHERE w.volume_billed)
    FROM s JOIN workspaces_workspace w ON w.project_id = s.project_id
    WHERE s.bound IS NULL AND w.ledger_through > %(minute_ago)s AND NOT (w.state = ANY(%(not_open)s))
    GROUP BY s.piece, 2
)
SELECT parts.piece, 100 - COALESCE(o.discount_percent, 0), parts.month, SUM(parts.rate), SUM(parts.rate_epoch),
       SUM(parts.minimum), SUM(parts.storage), SUM(parts.storage_epoch)
FROM parts
JOIN s ON s.piece = parts.piece
JOIN projects_project p ON p.id = s.project_id
JOIN accounts_organization o ON o.id = p.organization_id
GROUP BY parts.piece, o.discount_percent, parts.month
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
    return open_spend({project_id: (project_id, start) for project_id, start in since.items()}, now=now)


def open_spend(windows: Mapping[Any, tuple[str, datetime | None]], *, now: datetime) -> dict[Any, ledger.OpenCost]:
    """open_spend_by_project for any windows: key → (project id, start or None), e.g. one project's period, month
    and week. One query on PostgreSQL, which reads each project's open workspaces once per window from a covering
    index (no table rows) and returns only sums of products of stored decimals, finished exactly in Python."""
    totals = {key: ledger.OpenCost(ZERO, ZERO) for key in windows}
    if not windows:
        return totals
    if connection.vendor != "postgresql":
        projects = {project_id for project_id, _ in windows.values()}
        workspaces = open_workspaces(Q(project_id__in=projects))
        for key, (project_id, start) in windows.items():
            for workspace in workspaces:
                if workspace.project_id == project_id:
                    cost = ledger.open_cost(workspace, now=now, since=start)
                    found = totals[key]
                    totals[key] = ledger.OpenCost(found.compute + cost.compute, found.storage + cost.storage)
        return totals
    # A window from `start` prices a workspace closed before `start` from `start`, the others from their close.
    # So each project's open workspaces are summed once from their close (the "whole" piece), and each window
    # subtracts and adds back only those closed before its start (a range of the index, usually empty):
    #   window = whole - (closed before start, from their close) + (closed before start, from start).
    pieces: list[tuple[str, datetime | None, bool]] = []  # (project, bound, priced from the bound)
    signs: dict[Any, list[tuple[int, int]]] = {}  # window key -> [(piece, +1 | -1)]
    index_of: dict[tuple[str, datetime | None, bool], int] = {}

    def piece(project_id: str, bound: datetime | None, at_bound: bool) -> int:
        if (project_id, bound, at_bound) not in index_of:
            index_of[(project_id, bound, at_bound)] = len(pieces)
            pieces.append((project_id, bound, at_bound))
        return index_of[(project_id, bound, at_bound)]

    for key, (project_id, start) in windows.items():
        signs[key] = [(piece(project_id, None, False), 1)]
        if start is not None:
            signs[key] += [(piece(project_id, start, False), -1), (piece(project_id, start, True), 1)]
    params: dict[str, Any] = {
        "now": now,
        "minute_ago": now - timedelta(seconds=int(ledger.MINIMUM_RUN_SECONDS)),
        "minimum": ledger.MINIMUM_RUN_SECONDS,
        "billed": sorted(ledger.COMPUTE_BILLED),
        "not_open": sorted(ledger.NOT_CLOSED_DAILY - {WorkspaceState.LAUNCHING}),
        "this_month": now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        "pieces": list(range(len(pieces))),
        "projects": [project_id for project_id, _, _ in pieces],
        "bounds": [bound for _, bound, _ in pieces],
        "at_bound": [at_bound for _, _, at_bound in pieces],
    }
    now_epoch = ledger.seconds_between(_EPOCH, now)
    now_month = params["this_month"]
    with connection.cursor() as cursor:
        cursor.execute(_OPEN_SPEND_SQL, params)
        rows = cursor.fetchall()
    priced = [ledger.OpenCost(ZERO, ZERO) for _ in pieces]
    for index, net, month, rate, rate_epoch, minimum, storage, storage_epoch in rows:
        compute = ((rate or ZERO) * now_epoch - (rate_epoch or ZERO) + (minimum or ZERO)) * net / _PERCENT_HOUR
        stored = ZERO
        if storage:
            month = month.astimezone(UTC)
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
            stored = stored * net / 100
        found = priced[index]
        priced[index] = ledger.OpenCost(found.compute + compute, found.storage + stored)
    for key, parts in signs.items():
        totals[key] = ledger.OpenCost(
            sum((priced[index].compute * sign for index, sign in parts), ZERO),
            sum((priced[index].storage * sign for index, sign in parts), ZERO),
        )
    return totals
