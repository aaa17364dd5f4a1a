"""Serializers of the project money and cost endpoints: query and body validation, and the response shapes
(for the OpenAPI schema; money is an exact number: Decimal in, Decimal out, never float)."""

from rest_framework import serializers

from platform_site.api import fields as strict
from workspaces.serializers import ConfigurationSerializer


def Money(**kwargs):  # noqa: N802 (reads like a field class)
    return strict.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=False, **kwargs)


def Percentage(**kwargs):  # noqa: N802
    return strict.DecimalField(max_digits=30, decimal_places=1, coerce_to_string=False, **kwargs)


NOT_INCLUDED_HELP = "What the figures leave out: Carrel does not meter data transfer, taxes or support plans."


class NotIncludedField(serializers.ListField):
    def __init__(self, **kwargs):
        super().__init__(child=strict.CharField(), help_text=NOT_INCLUDED_HELP, **kwargs)


# --- GET /projects/{id}/budget ---------------------------------------------------------------------------------------


class CostBreakdownSerializer(serializers.Serializer):
    compute = Money()
    storage = Money(help_text="EBS volumes: size, and provisioned IOPS/throughput above the free baseline.")
    snapshot = Money()


class TopSpendingInstanceSerializer(serializers.Serializer):
    name = strict.CharField()
    workspace_id = strict.CharField()
    cost = Money()
    percentage = Percentage(allow_null=True, help_text="Of the project's spend in the period.")


class BudgetAlertSerializer(serializers.Serializer):
    id = strict.IntegerField()
    kind = strict.CharField()
    threshold = strict.DecimalField(max_digits=6, decimal_places=4, coerce_to_string=False)
    spent = Money()
    limit = Money()
    message = strict.CharField()
    period_start = strict.DateTimeField()
    created_at = strict.DateTimeField()


class IdleSavingsSerializer(serializers.Serializer):
    total_usd = Money()
    actions = strict.IntegerField(help_text="How many idle actions (hibernate, stop) were taken.")


class ProjectBudgetSerializer(serializers.Serializer):
    project_id = strict.CharField()
    allocation_id = strict.CharField(allow_null=True)
    budget_id = strict.CharField(allow_null=True)
    period_start = strict.DateTimeField(
        allow_null=True, help_text="The budget period: the month for a monthly pool, else the pool's term."
    )
    period_end = strict.DateTimeField(allow_null=True)
    total_allocated = Money(allow_null=True, help_text="The allocation's amount; null when the project is unfunded.")
    current_spend = Money(help_text="Spend in the budget period (the project's whole life when unfunded).")
    remaining = Money(allow_null=True)
    utilization_rate = strict.DecimalField(max_digits=12, decimal_places=4, coerce_to_string=False, allow_null=True)
    cost_breakdown = CostBreakdownSerializer()
    not_included = NotIncludedField()
    hibernation_savings = Money(
        help_text="What the period's stopped and hibernated time would have cost at each workspace's compute rate."
    )
    idle_savings = IdleSavingsSerializer(
        help_text="What idle detection's actions (hibernate, stop) taken in the period saved: each action's compute "
        "rate times the hours until the workspace started again (or now, or its TTL)."
    )
    top_spending_instances = TopSpendingInstanceSerializer(many=True)
    budget_alerts = serializers.DictField(
        child=serializers.JSONField(),
        help_text="threshold_<n>_percent (true once the period's spend reached n% of the allocation, one per alert "
        "threshold) and overspend_risk (low, medium, high).",
    )
    alerts = BudgetAlertSerializer(many=True, help_text="The project's budget alerts, newest first (20 at most).")


# --- GET /projects/{id}/cost-analysis --------------------------------------------------------------------------------


class RecommendationSerializer(serializers.Serializer):
    type = strict.ChoiceField(choices=["hibernation", "storage"])
    instance = strict.CharField()
    workspace_id = strict.CharField()
    potential_savings = Money(help_text="USD per month.")
    recommendation = strict.CharField()


