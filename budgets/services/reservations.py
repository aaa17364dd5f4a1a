"""Reservations: a launch or start holds its estimated cost against the project's allocation.

Under the project's and then the allocation's row locks (PostgreSQL: FOR NO KEY UPDATE, so the ledger's inserts
that only reference them are not blocked; the same order as a launch, so a start and a launch never deadlock:
tests/budgets/test_enforcement_concurrency.py races them), the caller reads what is committed already (the
period's spend plus what other launches hold), refuses when the estimate would pass the launch limit, and otherwise
writes a Reservation in the same transaction: concurrent launches queue on the locks and each sees the ones
before it.

The ledger (budgets.ledger._save) lowers `remaining` as it writes the workspace's real cost and releases the
reservation when the run ends. A reservation counts only what its workspace's open (unwritten) cost has not
yet used: real cost replaces it as soon as it is known, not only when it is written.

A project without an allocation is not limited. An allocation without `prevent_launch_threshold` refuses at
100% of its amount (a budget is a budget); per-member caps refuse at 100% of the cap.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils import timezone

from budgets import ledger
from budgets.models import Allocation, MemberCap, Reservation
from budgets.selectors import money
from budgets.services.periods import Period, current_period
from budgets.spending import period_spending
from platform_site.errors import PermissionDenied, ValidationFailed
from projects.models import Project

ZERO = Decimal(0)
HOUR = Decimal(3600)
RESERVATION_PLACES = Decimal("0.000001")
FULL = Decimal(1)


def horizon_hours(*, expires_at: datetime | None, now: datetime) -> Decimal:
    """The workspace's TTL from now if it has one, else CARREL_BUDGET_RESERVATION_HOURS."""
    if expires_at is not None and expires_at > now:
        return Decimal((expires_at - now).total_seconds()) / HOUR
    return Decimal(str(settings.CARREL_BUDGET_RESERVATION_HOURS))


