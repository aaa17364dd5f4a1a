"""Budget pools: their rules live here, once; who may change money (`require_manager`) and the validation and
locking that allocations (`budgets.services.allocations`) share.

The API, the Django admin and the console call these services. Every change is audited in the transaction that
makes it. The money invariant (a pool's allocations never add up to more than the pool) is checked with the pool's
row locked (`select_for_update`), so two concurrent changes to one pool are serialised and cannot both pass.

Who: the organization's owners and admins (and platform superusers, in the Django admin) manage pools; a project
owner may see the pool funding their project and their own allocation (BudgetPool/Allocation.objects.visible_to)
but change nothing. What the caller may see is decided by the views' scoping (404); what they may change, here (403).
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum

from accounts.models import Membership, Organization, OrgRole, User
from audit.services import audit_record
from budgets.models import Allocation, BudgetPool
from budgets.selectors_pools import ZERO, money
from platform_site.actors import Actor, is_system
from platform_site.errors import Conflict, PermissionDenied, ValidationFailed
from platform_site.text import clean_name, clean_text

ONE = Decimal(1)
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


def _dates(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ValidationFailed(
            "The end date must be after the start date.", fields={"end_date": ["Must be after start_date."]}
        )


def _lock(pool: BudgetPool) -> BudgetPool:
    """The pool's row, locked until the transaction ends: every change to its allocations takes this lock first."""
    locked: BudgetPool = BudgetPool.objects.select_for_update().select_related("organization").get(pk=pool.pk)
    return locked


def _allocated(pool: BudgetPool, *, excluding: str | None = None) -> Decimal:
    queryset = Allocation.objects.filter(pool_id=pool.pk)
    if excluding:
        queryset = queryset.exclude(pk=excluding)
    return queryset.aggregate(total=Sum("amount"))["total"] or ZERO


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