class CostAnalysisSerializer(serializers.Serializer):
    project_id = strict.CharField()
    month_start = strict.DateTimeField(help_text="The month in the organization's time zone.")
    month_to_date = Money()
    projected_month = Money(help_text="Month to date + the daily burn × the days left in the month.")
    projected_monthly_burn = Money(help_text="The seed's name for projected_month.")
    current_monthly_burn = Money(help_text="The daily burn × the days of this month.")
    burn_rate_daily = Money(help_text="Average per day over the last 7 days (today so far and the 6 before).")
    total_allocated = Money(allow_null=True)
    current_spend = Money()
    remaining = Money(allow_null=True)
    runway_days = strict.DecimalField(
        max_digits=10,
        decimal_places=1,
        coerce_to_string=False,
        allow_null=True,
        help_text="Days until the allocation is spent at the daily burn, at most to its end date; null if unfunded.",
    )
    runway_end = strict.DateTimeField(allow_null=True)
    hibernation_potential_savings = Money()
    optimization_recommendations = RecommendationSerializer(many=True)
    not_included = NotIncludedField()


# --- GET /costs/current ----------------------------------------------------------------------------------------------


class CurrentBreakdownSerializer(serializers.Serializer):
    instances = Money()
    ebs_storage = Money()
    efs_storage = Money(help_text="Always 0: Carrel does not meter EFS yet.")


class SavingsSerializer(serializers.Serializer):
    current_month = Money()
    projected_monthly = Money(help_text="This month's savings, plus the workspaces resting now until month end.")


class CostDriverSerializer(serializers.Serializer):
    resource = strict.CharField()
    workspace_id = strict.CharField()
    project_id = strict.CharField()
    hourly_cost = Money()
    percentage = Percentage(allow_null=True)


class CurrentCostsSerializer(serializers.Serializer):
    total_current_hourly = Money()
    total_daily_projection = Money()
    total_monthly_projection = Money()
    cost_breakdown = CurrentBreakdownSerializer()
    hibernation_savings = SavingsSerializer()
    top_cost_drivers = CostDriverSerializer(many=True)
    not_included = NotIncludedField()


# --- GET /costs/history ----------------------------------------------------------------------------------------------


class _QuerySerializer(serializers.Serializer):
    """Query parameters: one given empty (`?start_date=`) is an error, not the same as leaving it out (DRF
    would take an empty optional field from a query string as absent)."""

    def to_internal_value(self, data):
        blank = {name: ["May not be empty."] for name in self.fields if name in data and data.get(name) == ""}
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)


class HistoryQuerySerializer(_QuerySerializer):
    start_date = serializers.DateField(required=False, help_text="ISO 8601 date; default 29 days before end_date.")
    end_date = serializers.DateField(required=False, help_text="ISO 8601 date, inclusive; default today.")
    granularity = serializers.ChoiceField(choices=["daily", "weekly", "monthly"], default="daily")
    group_by = serializers.ChoiceField(choices=["project", "workspace", "member"], default="project")
    project = serializers.CharField(required=False, help_text="Project id or name.")


class GroupCostSerializer(serializers.Serializer):
    id = strict.CharField()
    name = strict.CharField()
    cost = Money()


class BucketSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The bucket's first day (a Monday for weeks, the 1st for months).")
    end_date = serializers.DateField()
    cost = Money()
    instances = strict.IntegerField(help_text="Workspaces with a cost in the bucket.")
    breakdown = GroupCostSerializer(many=True)


class TrendsSerializer(serializers.Serializer):
    trend_direction = strict.ChoiceField(choices=["increasing", "decreasing", "stable"])
    percentage_change = Percentage(allow_null=True, help_text="Second half of the range against the first.")
    primary_driver = strict.CharField(allow_null=True)


class CostHistorySerializer(serializers.Serializer):
    period = strict.CharField()
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    granularity = strict.CharField()
    group_by = strict.CharField()
    project_id = strict.CharField(allow_null=True)
    total_cost = Money()
    daily_costs = BucketSerializer(many=True, help_text="One per day, ISO week or month (the seed's name).")
    cost_trends = TrendsSerializer()
    not_included = NotIncludedField()


