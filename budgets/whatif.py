"""What a workspace would cost before it exists: POST /api/v1/costs/what-if and the launch endpoint's dry run.

`plan_for` chooses the instance type and volume as a launch would (workspaces.sizing, the template's instance
defaults, budgets.prices); `estimate` prices a plan for some hours a day over some days, after the
organization's discount, and sets it against the project's allocation: its share, the runway before and
after at the project's 7-day burn, and whether it fits under the launch limit (prevent_launch_threshold ×
amount, with what the period spent and what reservations hold), as the launch's own budget check counts.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from accounts.models import User
from budgets import ledger, prices, reports
from budgets.models import Reservation
from budgets.selectors import ZERO, money
from platform_site.errors import NotFound, ValidationFailed
from projects.models import Project
from templates.selectors import template_for
from workspaces import sizing
from workspaces.models import Workspace

DEFAULT_ROOT_GB = 30
FULL = Decimal(1)


@dataclass(frozen=True)
class Plan:
    """The machine and volume a launch would get, at list prices (before the organization's discount)."""

    instance_type: str
    region: str
    spot: bool
    hourly_rate: Decimal
    storage_gb: int
    volume_type: str
    storage_lines: list[prices.StorageLine]

    @property
    def storage_monthly_rate(self) -> Decimal:
        return prices.monthly_rate(self.storage_lines)

    @classmethod
    def of_workspace(cls, workspace: Workspace) -> "Plan":
        """The plan a workspace row was launched with (its rate and its volume's priced lines)."""
        lines = [
            prices.StorageLine(line["item"], Decimal(line["units"]), line["unit"], Decimal(line["rate"]))
            for line in workspace.storage_lines or []
        ]
        return cls(
            instance_type=workspace.instance_type,
            region=workspace.region,
            spot=workspace.spot,
            hourly_rate=workspace.hourly_rate,
            storage_gb=workspace.root_volume_gb,
            volume_type=workspace.root_volume_type,
            storage_lines=lines,
        )


def default_region(*, user: User, project: Project) -> str:
    from workspaces.services.profiles import default_cloud_account

    account = default_cloud_account(user=user, organization=project.organization)
    return account.region if account is not None else sizing.regions()[0]


def plan_for(
    *,
    user: User,
    project: Project,
    template: str | None = None,
    instance_type: str | None = None,
    size: str | None = None,
    configuration: dict | None = None,
    region: str | None = None,
    spot: bool = False,
    storage_gb: int | None = None,
    volume_type: str = "gp3",
) -> Plan:
    """The instance type and volume, by the launch's rules: an explicit type, else the configuration, the
    size on the template's workload ladder, the template's own type or size; the volume holds the machine's
    memory when it can hibernate (hibernation writes RAM to it)."""
    defaults: dict = {}
    if template:
        view = template_for(user=user, reference=template)
        if view is None or view.template.organization_id not in (None, project.organization_id):
            raise NotFound(f"No template named '{template}'.", code="TEMPLATE_NOT_FOUND")
        if view.resolved is None:
            raise ValidationFailed(f"The template '{template}' is not valid.", code="TEMPLATE_INVALID")
        defaults = view.resolved.instance_defaults
    configuration = configuration or None
    region = (configuration or {}).get("region") or region or default_region(user=user, project=project)
    chosen = sizing.choose_instance_type(
        region=region,
        template_defaults=defaults,
        size=size,
        instance_type=instance_type,
        configuration=configuration,
    )
    asked = storage_gb or (configuration or {}).get("storageGB") or defaults.get("root_volume_gb")
    root_gb = int(asked or DEFAULT_ROOT_GB)
    if chosen.hibernation_supported:
        root_gb = max(root_gb, int(chosen.memory_gib) + 8)
    return Plan(
        instance_type=chosen.name,
        region=region,
        spot=spot,
        hourly_rate=sizing.hourly_rate(chosen, region, spot=spot),
        storage_gb=root_gb,
        volume_type=volume_type,
        storage_lines=prices.storage_lines(region=region, volume_type=volume_type, size_gb=root_gb),
    )


def reserved_for(money_: reports.ProjectMoney) -> Decimal:
    """What launches and starts of the project still hold: each reservation less the open cost that has
    already replaced it (as the launch's budget check counts it). One query."""
    if money_.allocation is None:
        return ZERO
    open_cost = {pk: cost.total for pk, cost in reports.open_costs(money_.workspaces, money_.now).items()}
    held = Reservation.objects.filter(allocation=money_.allocation, released_at__isnull=True).values_list(
        "workspace_id", "remaining"
    )
    return sum((max(remaining - open_cost.get(pk, ZERO), ZERO) for pk, remaining in held), ZERO)


def estimate(
    *,
    project: Project,
    plan: Plan,
    hours_per_day: Decimal,
    days: int,
    now: datetime | None = None,
) -> dict:
    """The plan priced for `hours_per_day` over `days` from now, against the project's allocation."""
    now = now or timezone.now()
    factor = (ledger.HUNDRED - (project.organization.discount_percent or ZERO)) / ledger.HUNDRED
    hourly = plan.hourly_rate * factor
    storage_monthly = plan.storage_monthly_rate * factor
    compute_cost = hourly * hours_per_day * days
    # The volume is billed every second it exists, as a share of each calendar month (as the ledger bills it).
    storage_cost = storage_monthly * ledger.month_fraction(now, now + timedelta(days=days))
    total = compute_cost + storage_cost
    daily = total / days
    money_ = reports.project_money(project, now=now)
    allocation = money_.allocation
    before, _ = reports.runway(money_)
    after, _ = reports.runway(money_, extra_daily=daily)
    allocation_body = None
    within = True
    if allocation is not None:
        reserved = reserved_for(money_)
        threshold = allocation.prevent_launch_threshold if allocation.prevent_launch_threshold is not None else FULL
        limit = allocation.amount * threshold
        within = money_.spent + reserved + total <= limit
        allocation_body = {
            "id": allocation.pk,
            "amount": money(allocation.amount),
            "spent": money(money_.spent),
            "reserved": money(reserved),
            "remaining": money(allocation.amount - money_.spent - reserved),
            "limit": money(limit),
        }
    assumptions = [
        "The volume is billed all day, running or not; compute only for hours_per_day.",
        "Prices are the price book's on-demand Linux rates, less the organization's discount.",
        "Runway assumes the project's last 7 days of spend go on, plus this workspace's daily cost.",
    ]
    if plan.spot:
        assumptions.append("Spot: an estimate; the real rate is the spot price when the instance starts.")
    return {
        "project_id": project.pk,
        "instance_type": plan.instance_type,
        "region": plan.region,
        "spot": plan.spot,
        "hours_per_day": hours_per_day,
        "days": days,
        "storage_gb": plan.storage_gb,
        "volume_type": plan.volume_type,
        "hourly_rate": money(hourly),
        "storage_monthly_rate": money(storage_monthly),
        "daily_cost": money(daily),
        "compute_cost": money(compute_cost),
        "storage_cost": money(storage_cost),
        "total_cost": money(total),
        "share_of_allocation": reports.fraction(total, allocation.amount) if allocation else None,
        "allocation": allocation_body,
        "burn_rate_daily": money(money_.burn_rate_daily),
        "runway_days_before": before,
        "runway_days_after": after,
        "within_budget": within,
        "assumptions": [*assumptions, f"Not included: {', '.join(reports.NOT_INCLUDED).replace('_', ' ')}."],
    }


def what_if(*, user: User, project: Project, hours_per_day: Decimal, days: int, **choice: Any) -> dict:
    """POST /costs/what-if: plan_for(**choice) priced by estimate."""
    return estimate(
        project=project, plan=plan_for(user=user, project=project, **choice), hours_per_day=hours_per_day, days=days
    )
