"""Budget pools, allocations, reallocations and member caps: their rules live here, once.

The API, the Django admin and the console call these services. Every change is audited in the transaction that
makes it. The money invariant (a pool's allocations never add up to more than the pool) is checked with the pool's
row locked (`select_for_update`), so two concurrent changes to one pool are serialised and cannot both pass.

Who: the organization's owners and admins (and platform superusers, in the Django admin) manage pools; a project
owner may see the pool funding their project and their own allocation (BudgetPool/Allocation.objects.visible_to)
but change nothing. What the caller may see is decided by the views' scoping (404); what they may change, here (403).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum

from accounts.models import Membership, Organization, OrgRole, User
from audit.services import audit_record
from budgets.models import Allocation, BudgetPool, MemberCap
from budgets.selectors_pools import ZERO, money
from platform_site.actors import Actor, is_system
from platform_site.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from platform_site.text import clean_name, clean_text
from projects.models import Project, ProjectMember

ONE = Decimal(1)
UNSET: Any = object()
FRACTION_HELP = "A fraction between 0 and 1 (0.8 = 80%)."


# --- Who may change money -------------------------------------------------------------------------------------


def can_manage(*, user: "Actor | None", organization_id: str) -> bool:
    """Owners and admins of the organization; platform superusers (the Django admin); Carrel itself (SYSTEM)."""
    if is_system(user):
        return True
    if not isinstance(user, User) or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(
        organization_id=organization_id, user=user, role__in=[OrgRole.OWNER, OrgRole.ADMIN]
    ).exists()


def require_manager(*, actor: Actor, organization_id: str) -> None:
    """Organization owners and admins manage budget pools; anyone else who can see one may only read it."""
    if not can_manage(user=actor, organization_id=organization_id):
        raise PermissionDenied(
            "Only the organization's owners and admins manage budget pools and allocations.",
            details="You may see this budget, but not change it.",
            remediation="Ask an owner or admin of the organization to make the change.",
        )


# --- Validation shared by the API and the admin ---------------------------------------------------------------


def _amount(value: Decimal | None, field: str) -> Decimal:
    if value is None or value < 0:
        raise ValidationFailed(f"The {field} must be zero or more.", fields={field: ["Must be zero or more."]})
    return value


def _fraction(value: Decimal | None, field: str) -> Decimal | None:
    if value is not None and (value.is_nan() or not ZERO <= value <= ONE):
        raise ValidationFailed(
            f"The {field} must be a fraction between 0 and 1.",
            details=f"Got {value}; thresholds are fractions of the amount, 0.8 meaning 80%.",
            fields={field: [FRACTION_HELP]},
        )
    return value


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


def _dates(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ValidationFailed(
            "The end date must be after the start date.", fields={"end_date": ["Must be after start_date."]}
        )


def _allocation_end(pool: BudgetPool, end_date: datetime | None) -> datetime | None:
    if end_date is not None and not pool.start_date < end_date <= pool.end_date:
        raise ValidationFailed(
            "An allocation's end date must fall within its pool's dates.",
            details=f"The pool runs from {pool.start_date.isoformat()} to {pool.end_date.isoformat()}.",
            fields={"end_date": ["Must be after the pool's start_date and not after its end_date."]},
        )
    return end_date


def _lock(pool: BudgetPool) -> BudgetPool:
    """The pool's row, locked until the transaction ends: every change to its allocations takes this lock first."""
    locked: BudgetPool = BudgetPool.objects.select_for_update().select_related("organization").get(pk=pool.pk)
    return locked


def _allocated(pool: BudgetPool, *, excluding: str | None = None) -> Decimal:
    queryset = Allocation.objects.filter(pool_id=pool.pk)
    if excluding:
        queryset = queryset.exclude(pk=excluding)
    return queryset.aggregate(total=Sum("amount"))["total"] or ZERO


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


def _name_free(organization_id: str, name: str, *, excluding: str | None = None) -> None:
    taken = BudgetPool.objects.filter(organization_id=organization_id, name=name)
    if excluding:
        taken = taken.exclude(pk=excluding)
    if taken.exists():
        raise Conflict(f"A budget pool named '{name}' exists.", code="NAME_TAKEN", fields={"name": ["Already in use."]})


# --- Pools ----------------------------------------------------------------------------------------------------


