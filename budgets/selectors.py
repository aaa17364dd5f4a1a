"""Reading money: what workspaces, projects and allocations have cost, from the ledger plus what is open.

Every figure is closed CostEntry rows (summed in SQL) plus the open interval of each live workspace (priced
from fields on its row by budgets.ledger.open_cost), so a list of any length costs a constant number of
queries."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

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
