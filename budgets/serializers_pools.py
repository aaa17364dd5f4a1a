"""Request and response shapes of the budget pool and allocation API (the seed's field names).

Money leaves as exact numbers (Decimal, 4 places), never through float; fractions (thresholds, utilization)
are numbers between 0 and 1. Responses read the figures the selectors attach (`figures`)."""

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from budgets.models import BudgetPool
from budgets.services.pools import FRACTION_HELP
from platform_site.api import fields as strict


@extend_schema_field(
    {
        "type": "string",
        "pattern": "^(ok|warning|exceeded)$",
        "description": "ok, warning (past the alert threshold) or exceeded (all of it spent).",
    }
)
class BudgetStatusField(strict.CharField):
    """The status of a pool or allocation: a pattern, not an enum, as several components call an enum `status`."""


def Money(**kwargs):  # noqa: N802 (reads like a field class)
    return strict.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=False, read_only=True, **kwargs)


def Fraction(**kwargs):  # noqa: N802
    # Utilization may be far above 1 (an allocation cut below what it spent): room for it.
    return strict.DecimalField(max_digits=30, decimal_places=4, coerce_to_string=False, **kwargs)


def FractionIn(**kwargs):  # noqa: N802
    """A threshold: the services check it too (for the admin), the schema says it."""
    return strict.DecimalField(
        max_digits=6,
        decimal_places=4,
        min_value=Decimal(0),
        max_value=Decimal(1),
        coerce_to_string=False,
        # Django's validators %-format their messages: "80%" must be written "80%%".
        error_messages={"min_value": FRACTION_HELP.replace("%", "%%"), "max_value": FRACTION_HELP.replace("%", "%%")},
        **kwargs,
    )


def AmountIn(**kwargs):  # noqa: N802
    return strict.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal(0),
        coerce_to_string=False,
        error_messages={"min_value": "Must be zero or more."},
        **kwargs,
    )


class PoolSerializer(serializers.Serializer):
    id = strict.CharField(read_only=True)
    organization = strict.CharField(source="organization_id", read_only=True)
    name = strict.CharField(read_only=True)
    description = strict.CharField(read_only=True)
    total_amount = Money()
    allocated_amount = Money(source="figures.allocated")
    unallocated_amount = Money(source="figures.unallocated")
    spent_amount = Money(source="figures.spent", help_text="Spent in the current period (see period_start/end).")
    remaining_amount = Money(source="figures.remaining")
    utilization_rate = Fraction(source="figures.utilization", read_only=True, allow_null=True)
    status = BudgetStatusField(read_only=True, source="figures.status")
    period = strict.ChoiceField(choices=BudgetPool.Period.choices, read_only=True)
    period_start = strict.DateTimeField(source="figures.period_start", read_only=True)
    period_end = strict.DateTimeField(source="figures.period_end", read_only=True)
    start_date = strict.DateTimeField(read_only=True)
    end_date = strict.DateTimeField(read_only=True)
    alert_threshold = Fraction(read_only=True)
    created_by = serializers.SerializerMethodField()
    created_at = strict.DateTimeField(read_only=True)
    updated_at = strict.DateTimeField(read_only=True)

    @extend_schema_field(strict.EmailField(allow_null=True))
    def get_created_by(self, pool) -> str | None:
        return pool.created_by.email if pool.created_by_id else None


class AllocationSerializer(serializers.Serializer):
    id = strict.CharField(read_only=True)
    budget_id = strict.CharField(source="pool_id", read_only=True)
    project_id = strict.CharField(read_only=True)
    project_name = strict.CharField(source="project.name", read_only=True)
    allocated_amount = Money(source="amount")
    spent_amount = Money(source="figures.spent")
    remaining = Money(source="figures.remaining")
    utilization_rate = Fraction(source="figures.utilization", read_only=True, allow_null=True)
    status = BudgetStatusField(read_only=True, source="figures.status")
    alert_threshold = Fraction(
        source="figures.warn_at", read_only=True, help_text="The lowest alert threshold (else the pool's)."
    )
    alert_thresholds = serializers.ListField(child=Fraction(), read_only=True)
    auto_hibernate_threshold = Fraction(read_only=True, allow_null=True)
    prevent_launch_threshold = Fraction(read_only=True, allow_null=True)
    end_date = strict.DateTimeField(read_only=True, allow_null=True)
    period_start = strict.DateTimeField(source="figures.period_start", read_only=True)
    period_end = strict.DateTimeField(source="figures.period_end", read_only=True)
    allocated_at = strict.DateTimeField(read_only=True)
    allocated_by = serializers.SerializerMethodField()
    updated_at = strict.DateTimeField(read_only=True)

    @extend_schema_field(strict.EmailField(allow_null=True))
    def get_allocated_by(self, allocation) -> str | None:
        return allocation.allocated_by.email if allocation.allocated_by_id else None


