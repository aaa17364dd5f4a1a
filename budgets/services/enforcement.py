"""Thresholds: what the money rules do as an allocation is spent, run by the periodic task apply_budget_thresholds.

Per allocation, in its current period (budgets.services.periods), spent / amount is compared with:
- each of `alert_thresholds`: an alert e-mailed to the project's owners and admins;
- `auto_hibernate_threshold`: every running workspace of the project is hibernated, and those that cannot
  hibernate are stopped (the alert says which and why);
- `prevent_launch_threshold`: an alert saying launches and starts are refused (the refusal itself is
  budgets.services.reservations, at launch and start).
Per member cap: a member_cap alert e-mailed to the member at 100%. Per pool: a pool_threshold alert e-mailed to
the organization's owners and admins at the pool's `alert_threshold`.

Each fires once per threshold per period: the BudgetAlert row is the claim (its unique constraint, on
PostgreSQL), written in the transaction that does the action, audits it and enqueues the e-mail on commit; a
second run, concurrent or later, finds the row and does nothing. The reads are a fixed number of queries
whatever the number of allocations: the period's spend of every project (and member) in one aggregate.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from budgets import dispatch, ledger
from budgets.models import Allocation, BudgetAlert, BudgetPool, MemberCap
from budgets.selectors import money
from budgets.services.periods import Period, current_period
from budgets.spending import period_spending
from platform_site.actors import SYSTEM
from platform_site.errors import Conflict
from workspaces.models import Workspace, WorkspaceState
from workspaces.services import workspace_act

logger = logging.getLogger("carrel.budgets")

ZERO = Decimal(0)
FULL = Decimal(1)
Kind = BudgetAlert.Kind
AUDIT_ACTIONS: dict[str, str] = {
    Kind.THRESHOLD: "budget.alert",
    Kind.AUTO_HIBERNATE: "budget.auto_hibernate",
    Kind.PREVENT_LAUNCH: "budget.prevent_launch",
    Kind.MEMBER_CAP: "budget.member_cap",
    Kind.POOL_THRESHOLD: "budget.pool_threshold",
}


def crossed(spent: Decimal, limit: Decimal) -> bool:
    return spent > 0 and spent >= limit


def fractions(values: Any) -> list[Decimal]:
    """alert_thresholds as Decimals (fractions), ignoring what is not a number."""
    parsed = set()
    for value in values or []:
        try:
            number = Decimal(str(value))
        except (InvalidOperation, ValueError):
            continue
        if number.is_finite() and number > 0:
            parsed.add(number)
    return sorted(parsed)


def percent(spent: Decimal, amount: Decimal) -> str:
    return f"{float(spent / amount * 100):.1f}%" if amount else "100%"


@dataclass(frozen=True)
class Candidate:
    kind: str
    threshold: Decimal
    pool: BudgetPool
    allocation: Allocation | None
    member_id: int | None
    period: Period
    spent: Decimal
    amount: Decimal

    @property
    def limit(self) -> Decimal:
        return self.amount * self.threshold

    @property
    def key(self) -> tuple:
        return (
            self.pool.pk,
            self.allocation.pk if self.allocation else None,
            self.member_id,
            self.kind,
            self.threshold,
            self.period.start,
        )


def candidates(now: datetime) -> list[Candidate]:
    """Every threshold crossed now, fired or not (five queries whatever the number of allocations)."""
    allocations = list(
        Allocation.objects.select_related("pool", "project__organization").filter(project__deleted_at__isnull=True)
    )
    spending = period_spending(allocations, now)
    caps = defaultdict(list)
    for cap in MemberCap.objects.filter(allocation_id__in=[a.pk for a in allocations]):
        caps[cap.allocation_id].append(cap)
    found: list[Candidate] = []
    pool_spend: dict[str, Decimal] = defaultdict(lambda: ZERO)
    pool_period: dict[str, tuple[BudgetPool, Period]] = {}
    for allocation in allocations:
        period = current_period(
            allocation.pool, zone=ledger.zone_of(allocation.project.organization.time_zone), now=now
        )
        spent = spending.by_project[allocation.project_id]
        pool_spend[allocation.pool_id] += spent
        pool_period.setdefault(allocation.pool_id, (allocation.pool, period))
        if now >= period.end or now < period.start:
            continue  # a project pool outside its dates: nothing to enforce
        rules = [(Kind.THRESHOLD, t) for t in fractions(allocation.alert_thresholds)]
        if allocation.auto_hibernate_threshold is not None:
            rules.append((Kind.AUTO_HIBERNATE, allocation.auto_hibernate_threshold))
        if allocation.prevent_launch_threshold is not None:
            rules.append((Kind.PREVENT_LAUNCH, allocation.prevent_launch_threshold))
        for kind, threshold in rules:
            found.append(
                Candidate(kind, threshold, allocation.pool, allocation, None, period, spent, allocation.amount)
            )
        for cap in caps[allocation.pk]:
            member_spent = spending.by_member[(allocation.project_id, cap.user_id)]
            found.append(
                Candidate(
                    Kind.MEMBER_CAP, FULL, allocation.pool, allocation, cap.user_id, period, member_spent, cap.amount
                )
            )
    for pool_id, (pool, period) in pool_period.items():
        if pool.alert_threshold and period.start <= now < period.end:
            found.append(
                Candidate(
                    Kind.POOL_THRESHOLD,
                    pool.alert_threshold,
                    pool,
                    None,
                    None,
                    period,
                    pool_spend[pool_id],
                    pool.total_amount,
                )
            )
    crossed_now = [c for c in found if crossed(c.spent, c.limit)]
    if not crossed_now:
        return []
    fired = set(
        BudgetAlert.objects.filter(period_start__in={c.period.start for c in crossed_now}).values_list(
            "pool_id", "allocation_id", "member_id", "kind", "threshold", "period_start"
        )
    )
    return [c for c in crossed_now if c.key not in fired]


def apply_thresholds(now: datetime | None = None) -> list[BudgetAlert]:
    """Fire every threshold crossed in the current period that has not fired yet. Returns the new alerts."""
    now = now or timezone.now()
    fired = []
    for candidate in candidates(now):
        alert = fire(candidate, now=now)
        if alert is not None:
            fired.append(alert)
    if fired:
        logger.info("Budget thresholds: %d alert(s) fired", len(fired))
    return fired


def _message(candidate: Candidate) -> str:
    share = percent(candidate.spent, candidate.amount)
    spent, amount = money(candidate.spent), money(candidate.amount)
    at = f"{float(candidate.threshold * 100):g}%"
    allocation = candidate.allocation
    project = allocation.project.name if allocation else ""
    match candidate.kind:
        case Kind.THRESHOLD:
            return f"Project {project} has spent {spent} USD of its {amount} USD allocation ({share}), past {at}."
        case Kind.AUTO_HIBERNATE:
            return (
                f"Project {project} has spent {spent} USD of {amount} USD ({share}), past {at}: its running "
                "workspaces are being hibernated."
            )
        case Kind.PREVENT_LAUNCH:
            return (
                f"Project {project} has spent {spent} USD of {amount} USD ({share}), past {at}: launches and starts "
                "are refused (403 BUDGET_EXCEEDED) until the allocation is raised or the period ends."
            )
        case Kind.MEMBER_CAP:
            return f"You have spent {spent} USD of your {amount} USD cap in project {project} ({share})."
        case _:
            return f"Budget pool {candidate.pool.name} has spent {spent} USD of {amount} USD ({share}), past {at}."


def fire(candidate: Candidate, *, now: datetime) -> BudgetAlert | None:
    """Claim the alert row and act, in one transaction; None when another run fired it first."""
    allocation = candidate.allocation
    project = allocation.project if allocation else None
    organization = project.organization if project else candidate.pool.organization
    with transaction.atomic():
        alert, created = BudgetAlert.objects.get_or_create(
            pool=candidate.pool,
            allocation=allocation,
            member_id=candidate.member_id,
            kind=candidate.kind,
            threshold=candidate.threshold,
            period_start=candidate.period.start,
            defaults={
                "project": project,
                "spent": candidate.spent.quantize(Decimal("0.000001")),
                "limit": candidate.limit.quantize(Decimal("0.01")),
                "message": _message(candidate),
                "details": {
                    "amount": str(money(candidate.amount)),
                    "spent": str(money(candidate.spent)),
                    "threshold": str(candidate.threshold),
                    "period_start": candidate.period.start.isoformat(),
                    "period_end": candidate.period.end.isoformat(),
                },
                "created_at": now,
            },
        )
        if not created:
            return None
        if candidate.kind == Kind.AUTO_HIBERNATE and project is not None:
            _hibernate_project(alert, project_id=project.pk, threshold=candidate.threshold)
        audit_record(
            actor=SYSTEM,
            action=AUDIT_ACTIONS[candidate.kind],
            target=allocation or candidate.pool,
            organization=organization,
            metadata={"alert": alert.pk, "message": alert.message, **alert.details},
        )
        dispatch.send_alert_email(alert.pk)
    return alert


def _hibernate_project(alert: BudgetAlert, *, project_id: str, threshold: Decimal) -> None:
    """Hibernate every running workspace of the project; stop those that cannot hibernate, saying why."""
    reason = f"budget: {float(threshold * 100):g}% of the allocation spent (auto-hibernate)"
    hibernated: list[dict] = []
    stopped: list[dict] = []
    skipped: list[dict] = []
    running = Workspace.objects.filter(project_id=project_id, state=WorkspaceState.RUNNING).select_related(
        "project", "owner", "organization"
    )
    for workspace in running.order_by("name", "pk"):
        entry = {"workspace_id": workspace.pk, "name": workspace.name, "owner": workspace.owner.email}
        if workspace.hibernation_capable:
            try:
                workspace_act(actor=SYSTEM, workspace=workspace, action="hibernate", reason=reason)
                hibernated.append(entry)
                continue
            except Conflict as error:
                if error.code != "HIBERNATION_NOT_SUPPORTED":
                    skipped.append({**entry, "why": error.message})
                    continue
        why = f"instance type {workspace.instance_type} was not launched with hibernation configured"
        try:
            workspace_act(actor=SYSTEM, workspace=workspace, action="stop", reason=f"{reason}; cannot hibernate")
            stopped.append({**entry, "why": why})
        except Conflict as error:
            skipped.append({**entry, "why": error.message})
    parts = [alert.message.removesuffix(": its running workspaces are being hibernated.") + "."]
    if hibernated:
        parts.append(f"Hibernated {len(hibernated)}: {', '.join(e['name'] for e in hibernated)}.")
    if stopped:
        parts.append(
            f"Stopped {len(stopped)} that cannot hibernate: "
            + "; ".join(f"{e['name']} ({e['why']})" for e in stopped)
            + "."
        )
    if skipped:
        parts.append("Left alone: " + "; ".join(f"{e['name']} ({e['why']})" for e in skipped) + ".")
    if not (hibernated or stopped or skipped):
        parts.append("No workspace was running.")
    alert.message = " ".join(parts)
    alert.details = {**alert.details, "hibernated": hibernated, "stopped": stopped, "skipped": skipped}
    alert.save(update_fields=["message", "details"])
