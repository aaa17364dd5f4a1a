"""Allocations (a project's share of a pool), reallocations between them and member caps: their rules live here.

Split from `budgets.services.pools`, whose rules apply here too: the same managers (`require_manager`), the same
validation, and every change takes the pool's row lock (`_lock`) first, so the money invariant (a pool's allocations
never add up to more than the pool) is checked with concurrent changes to one pool serialised. Every change is
audited in the transaction that makes it.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from accounts.models import User
from audit.services import audit_record
from budgets.models import Allocation, BudgetPool, MemberCap
from budgets.selectors_pools import ZERO, money
from budgets.services.pools import FRACTION_HELP, _allocated, _amount, _fraction, _lock, require_manager
from platform_site.actors import Actor
from platform_site.errors import Conflict, NotFound, ValidationFailed
from platform_site.text import clean_text
from projects.models import Project, ProjectMember

UNSET: Any = object()


# --- Validation -----------------------------------------------------------------------------------------------


def _thresholds(values: Sequence[Decimal | str], field: str = "alert_thresholds") -> list[str]:
    """Fractions, sorted, each once, stored as strings ("0.8"): exact, as JSON cannot hold a Decimal."""
    fractions = set()
    for value in values:
        try:
            fraction = Decimal(str(value))
        except InvalidOperation:
            raise ValidationFailed(fields={field: [FRACTION_HELP]}) from None
        fractions.add(_fraction(fraction, field))
    return [str(value.normalize()) for value in sorted(fraction for fraction in fractions if fraction is not None)]


def _allocation_end(pool: BudgetPool, end_date: datetime | None) -> datetime | None:
    if end_date is not None and not pool.start_date < end_date <= pool.end_date:
        raise ValidationFailed(
            "An allocation's end date must fall within its pool's dates.",
            details=f"The pool runs from {pool.start_date.isoformat()} to {pool.end_date.isoformat()}.",
            fields={"end_date": ["Must be after the pool's start_date and not after its end_date."]},
        )
    return end_date


def _refuse_oversubscription(pool: BudgetPool, *, allocated: Decimal, asked: Decimal, what: str) -> None:
    if allocated + asked > pool.total_amount:
        room = pool.total_amount - allocated
        raise Conflict(
            f"{what} would allocate {allocated + asked} of the pool's {pool.total_amount}.",
            code="ALLOCATION_EXCEEDS_POOL",
            details=f"Already allocated elsewhere: {allocated}; unallocated: {room}.",
            extra={
                "total_amount": money(pool.total_amount),
                "allocated_amount": money(allocated),
                "unallocated_amount": money(room),
                "requested_amount": money(asked),
            },
        )


# --- Allocations ----------------------------------------------------------------------------------------------


def _project_of_pool(pool: BudgetPool, project: Project | str) -> Project:
    project_id = project.pk if isinstance(project, Project) else project
    found: Project | None = Project.objects.filter(
        pk=project_id, organization_id=pool.organization_id, deleted_at__isnull=True
    ).first()
    if found is None:
        raise NotFound(
            f"No project '{project_id}' in the pool's organization.",
            code="PROJECT_NOT_FOUND",
            details="A pool funds projects of its own organization only.",
        )
    return found


@transaction.atomic
def allocation_create(
    *,
    actor: Actor,
    pool: BudgetPool,
    project: Project | str,
    amount: Decimal,
    alert_thresholds: Sequence[Decimal] = (),
    auto_hibernate_threshold: Decimal | None = None,
    prevent_launch_threshold: Decimal | None = None,
    end_date: datetime | None = None,
) -> Allocation:
    require_manager(actor=actor, organization_id=pool.organization_id)
    project = _project_of_pool(pool, project)
    _amount(amount, "allocated_amount")
    thresholds = _thresholds(alert_thresholds)
    _fraction(auto_hibernate_threshold, "auto_hibernate_threshold")
    _fraction(prevent_launch_threshold, "prevent_launch_threshold")
    pool = _lock(pool)
    _allocation_end(pool, end_date)
    existing = Allocation.objects.filter(project_id=project.pk).values_list("id", "pool_id").first()
    if existing:
        raise Conflict(
            f"Project {project.name} is already funded by allocation {existing[0]}.",
            code="PROJECT_ALREADY_FUNDED",
            extra={"allocation_id": existing[0], "budget_id": existing[1]},
        )
    _refuse_oversubscription(pool, allocated=_allocated(pool), asked=amount, what="This allocation")
    try:
        with transaction.atomic():
            allocation = Allocation.objects.create(
                pool=pool,
                project=project,
                amount=amount,
                alert_thresholds=thresholds,
                auto_hibernate_threshold=auto_hibernate_threshold,
                prevent_launch_threshold=prevent_launch_threshold,
                end_date=end_date,
                allocated_by=actor if isinstance(actor, User) else None,
            )
    except IntegrityError as error:
        # Funded at the same moment from another pool (whose lock we do not hold): the one-to-one refuses it.
        raise Conflict(f"Project {project.name} is already funded.", code="PROJECT_ALREADY_FUNDED") from error
    audit_record(
        actor=actor,
        action="allocation.create",
        target=allocation,
        organization=pool.organization,
        metadata={
            "budget_id": pool.pk,
            "project_id": project.pk,
            "amount": str(amount),
            "alert_thresholds": thresholds,
            "auto_hibernate_threshold": None if auto_hibernate_threshold is None else str(auto_hibernate_threshold),
            "prevent_launch_threshold": None if prevent_launch_threshold is None else str(prevent_launch_threshold),
            "end_date": end_date.isoformat() if end_date else None,
        },
    )
    return allocation


def _as_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return None if value is None else str(value) if isinstance(value, Decimal) else value


@transaction.atomic
def allocation_update(
    *,
    actor: Actor,
    allocation: Allocation,
    amount: Decimal | None = None,
    alert_thresholds: Sequence[Decimal] | None = None,
    auto_hibernate_threshold: Decimal | None = UNSET,
    prevent_launch_threshold: Decimal | None = UNSET,
    end_date: datetime | None = UNSET,
) -> Allocation:
    """Thresholds and the end date may be cleared with None; a larger amount must fit in the pool."""
    pool = allocation.pool
    require_manager(actor=actor, organization_id=pool.organization_id)
    pool = _lock(pool)
    allocation = Allocation.objects.select_related("project").get(pk=allocation.pk)
    wanted: dict[str, Any] = {}
    if amount is not None:
        wanted["amount"] = _amount(amount, "allocated_amount")
    if alert_thresholds is not None:
        wanted["alert_thresholds"] = _thresholds(alert_thresholds)
    if auto_hibernate_threshold is not UNSET:
        wanted["auto_hibernate_threshold"] = _fraction(auto_hibernate_threshold, "auto_hibernate_threshold")
    if prevent_launch_threshold is not UNSET:
        wanted["prevent_launch_threshold"] = _fraction(prevent_launch_threshold, "prevent_launch_threshold")
    if end_date is not UNSET:
        wanted["end_date"] = _allocation_end(pool, end_date)
    changes = {
        field: [_as_text(getattr(allocation, field)), _as_text(value)]
        for field, value in wanted.items()
        if getattr(allocation, field) != value
    }
    if "amount" in changes and wanted["amount"] > allocation.amount:
        _refuse_oversubscription(
            pool, allocated=_allocated(pool, excluding=allocation.pk), asked=wanted["amount"], what="This amount"
        )
    if "amount" in changes:
        # A member's cap is a share of the allocation: the allocation cannot shrink below one.
        largest = MemberCap.objects.filter(allocation=allocation).aggregate(largest=Max("amount"))["largest"]
        if largest is not None and wanted["amount"] < largest:
            raise ValidationFailed(
                f"A member's cap ({largest}) is larger than {wanted['amount']}.",
                fields={"allocated_amount": [f"At least the largest member cap ({largest})."]},
                remediation="Lower the caps first (`PUT /api/v1/budgets/{id}/allocations/{allocation_id}/caps`).",
            )
    if changes:
        for field in changes:
            setattr(allocation, field, wanted[field])
        allocation.save()
    audit_record(
        actor=actor,
        action="allocation.update",
        target=allocation,
        organization=pool.organization,
        metadata={"budget_id": pool.pk, "project_id": allocation.project_id, **changes},
    )
    return allocation


@transaction.atomic
def allocation_delete(*, actor: Actor, allocation: Allocation) -> None:
    """The project keeps its ledger (its rows' allocation becomes null); its caps, holds and alerts go."""
    pool = allocation.pool
    require_manager(actor=actor, organization_id=pool.organization_id)
    pool = _lock(pool)
    audit_record(
        actor=actor,
        action="allocation.delete",
        target=allocation,
        organization=pool.organization,
        metadata={"budget_id": pool.pk, "project_id": allocation.project_id, "amount": str(allocation.amount)},
    )
    allocation.delete()


def _allocation_in_pool(
    pool: BudgetPool, *, allocation_id: str | None, project_id: str | None, field: str
) -> Allocation:
    lookup = Q(pk=allocation_id) if allocation_id else Q(project_id=project_id)
    found: Allocation | None = Allocation.objects.select_related("project").filter(lookup, pool_id=pool.pk).first()
    if found is None:
        raise NotFound(
            f"No allocation of this pool for {field} '{allocation_id or project_id}'.",
            code="ALLOCATION_NOT_FOUND",
            details=f"{field}: {allocation_id or project_id}",
        )
    return found


@transaction.atomic
def allocation_reallocate(
    *,
    actor: Actor,
    pool: BudgetPool,
    amount: Decimal | None,
    reason: str,
    from_allocation: str | None = None,
    from_project: str | None = None,
    to_allocation: str | None = None,
    to_project: str | None = None,
    now: datetime | None = None,
) -> tuple[Allocation, Allocation]:
    """Move `amount` from one allocation of the pool to another. The pool's total does not change; the source
    may not drop below what its project has spent in the current period."""
    from budgets.selectors_pools import allocation_figures

    require_manager(actor=actor, organization_id=pool.organization_id)
    reason = clean_text(reason or "", field="reason", allow_newlines=True)
    problems: dict[str, list[str]] = {}
    if not reason:
        problems["reason"] = ["Required: say why the money moves (it is kept in the audit trail)."]
    if not (from_allocation or from_project):
        problems["from_project"] = ["Required: from_project or from_allocation."]
    if not (to_allocation or to_project):
        problems["to_project"] = ["Required: to_project or to_allocation."]
    if amount is None or amount <= 0:
        problems["amount"] = ["Must be more than zero."]
    if problems or amount is None:
        raise ValidationFailed("The reallocation is not valid.", fields=problems)
    pool = _lock(pool)
    source = _allocation_in_pool(pool, allocation_id=from_allocation, project_id=from_project, field="from")
    target = _allocation_in_pool(pool, allocation_id=to_allocation, project_id=to_project, field="to")
    if source.pk == target.pk:
        raise ValidationFailed(
            "The source and the destination are the same allocation.",
            fields={"to_project": ["Must differ from the source."]},
        )
    source.pool = target.pool = pool
    spent = allocation_figures([source], now=now)[source.pk].spent
    if source.amount - amount < spent:
        raise Conflict(
            f"Project {source.project.name} has spent {money(spent)}: at most {money(source.amount - spent)} can move.",
            code="ALLOCATION_BELOW_SPENT",
            extra={
                "allocated_amount": money(source.amount),
                "spent_amount": money(spent),
                "movable_amount": money(max(source.amount - spent, ZERO)),
            },
        )
    source.amount -= amount
    target.amount += amount
    source.save(update_fields=["amount", "updated_at"])
    target.save(update_fields=["amount", "updated_at"])
    audit_record(
        actor=actor,
        action="allocation.reallocate",
        target=pool,
        organization=pool.organization,
        metadata={
            "from_allocation": source.pk,
            "from_project": source.project_id,
            "to_allocation": target.pk,
            "to_project": target.project_id,
            "amount": str(amount),
            "reason": reason,
        },
    )
    return source, target


# --- Member caps ----------------------------------------------------------------------------------------------


@transaction.atomic
def member_caps_set(*, actor: Actor, allocation: Allocation, caps: Mapping[str, Decimal | None]) -> list[MemberCap]:
    """Replace the allocation's member caps with `caps` ({e-mail or username: amount}). A cap holds one current
    member of the project to their own spending limit inside the allocation (enforced elsewhere)."""
    pool = allocation.pool
    require_manager(actor=actor, organization_id=pool.organization_id)
    pool = _lock(pool)
    allocation = Allocation.objects.get(pk=allocation.pk)
    members = {
        key: user
        for user in User.objects.filter(
            pk__in=ProjectMember.objects.current().filter(project_id=allocation.project_id).values("user_id")
        )
        for key in (user.email.lower(), user.username.lower())
    }
    problems: dict[str, list[str]] = {}
    wanted: dict[int, tuple[User, Decimal]] = {}
    for key, amount in caps.items():
        user = members.get(key.strip().lower())
        if user is None:
            problems[f"caps.{key}"] = ["Not a current member of the project."]
        elif amount is None or amount < 0:
            problems[f"caps.{key}"] = ["Must be zero or more."]
        elif amount > allocation.amount:
            problems[f"caps.{key}"] = [f"At most the allocation's amount ({allocation.amount})."]
        elif user.pk in wanted:
            problems[f"caps.{key}"] = ["The same member is named twice."]
        else:
            wanted[user.pk] = (user, amount)
    if problems:
        raise ValidationFailed("Some caps are not valid.", fields=problems)
    before = {cap.user_id: cap for cap in MemberCap.objects.filter(allocation=allocation)}
    MemberCap.objects.filter(allocation=allocation).exclude(user_id__in=list(wanted)).delete()
    result = []
    for user_id, (user, amount) in wanted.items():
        cap = before.get(user_id)
        if cap is None:
            cap = MemberCap.objects.create(allocation=allocation, user=user, amount=amount)
        elif cap.amount != amount:
            cap.amount = amount
            cap.save(update_fields=["amount"])
        cap.user = user
        result.append(cap)
    audit_record(
        actor=actor,
        action="allocation.caps",
        target=allocation,
        organization=pool.organization,
        metadata={
            "project_id": allocation.project_id,
            "before": {str(cap.user_id): str(cap.amount) for cap in before.values()},
            "after": {user.email: str(amount) for user, amount in wanted.values()},
        },
    )
    return sorted(result, key=lambda cap: cap.user.email)
