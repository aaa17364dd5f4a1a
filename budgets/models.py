"""Money: the price book, the cost ledger, budget pools, allocations, reservations and alerts.

Every amount is a `Decimal`. The ledger (`CostEntry`) is append-only: rows are written by
`budgets.ledger` from the workspaces' state transitions and never edited.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from platform_site.ids import make_id
from platform_site.tenancy import ScopedQuerySet


def new_budget_id() -> str:
    return make_id("budget")


def new_allocation_id() -> str:
    return make_id("alloc")


FRACTION = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10"))]


class Price(models.Model):
    """One line of the price book: what AWS charges for one dimension of one product in one region."""

    class Product(models.TextChoices):
        COMPUTE = "compute", "EC2 instance (Linux, on-demand, shared tenancy)"
        EBS = "ebs", "EBS volume"
        SNAPSHOT = "snapshot", "EBS snapshot"
        EFS = "efs", "EFS file system"

    class Dimension(models.TextChoices):
        HOUR = "hour", "USD per hour"
        STORAGE = "storage", "USD per GB-month"
        IOPS = "iops", "USD per provisioned IOPS-month (above the free baseline)"
        THROUGHPUT = "throughput", "USD per provisioned MB/s-month (above the free baseline)"

    region = models.CharField(max_length=32)
    product = models.CharField(max_length=16, choices=Product.choices)
    # The instance type (compute), the volume type (ebs: gp3, gp2, io1, io2, st1, sc1), or the storage
    # class (snapshot: standard; efs: standard, infrequent-access).
    variant = models.CharField(max_length=32)
    dimension = models.CharField(max_length=16, choices=Dimension.choices)
    price = models.DecimalField(max_digits=16, decimal_places=10)
    # Units provisioned at no charge (gp3: 3000 IOPS and 125 MB/s).
    free_units = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    as_of = models.DateField()
    source = models.CharField(max_length=32, default="shipped", help_text="shipped, or aws-price-list")
    updated_at = models.DateTimeField(auto_now=True)

    objects = models.Manager()

    class Meta:
        ordering = ["region", "product", "variant", "dimension"]
        constraints = [
            models.UniqueConstraint(fields=["region", "product", "variant", "dimension"], name="price_unique_line"),
        ]

    def __str__(self) -> str:
        return f"{self.region} {self.product} {self.variant} {self.dimension}: {self.price}"


class BudgetPoolQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "BudgetPoolQuerySet":
        """Pools of organizations the user owns or administers, and pools funding a project they own."""
        from accounts.models import Membership, OrgRole
        from projects.models import ProjectMember, ProjectRole

        administered = Membership.objects.filter(user=user, role__in=[OrgRole.OWNER, OrgRole.ADMIN]).values(
            "organization_id"
        )
        owned_projects = (
            ProjectMember.objects.current()
            .filter(user=user, role=ProjectRole.OWNER, project__deleted_at__isnull=True)
            .values("project_id")
        )
        return self.filter(
            Q(organization_id__in=administered)
            | Q(pk__in=Allocation.objects.filter(project_id__in=owned_projects).values("pool_id"))
        )


class BudgetPool(models.Model):
    """Money an institution sets aside (a grant, a department's cloud budget), shared out to projects."""

    class Period(models.TextChoices):
        PROJECT = "project", "The whole pool, from start to end date"
        MONTHLY = "monthly", "Each calendar month (amounts are per month)"

    id = models.CharField(primary_key=True, max_length=40, default=new_budget_id, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="budget_pools")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    total_amount = models.DecimalField(max_digits=14, decimal_places=2)
    period = models.CharField(max_length=16, choices=Period.choices, default=Period.PROJECT)
    start_date = models.DateTimeField()
    end_date = models.DateTimeField()
    alert_threshold = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal("0.80"), validators=FRACTION)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BudgetPoolQuerySet.as_manager()

    class Meta:
        ordering = ["organization_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="budget_pool_unique_name_per_org"),
            models.CheckConstraint(condition=Q(total_amount__gte=0), name="budget_pool_total_not_negative"),
            models.CheckConstraint(
                condition=Q(end_date__gt=models.F("start_date")), name="budget_pool_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AllocationQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "AllocationQuerySet":
        """Allocations of pools the user administers, and the allocations of projects they own."""
        from accounts.models import Membership, OrgRole
        from projects.models import ProjectMember, ProjectRole

        administered = Membership.objects.filter(user=user, role__in=[OrgRole.OWNER, OrgRole.ADMIN]).values(
            "organization_id"
        )
        owned_projects = ProjectMember.objects.current().filter(user=user, role=ProjectRole.OWNER).values("project_id")
        return self.filter(Q(pool__organization_id__in=administered) | Q(project_id__in=owned_projects))


class Allocation(models.Model):
    """The share of a pool a project may spend, and what happens as it is spent.

    Thresholds are fractions of `amount` (0.8 = 80%). A project has at most one allocation."""

    id = models.CharField(primary_key=True, max_length=40, default=new_allocation_id, editable=False)
    pool = models.ForeignKey(BudgetPool, on_delete=models.PROTECT, related_name="allocations")
    project = models.OneToOneField("projects.Project", on_delete=models.PROTECT, related_name="allocation")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    alert_thresholds = models.JSONField(default=list, blank=True, help_text='Fractions, e.g. ["0.5", "0.8", "0.9"].')
    auto_hibernate_threshold = models.DecimalField(
        max_digits=6, decimal_places=4, null=True, blank=True, validators=FRACTION
    )
    prevent_launch_threshold = models.DecimalField(
        max_digits=6, decimal_places=4, null=True, blank=True, validators=FRACTION
    )
    end_date = models.DateTimeField(null=True, blank=True, help_text="Runway is measured to this (else the pool's).")
    allocated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    allocated_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AllocationQuerySet.as_manager()

    class Meta:
        ordering = ["pool_id", "allocated_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="allocation_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.project} from {self.pool}: {self.amount}"


class MemberCap(models.Model):
    """A member's own limit inside an allocation (a student's share of the grant)."""

    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="member_caps")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(default=timezone.now)

    objects = models.Manager()

    class Meta:
        ordering = ["allocation_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["allocation", "user"], name="member_cap_unique_user"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="member_cap_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.amount}"


class Reservation(models.Model):
    """The estimated cost of a launch or start, held against the allocation until real cost replaces it."""

    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="reservations")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="reservations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount = models.DecimalField(max_digits=14, decimal_places=6)
    # What is still held: the ledger lowers it as it writes the workspace's cost; 0 once released.
    remaining = models.DecimalField(max_digits=14, decimal_places=6)
    reason = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager()

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["allocation"], condition=Q(released_at__isnull=True), name="reservation_held"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id}: {self.remaining} of {self.amount}"


class CostEntryQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "CostEntryQuerySet":
        from projects.models import Project

        return self.filter(project__in=Project.objects.visible_to(user))


class CostEntry(models.Model):
    """One closed, priced interval of one resource. Append-only: written by budgets.ledger, never edited.

    `amount` = list price of `quantity` at `rate`, less the organization's `discount_percent`.
    Compute: quantity in seconds, rate in USD per hour. Storage: quantity in GB-months (GB × seconds /
    seconds in that calendar month, as AWS bills), rate in USD per GB-month (IOPS and MB/s alike)."""

    class Kind(models.TextChoices):
        COMPUTE = "compute", "Compute"
        STORAGE = "storage", "Storage"
        SNAPSHOT = "snapshot", "Snapshot"

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.PROTECT, related_name="cost_entries")
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="cost_entries")
    allocation = models.ForeignKey(Allocation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What was billed: the instance type, or the volume type and dimension ("gp3 storage", "gp3 iops").
    item = models.CharField(max_length=48)
    start = models.DateTimeField()
    end = models.DateTimeField()
    # The organization's calendar day (in its time zone) the interval lies in: intervals never cross midnight.
    day = models.DateField()
    quantity = models.DecimalField(max_digits=24, decimal_places=12)
    unit = models.CharField(max_length=16)
    rate = models.DecimalField(max_digits=16, decimal_places=10)
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    amount = models.DecimalField(max_digits=18, decimal_places=8)
    # The transition whose recording closed the interval (null for the daily close at midnight): it keeps
    # both the cloud's time of the change and when Carrel observed it.
    transition = models.ForeignKey(
        "workspaces.StateTransition", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = CostEntryQuerySet.as_manager()

    class Meta:
        ordering = ["start", "id"]
        indexes = [
            # Covering: a project's sums by day, kind, workspace or member read the index alone (its rows are spread
            # over the whole table).
            models.Index(
                fields=["project", "day"],
                name="cost_project_day",
                include=["start", "kind", "workspace", "member", "amount", "quantity"],
            ),
            models.Index(fields=["organization", "day"], name="cost_organization_day"),
            models.Index(fields=["allocation", "day"], name="cost_allocation_day"),
            models.Index(fields=["workspace", "day"], name="cost_workspace_day"),
        ]
        constraints = [
            # One row per resource and interval start: a repeated close cannot write it twice.
            models.UniqueConstraint(fields=["workspace", "item", "start"], name="cost_entry_unique_interval"),
            models.CheckConstraint(condition=Q(end__gte=models.F("start")), name="cost_entry_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.item} {self.start:%Y-%m-%d %H:%M:%S}: {self.amount}"


class CostDay(models.Model):
    """The ledger summed per project, organization-local day and kind: kept by budgets.ledger in the transaction
    that writes the CostEntry rows, so long periods are summed from a few hundred rows instead of millions."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    kind = models.CharField(max_length=16, choices=CostEntry.Kind.choices)
    amount = models.DecimalField(max_digits=20, decimal_places=8)

    objects = models.Manager()

    class Meta:
        ordering = ["project_id", "day", "kind"]
        constraints = [models.UniqueConstraint(fields=["project", "day", "kind"], name="cost_day_unique")]

    def __str__(self) -> str:
        return f"{self.project_id} {self.day} {self.kind}: {self.amount}"


class OpenSpendSum(models.Model):
    """Sums over the open ledger intervals of a project's workspaces, by the UTC month of their cursor
    (`ledger_through`), so that a project's open spend is read from a few rows instead of every live workspace.

    Written by PostgreSQL, not by Django: a trigger on workspaces (migration 0003) appends the change of every
    insert, update or delete that touches what the open interval is priced from (state, cursor, rates, volume,
    project): the old row's part negated, the new row's part. Append-only, so concurrent writers never wait for
    each other; budgets.open_sums.compact folds the rows into one per (project, month) every few minutes.
    budgets.selectors.open_spend reads them, and prices from the workspace rows only the part that depends on the
    moment of reading (a run's first minute, a cursor past now). Unused on SQLite (the sandbox prices each
    workspace in Python)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    month = models.DateTimeField()  # the first instant of the cursor's UTC month
    # Σ hourly_rate and Σ hourly_rate × epoch(cursor) over workspaces billed for compute (ledger.COMPUTE_BILLED).
    billed_rate = models.DecimalField(max_digits=40, decimal_places=14, default=Decimal(0))
    billed_rate_epoch = models.DecimalField(max_digits=40, decimal_places=14, default=Decimal(0))
    # Σ storage_monthly_rate and Σ storage_monthly_rate × epoch(cursor) over workspaces whose volume is billed.
    storage_rate = models.DecimalField(max_digits=40, decimal_places=14, default=Decimal(0))
    storage_epoch = models.DecimalField(max_digits=40, decimal_places=14, default=Decimal(0))

    objects = models.Manager()

    class Meta:
        indexes = [models.Index(fields=["project", "month"], name="open_spend_sum_project")]

    def __str__(self) -> str:
        return f"{self.project_id} {self.month:%Y-%m}: {self.billed_rate}/h, {self.storage_rate}/month"


class BudgetAlert(models.Model):
    """Something the money rules did or warned about, once per threshold per period: the project's alert list."""

    class Kind(models.TextChoices):
        THRESHOLD = "threshold", "Alert threshold crossed"
        AUTO_HIBERNATE = "auto_hibernate", "Workspaces hibernated (or stopped) by the budget"
        PREVENT_LAUNCH = "prevent_launch", "Launches and starts refused"
        MEMBER_CAP = "member_cap", "A member reached their cap"
        POOL_THRESHOLD = "pool_threshold", "Pool alert threshold crossed"

    allocation = models.ForeignKey(Allocation, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    pool = models.ForeignKey(BudgetPool, on_delete=models.CASCADE, related_name="alerts")
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="budget_alerts"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    threshold = models.DecimalField(max_digits=6, decimal_places=4)
    # The start of the budget period this alert belongs to: it fires once per threshold per period.
    period_start = models.DateTimeField()
    spent = models.DecimalField(max_digits=18, decimal_places=6)
    limit = models.DecimalField(max_digits=14, decimal_places=2)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pool", "allocation", "member", "kind", "threshold", "period_start"],
                name="budget_alert_once_per_period",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.threshold} ({self.period_start:%Y-%m-%d})"