class ExportQuerySerializer(_QuerySerializer):
    start_date = serializers.DateField(required=False, help_text="ISO 8601 date; default 29 days before end_date.")
    end_date = serializers.DateField(required=False, help_text="ISO 8601 date, inclusive; default today.")
    project = serializers.CharField(required=False, help_text="Project id or name.")


# --- POST /costs/what-if ---------------------------------------------------------------------------------------------


class WhatIfSerializer(serializers.Serializer):
    project = strict.CharField(help_text="Project id or name.")
    template = strict.CharField(required=False, help_text="Template name or slug: its instance defaults apply.")
    instance_type = strict.CharField(required=False)
    size = strict.ChoiceField(choices=["XS", "S", "M", "L", "XL"], required=False)
    configuration = ConfigurationSerializer(required=False)
    region = strict.CharField(required=False)
    spot = strict.BooleanField(default=False)
    hours_per_day = strict.DecimalField(max_digits=4, decimal_places=2, min_value=0, max_value=24)
    days = strict.IntegerField(min_value=1, max_value=3660)
    storage_gb = strict.IntegerField(required=False, min_value=1, max_value=65536)
    volume_type = strict.ChoiceField(choices=["gp3", "gp2", "io1", "io2", "st1", "sc1"], default="gp3")

    def validate(self, attrs):
        if not attrs.get("template") and not attrs.get("instance_type"):
            raise serializers.ValidationError({"template": ["Give a template or an instance_type."]})
        return attrs


class WhatIfAllocationSerializer(serializers.Serializer):
    id = strict.CharField()
    amount = Money()
    spent = Money()
    reserved = Money(help_text="Held by launches and starts until their real cost replaces it.")
    remaining = Money()
    limit = Money(help_text="The amount × prevent_launch_threshold (the amount when there is none).")


class WhatIfResultSerializer(serializers.Serializer):
    project_id = strict.CharField()
    instance_type = strict.CharField()
    region = strict.CharField()
    spot = strict.BooleanField()
    hours_per_day = strict.DecimalField(max_digits=4, decimal_places=2, coerce_to_string=False)
    days = strict.IntegerField()
    storage_gb = strict.IntegerField()
    volume_type = strict.CharField()
    hourly_rate = Money(help_text="Compute, USD per hour, after the organization's discount.")
    storage_monthly_rate = Money(help_text="The volume, USD per month, after the organization's discount.")
    daily_cost = Money(help_text="Compute for hours_per_day + the volume for a day.")
    compute_cost = Money()
    storage_cost = Money(help_text="The volume is billed all day, running or not.")
    total_cost = Money()
    share_of_allocation = strict.DecimalField(
        max_digits=12, decimal_places=4, coerce_to_string=False, allow_null=True, help_text="total_cost / amount."
    )
    allocation = WhatIfAllocationSerializer(allow_null=True)
    burn_rate_daily = Money(help_text="The project's average over the last 7 days.")
    runway_days_before = strict.DecimalField(max_digits=10, decimal_places=1, coerce_to_string=False, allow_null=True)
    runway_days_after = strict.DecimalField(max_digits=10, decimal_places=1, coerce_to_string=False, allow_null=True)
    within_budget = strict.BooleanField(
        help_text="spent + reserved + total_cost stays within the limit (always true for an unfunded project)."
    )
    assumptions = serializers.ListField(child=strict.CharField())


class LaunchPlanSerializer(serializers.Serializer):
    """POST /instances/launch with dry_run: what the launch would create, and what it would cost."""

    dry_run = strict.BooleanField()
    name = strict.CharField()
    project_id = strict.CharField()
    template = strict.CharField()
    instance_type = strict.CharField()
    region = strict.CharField()
    spot = strict.BooleanField()
    hourly_rate = strict.DecimalField(max_digits=10, decimal_places=4, coerce_to_string=False)
    storage_gb = strict.IntegerField()
    volume_type = strict.CharField()
    hibernation_supported = strict.BooleanField()
    what_if = WhatIfResultSerializer(
        help_text="The workspace running around the clock for 30 days (POST /api/v1/costs/what-if for others)."
    )