class PoolListSerializer(serializers.Serializer):
    budgets = PoolSerializer(many=True)
    count = strict.IntegerField()


class AllocationListSerializer(serializers.Serializer):
    allocations = AllocationSerializer(many=True)
    count = strict.IntegerField()


class AlertSerializer(serializers.Serializer):
    id = strict.IntegerField(read_only=True)
    kind = strict.CharField(read_only=True)
    allocation_id = strict.CharField(read_only=True, allow_null=True)
    project_id = strict.CharField(read_only=True, allow_null=True)
    member = strict.EmailField(source="member.email", read_only=True, allow_null=True, default=None)
    threshold = Fraction(read_only=True)
    spent = Money()
    limit = Money()
    message = strict.CharField(read_only=True)
    period_start = strict.DateTimeField(read_only=True)
    created_at = strict.DateTimeField(read_only=True)


class TopSpenderSerializer(serializers.Serializer):
    project_id = strict.CharField()
    project_name = strict.CharField()
    spent = Money()
    percentage = strict.DecimalField(
        max_digits=7, decimal_places=2, coerce_to_string=False, help_text="Share of the pool's spend, in percent."
    )


class SummarySerializer(serializers.Serializer):
    budget = PoolSerializer()
    allocations = AllocationSerializer(many=True)
    status = BudgetStatusField()
    alerts = AlertSerializer(many=True)
    top_spending_projects = TopSpenderSerializer(many=True)


class MemberCapSerializer(serializers.Serializer):
    username = strict.CharField(source="user.username")
    email = strict.EmailField(source="user.email")
    amount = Money()
    spent_amount = Money(source="spent")


class MemberCapListSerializer(serializers.Serializer):
    allocation_id = strict.CharField()
    caps = MemberCapSerializer(many=True)
    count = strict.IntegerField()


# --- Requests ------------------------------------------------------------------------------------------------


class PoolCreateSerializer(serializers.Serializer):
    organization = strict.CharField(
        required=False, help_text="Organization id; may be omitted when the caller belongs to exactly one."
    )
    name = strict.CharField(max_length=200)
    description = strict.CharField(required=False, allow_blank=True, default="")
    total_amount = AmountIn()
    period = strict.ChoiceField(choices=BudgetPool.Period.choices, default=BudgetPool.Period.PROJECT)
    start_date = strict.DateTimeField()
    end_date = strict.DateTimeField()
    alert_threshold = FractionIn(required=False, help_text="A fraction between 0 and 1 (default 0.8).")


class PoolUpdateSerializer(serializers.Serializer):
    name = strict.CharField(max_length=200, required=False)
    description = strict.CharField(required=False, allow_blank=True)
    total_amount = AmountIn(required=False)
    alert_threshold = FractionIn(required=False)
    end_date = strict.DateTimeField(required=False)


class AllocationCreateSerializer(serializers.Serializer):
    project_id = strict.CharField()
    allocated_amount = AmountIn()
    alert_thresholds = serializers.ListField(child=FractionIn(), required=False, default=list, max_length=10)
    auto_hibernate_threshold = FractionIn(required=False, allow_null=True, default=None)
    prevent_launch_threshold = FractionIn(required=False, allow_null=True, default=None)
    end_date = strict.DateTimeField(required=False, allow_null=True, default=None)


class AllocationUpdateSerializer(serializers.Serializer):
    allocated_amount = AmountIn(required=False)
    alert_thresholds = serializers.ListField(child=FractionIn(), required=False, max_length=10)
    auto_hibernate_threshold = FractionIn(required=False, allow_null=True)
    prevent_launch_threshold = FractionIn(required=False, allow_null=True)
    end_date = strict.DateTimeField(required=False, allow_null=True)


class ReallocateSerializer(serializers.Serializer):
    from_project = strict.CharField(required=False)
    to_project = strict.CharField(required=False)
    from_allocation = strict.CharField(required=False)
    to_allocation = strict.CharField(required=False)
    amount = AmountIn()
    reason = strict.CharField(
        required=False, allow_blank=True, default="", max_length=1000, help_text="Required: kept in the audit trail."
    )


class ReallocateResultSerializer(serializers.Serializer):
    budget_id = strict.CharField()
    amount = Money()
    reason = strict.CharField()
    from_allocation = AllocationSerializer()
    to_allocation = AllocationSerializer()


class MemberCapsInputSerializer(serializers.Serializer):
    caps = serializers.DictField(
        child=AmountIn(), help_text="{e-mail or username: amount}: replaces the allocation's caps."
    )