def estimate_cost(
    *, hourly_rate: Decimal, storage_monthly_rate: Decimal, hours: Decimal, discount: Decimal, now: datetime
) -> Decimal:
    """Compute for `hours` plus the volume's storage over the same hours, less the organization's discount."""
    end = now + timedelta(seconds=float(hours * HOUR))
    gross = hourly_rate * hours + storage_monthly_rate * ledger.month_fraction(now, end)
    net = gross * (ledger.HUNDRED - (discount or ZERO)) / ledger.HUNDRED
    return net.quantize(RESERVATION_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Committed:
    """Spend of the period (closed + open) and what reservations still hold, for the project and one member."""

    period: Period
    spent: Decimal
    reserved: Decimal
    member_spent: Decimal
    member_reserved: Decimal

    @property
    def total(self) -> Decimal:
        return self.spent + self.reserved

    @property
    def member_total(self) -> Decimal:
        return self.member_spent + self.member_reserved


def committed(*, allocation: Allocation, member_id: int | None, now: datetime) -> Committed:
    """What the allocation has spent in its current period (budgets.spending, as the thresholds count it) and
    holds in reservations (three queries). Needs `pool` and `project__organization` loaded."""
    project_id = allocation.project_id
    period = current_period(allocation.pool, zone=ledger.zone_of(allocation.project.organization.time_zone), now=now)
    spending = period_spending([allocation], now)
    spent = spending.by_project[project_id]
    member_spent = spending.by_member[(project_id, member_id)] if member_id is not None else ZERO
    reserved = member_reserved = ZERO
    held = Reservation.objects.filter(allocation_id=allocation.pk, released_at__isnull=True).values_list(
        "workspace_id", "user_id", "remaining"
    )
    for workspace_id, user_id, remaining in held:
        # Only what its workspace's open (unwritten) cost has not used yet: that cost is in `spent` already.
        still = max(remaining - spending.open_by_workspace.get(workspace_id, ZERO), ZERO)
        reserved += still
        if member_id is not None and user_id == member_id:
            member_reserved += still
    return Committed(period, spent, reserved, member_spent, member_reserved)


@dataclass
class Hold:
    """A checked estimate, to be written as a Reservation once the workspace exists (same transaction)."""

    allocation: Allocation
    member_id: int | None
    estimate: Decimal

    def reserve(self, *, workspace_id: str, reason: str) -> Reservation:
        return Reservation.objects.create(
            allocation=self.allocation,
            workspace_id=workspace_id,
            user_id=self.member_id,
            amount=self.estimate,
            remaining=self.estimate,
            reason=reason[:120],
        )


def locked_allocation(project_id: str) -> Allocation | None:
    """The project's allocation under a row lock until the transaction ends (call inside one).

    The project row is locked first, as a launch does (workspace_launch locks it FOR UPDATE before this): a start
    that took the allocation first and then wrote the ledger (which references the project) would deadlock with
    a launch holding the project and waiting for the allocation."""
    list(Project.objects.select_for_update(no_key=True).filter(pk=project_id).values_list("pk", flat=True))
    return (
        Allocation.objects.select_for_update(of=("self",), no_key=True)
        .select_related("pool", "project__organization")
        .filter(project_id=project_id)
        .first()
    )


def resolve_budget(*, project_id: str, budget: str | None) -> None:
    """The launch's `budget` field, if given, must name the pool funding the project (its id or name)."""
    if not budget:
        return
    allocation = Allocation.objects.select_related("pool").filter(project_id=project_id).first()
    if allocation is None:
        raise ValidationFailed(
            "The project is not funded by a budget pool.",
            details="Launches draw on the project's allocation; this project has none, so it is not limited.",
            fields={"budget": ["The project has no allocation: leave this out."]},
        )
    if budget not in (allocation.pool_id, allocation.pool.name):
        raise ValidationFailed(
            f"The project is funded by the budget pool '{allocation.pool.name}', not '{budget}'.",
            details="A launch draws on its project's allocation; another pool cannot be chosen.",
            fields={"budget": [f"Must be {allocation.pool_id} or '{allocation.pool.name}' (or left out)."]},
        )


def hold(
    *,
    project_id: str,
    member_id: int | None,
    hourly_rate: Decimal,
    storage_monthly_rate: Decimal,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> Hold | None:
    """Lock the project's allocation and check that the launch or start fits: 403 BUDGET_EXCEEDED when the
    committed spend plus the estimate would pass `prevent_launch_threshold` × amount, 403 MEMBER_CAP_EXCEEDED
    when the member's would pass their cap. None when the project has no allocation (not limited).
    Call inside the transaction that creates the reservation (Hold.reserve)."""
    now = now or timezone.now()
    allocation = locked_allocation(project_id)
    if allocation is None:
        return None
    organization = allocation.project.organization
    hours = horizon_hours(expires_at=expires_at, now=now)
    estimate = estimate_cost(
        hourly_rate=hourly_rate,
        storage_monthly_rate=storage_monthly_rate,
        hours=hours,
        discount=organization.discount_percent or ZERO,
        now=now,
    )
    state = committed(allocation=allocation, member_id=member_id, now=now)
    if not state.period.start <= now < state.period.end:
        # A grant funds its own dates only: before it starts or after it ends, it pays for nothing.
        raise PermissionDenied(
            f"The project's budget pool '{allocation.pool.name}' does not fund work now: its period runs from "
            f"{state.period.start:%Y-%m-%d} to {state.period.end:%Y-%m-%d}.",
            code="BUDGET_EXCEEDED",
            details=f"Allocation {allocation.pk} of budget pool {allocation.pool_id} is outside its pool's dates.",
            remediation=(
                "Ask an organization owner or admin to extend the pool's end date, or to fund the project from a "
                "current pool."
            ),
            extra={
                "allocation_id": allocation.pk,
                "allocated": money(allocation.amount),
                "spent": money(state.spent),
                "reserved": money(state.reserved),
                "estimate": money(estimate),
                "limit": money(ZERO),
                "threshold": ZERO,
            },
        )
    threshold = allocation.prevent_launch_threshold if allocation.prevent_launch_threshold is not None else FULL
    limit = allocation.amount * threshold
    if state.total + estimate > limit:
        raise PermissionDenied(
            f"This would pass the project's budget: {money(state.total)} committed of a {money(limit)} limit, "
            f"and this needs {money(estimate)} more.",
            code="BUDGET_EXCEEDED",
            details=(
                f"Allocation {allocation.pk} of budget pool '{allocation.pool.name}': {money(allocation.amount)} "
                f"allocated, {money(state.spent)} spent and {money(state.reserved)} reserved by running workspaces "
                f"since {state.period.start:%Y-%m-%d}; launches and starts stop at {float(threshold * 100):g}% "
                f"({money(limit)}). The estimate covers {float(hours):.4g} hours."
            ),
            remediation=(
                "Stop or terminate running workspaces of the project (their reservations are released), choose a "
                "smaller size or a shorter TTL, or ask an organization owner or admin to raise the allocation "
                f"{allocation.pk} of budget pool {allocation.pool_id}."
            ),
            extra={
                "allocation_id": allocation.pk,
                "allocated": money(allocation.amount),
                "spent": money(state.spent),
                "reserved": money(state.reserved),
                "estimate": money(estimate),
                "limit": money(limit),
                "threshold": threshold,
            },
        )
    cap = MemberCap.objects.filter(allocation=allocation, user_id=member_id).first() if member_id else None
    if cap is not None and state.member_total + estimate > cap.amount:
        raise PermissionDenied(
            f"This would pass your own cap in the project: {money(state.member_total)} committed of "
            f"{money(cap.amount)}, and this needs {money(estimate)} more.",
            code="MEMBER_CAP_EXCEEDED",
            details=(
                f"{money(state.member_spent)} spent and {money(state.member_reserved)} reserved by your workspaces "
                f"since {state.period.start:%Y-%m-%d}, against a cap of {money(cap.amount)}."
            ),
            extra={
                "allocation_id": allocation.pk,
                "cap": money(cap.amount),
                "spent": money(state.member_spent),
                "reserved": money(state.member_reserved),
                "estimate": money(estimate),
                "limit": money(cap.amount),
            },
        )
    return Hold(allocation=allocation, member_id=member_id, estimate=estimate)