@transaction.atomic
def pool_create(
    *,
    actor: Actor,
    organization: Organization,
    name: str,
    total_amount: Decimal,
    start_date: datetime,
    end_date: datetime,
    description: str = "",
    period: str = BudgetPool.Period.PROJECT,
    alert_threshold: Decimal = Decimal("0.80"),
) -> BudgetPool:
    require_manager(actor=actor, organization_id=organization.pk)
    name = clean_name(name)
    description = clean_text(description or "", field="description", allow_newlines=True)
    _amount(total_amount, "total_amount")
    _fraction(alert_threshold, "alert_threshold")
    if period not in BudgetPool.Period.values:
        raise ValidationFailed(fields={"period": [f"One of {', '.join(BudgetPool.Period.values)}."]})
    _dates(start_date, end_date)
    _name_free(organization.pk, name)
    pool = BudgetPool.objects.create(
        organization=organization,
        name=name,
        description=description,
        total_amount=total_amount,
        period=period,
        start_date=start_date,
        end_date=end_date,
        alert_threshold=alert_threshold,
        created_by=actor if isinstance(actor, User) else None,
    )
    audit_record(
        actor=actor,
        action="budget.create",
        target=pool,
        organization=organization,
        metadata={
            "name": name,
            "total_amount": str(total_amount),
            "period": period,
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
            "alert_threshold": str(alert_threshold),
        },
    )
    return pool


@transaction.atomic
def pool_update(
    *,
    actor: Actor,
    pool: BudgetPool,
    name: str | None = None,
    description: str | None = None,
    total_amount: Decimal | None = None,
    alert_threshold: Decimal | None = None,
    end_date: datetime | None = None,
) -> BudgetPool:
    """A pool's total may not drop below what is allocated from it (checked under the pool's lock)."""
    require_manager(actor=actor, organization_id=pool.organization_id)
    pool = _lock(pool)
    changes: dict[str, Any] = {}
    if name is not None:
        name = clean_name(name)
        if name != pool.name:
            _name_free(pool.organization_id, name, excluding=pool.pk)
            changes["name"] = [pool.name, name]
            pool.name = name
    if description is not None:
        description = clean_text(description, field="description", allow_newlines=True)
        if description != pool.description:
            changes["description"] = "changed"
            pool.description = description
    if alert_threshold is not None and _fraction(alert_threshold, "alert_threshold") != pool.alert_threshold:
        changes["alert_threshold"] = [str(pool.alert_threshold), str(alert_threshold)]
        pool.alert_threshold = alert_threshold
    if end_date is not None and end_date != pool.end_date:
        _dates(pool.start_date, end_date)
        later = Allocation.objects.filter(pool_id=pool.pk, end_date__gt=end_date).count()
        if later:
            raise ValidationFailed(
                "Some allocations end after this date.",
                details="An allocation's end date falls within its pool's dates.",
                fields={"end_date": [f"{later} allocation(s) end later: move their end dates first."]},
            )
        changes["end_date"] = [pool.end_date.isoformat(), end_date.isoformat()]
        pool.end_date = end_date
    if total_amount is not None and _amount(total_amount, "total_amount") != pool.total_amount:
        allocated = _allocated(pool)
        if total_amount < allocated:
            raise Conflict(
                f"The pool's allocations add up to {allocated}, more than {total_amount}.",
                code="ALLOCATION_EXCEEDS_POOL",
                details="A pool's total may not drop below what is allocated from it.",
                remediation="Lower or delete allocations first, or choose a total of at least the allocated amount.",
                fields={"total_amount": [f"At least {allocated} (allocated)."]},
                extra={"allocated_amount": money(allocated), "requested_amount": money(total_amount)},
            )
        changes["total_amount"] = [str(pool.total_amount), str(total_amount)]
        pool.total_amount = total_amount
    if changes:
        pool.save()
    audit_record(actor=actor, action="budget.update", target=pool, organization=pool.organization, metadata=changes)
    return pool


@transaction.atomic
def pool_delete(*, actor: Actor, pool: BudgetPool) -> None:
    require_manager(actor=actor, organization_id=pool.organization_id)
    pool = _lock(pool)
    count = Allocation.objects.filter(pool_id=pool.pk).count()
    if count:
        raise Conflict(
            f"The pool still funds {count} project(s).",
            code="BUDGET_HAS_ALLOCATIONS",
            extra={"allocation_count": count},
        )
    audit_record(
        actor=actor,
        action="budget.delete",
        target=pool,
        organization=pool.organization,
        metadata={"name": pool.name, "total_amount": str(pool.total_amount)},
    )
    pool.delete()


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
