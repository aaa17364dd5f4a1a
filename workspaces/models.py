from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from platform_site.ids import make_id, new_workspace_id
from platform_site.sql import among
from platform_site.tenancy import ScopedQuerySet


def new_cloud_account_id() -> str:
    return make_id("acct")


def new_job_id() -> str:
    return make_id("job")


class WorkspaceState(models.TextChoices):
    PENDING = "pending", "Pending"
    LAUNCHING = "launching", "Launching"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    STARTING = "starting", "Starting"
    HIBERNATING = "hibernating", "Hibernating"
    HIBERNATED = "hibernated", "Hibernated"
    RESUMING = "resuming", "Resuming"
    RESIZING = "resizing", "Resizing"
    TERMINATING = "terminating", "Terminating"
    TERMINATED = "terminated", "Terminated"
    ERROR = "error", "Error"


# A workspace is live until it is terminated: stopped and hibernated machines still hold volumes.
LIVE_STATES = frozenset(WorkspaceState.values) - {WorkspaceState.TERMINATED}
# States in which the instance is billed for compute, as AWS bills: from pending (launching, starting,
# resuming) through running, and while stopping only when hibernating. budgets.ledger applies the details.
COMPUTE_BILLED_STATES = frozenset(
    {
        WorkspaceState.LAUNCHING,
        WorkspaceState.RUNNING,
        WorkspaceState.STARTING,
        WorkspaceState.HIBERNATING,
        WorkspaceState.RESUMING,
    }
)
# States a background task is still working towards a stable state from.
TRANSITIONAL_STATES = frozenset(
    {
        WorkspaceState.LAUNCHING,
        WorkspaceState.STOPPING,
        WorkspaceState.STARTING,
        WorkspaceState.HIBERNATING,
        WorkspaceState.RESUMING,
        WorkspaceState.RESIZING,
        WorkspaceState.TERMINATING,
    }
)


class CloudAccountQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "CloudAccountQuerySet":
        from accounts.models import Membership

        return self.filter(organization_id__in=Membership.objects.filter(user=user).values("organization_id"))


class CloudAccount(models.Model):
    """Where an organization's workspaces run (the seeds' "profile"): provider, region, credentials."""

    class CredentialSource(models.TextChoices):
        DEFAULT_CHAIN = "default_chain", "The server's default AWS credential chain"
        ASSUME_ROLE = "assume_role", "Assume a role through STS"

    id = models.CharField(primary_key=True, max_length=32, default=new_cloud_account_id, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="cloud_accounts")
    name = models.CharField(max_length=100)
    provider = models.CharField(max_length=16, default="aws", choices=[("aws", "Amazon Web Services")])
    region = models.CharField(max_length=32, default="us-east-1")
    credential_source = models.CharField(
        max_length=16, choices=CredentialSource.choices, default=CredentialSource.DEFAULT_CHAIN
    )
    role_arn = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    endpoint_url = models.URLField(blank=True, help_text="Only for an EC2-compatible endpoint such as a moto server.")
    image_overrides = models.JSONField(
        default=dict, blank=True, help_text="base_os → AMI id, instead of looking the image up by name."
    )
    subnet_id = models.CharField(max_length=64, blank=True)
    key_name = models.CharField(max_length=255, blank=True, help_text="EC2 key pair for SSH access.")
    is_default = models.BooleanField(default=False)
    terminate_orphans = models.BooleanField(
        default=False, help_text="Terminate instances tagged by Carrel that have no workspace, after the grace period."
    )
    orphan_grace_minutes = models.PositiveIntegerField(default=60)
    created_at = models.DateTimeField(default=timezone.now)
    # What the last reconciliation of this account found; one broken account never stops the others.
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    last_reconcile_error = models.TextField(blank=True)
    last_reconcile_error_at = models.DateTimeField(null=True, blank=True)

    objects = CloudAccountQuerySet.as_manager()

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="cloud_account_unique_name_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.region})"


class WorkspacePreference(models.Model):
    """The caller's current profile: default cloud account and project (POST /profiles/switch)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_preference")
    cloud_account = models.ForeignKey(CloudAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    project = models.ForeignKey("projects.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    objects = models.Manager()

    def __str__(self) -> str:
        return f"{self.user}: {self.cloud_account} / {self.project}"


class WorkspaceQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "WorkspaceQuerySet":
        from projects.models import Project

        # The visible projects' ids first, then the workspaces of those projects from the project index: no join
        # of every workspace against the projects (platform_site.sql.among).
        return self.filter(among("project_id", Project.objects.visible_to(user).values("pk"), using=self.db))

    def live(self) -> "WorkspaceQuerySet":
        return self.filter(state__in=LIVE_STATES)


class Workspace(models.Model):
    """A cloud workstation inside a project. Its state changes only when the provider says so."""

    id = models.CharField(primary_key=True, max_length=32, default=new_workspace_id, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="workspaces")
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="workspaces")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="workspaces")
    name = models.CharField(max_length=63)
    state = models.CharField(max_length=16, choices=WorkspaceState.choices, default=WorkspaceState.PENDING)
    cloud_account = models.ForeignKey(
        CloudAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="workspaces"
    )
    template = models.ForeignKey(
        "workspace_templates.WorkspaceTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    template_name = models.CharField(max_length=120, blank=True)
    template_snapshot = models.JSONField(default=dict, blank=True, help_text="The resolved template at launch.")
    size = models.CharField(max_length=4, blank=True)
    instance_type = models.CharField(max_length=32, blank=True)
    region = models.CharField(max_length=32, blank=True)
    spot = models.BooleanField(default=False)
    root_volume_gb = models.PositiveIntegerField(default=30)
    root_volume_type = models.CharField(max_length=16, default="gp3")
    # Provisioned IOPS and throughput (MB/s) of the root volume; null takes the volume type's baseline.
    root_volume_iops = models.PositiveIntegerField(null=True, blank=True)
    root_volume_throughput = models.PositiveIntegerField(null=True, blank=True)
    hibernation_capable = models.BooleanField(default=False)
    hourly_rate = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    provider_instance_id = models.CharField(max_length=32, blank=True, db_index=True)
    security_group_id = models.CharField(max_length=32, blank=True)
    public_ip = models.GenericIPAddressField(null=True, blank=True)
    private_ip = models.GenericIPAddressField(null=True, blank=True)
    launch_time = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="TTL: stopped automatically after this.")
    error_message = models.TextField(blank=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    # The ledger's cursor (budgets.ledger): cost before `ledger_through` is in CostEntry rows; from it to
    # now the workspace has been in its current state and is priced on read.
    ledger_through = models.DateTimeField(null=True, blank=True)
    # The current compute run (from a start until the instance stops billing): its start and the seconds
    # already written, for the 60-second minimum AWS bills each time an instance starts.
    run_started_at = models.DateTimeField(null=True, blank=True)
    run_billed_seconds = models.DecimalField(max_digits=16, decimal_places=6, default=Decimal("0"))
    # The sum of the workspace's closed ledger rows (kept by budgets.ledger with the rows, under the row lock):
    # what it has cost is this plus the open interval, read without a query.
    cost_closed = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal("0"))
    # Whether the EBS volume exists (from the instance's launch until its termination): storage is billed.
    volume_billed = models.BooleanField(default=False)
    # What the root volume is billed for (budgets.prices.StorageLine as JSON), priced at launch, and their
    # sum in USD per month (list price).
    storage_lines = models.JSONField(default=list, blank=True)
    storage_monthly_rate = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # The same figures as floats, for ranking a project's top spenders (budgets.reports.top_spenders) without
    # converting every workspace's numerics on each read (PostgreSQL converts numeric to float through text).
    # Written by a PostgreSQL trigger from the columns above on every insert and update (migration 0010), never
    # by Django; not kept elsewhere. Exact figures always come from the numeric columns.
    rank_cost_closed = models.FloatField(null=True, blank=True, editable=False)  # cost_closed
    # The open interval's price per second: compute in a billed state, storage while the volume is billed and
    # the workspace open (not pending or terminated); 0 otherwise. rank_cursor_epoch: ledger_through.
    rank_compute_per_second = models.FloatField(null=True, blank=True, editable=False)
    rank_storage_per_second = models.FloatField(null=True, blank=True, editable=False)
    rank_cursor_epoch = models.FloatField(null=True, blank=True, editable=False)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["project", "state"]),
            models.Index(fields=["state", "expires_at"]),
            # GET /instances pages in (created_at DESC, id) order (keyset paging): one index per way the list
            # narrows, so a page is a range scan from its cursor, never a sort of every visible workspace.
            # The project is carried for the visibility filter: skipping to a page by number reads this index only.
            models.Index(fields=["-created_at", "id"], include=["project"], name="workspace_list_order"),
            models.Index(fields=["project", "-created_at", "id"], name="workspace_list_project_order"),
            # Carries what the count of an owner's workspaces filters on, so that count reads this index only.
            models.Index(
                fields=["owner", "-created_at", "id"], include=["project", "state"], name="workspace_list_owner_order"
            ),
            # What a project's spend is read from without its workspace rows: the open intervals whose cursor is
            # in the last minute (budgets.selectors.open_spend, a range of it) and the ranking of its top spenders
            # (budgets.reports.top_spenders, an index-only scan of every workspace that ever had a cursor).
            models.Index(
                fields=["project", "ledger_through"],
                include=[
                    "id",
                    "state",
                    "hourly_rate",
                    "run_billed_seconds",
                    "storage_monthly_rate",
                    "volume_billed",
                    "created_at",
                    "state_changed_at",
                    "rank_cost_closed",
                    "rank_compute_per_second",
                    "rank_storage_per_second",
                    "rank_cursor_epoch",
                ],
                condition=Q(ledger_through__isnull=False),
                name="workspace_open_cost",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                condition=~Q(state="terminated"),
                name="workspace_unique_live_name_per_org",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StateTransition(models.Model):
    """One row per state change: the cost ledger is computed from these intervals, so never edit them."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.CharField(max_length=255, blank=True)
    instance_type = models.CharField(max_length=32, blank=True)
    hourly_rate = models.DecimalField(
        max_digits=10, decimal_places=4, help_text="Compute rate billed while in to_state (0 when not billed)."
    )
    # When Carrel observed the change.
    created_at = models.DateTimeField(default=timezone.now)
    # When the cloud says it happened (the state-transition reason's timestamp), if it said.
    cloud_at = models.DateTimeField(null=True, blank=True)
    # The instance's LaunchTime as the cloud reported it with this change (into running): billing starts there.
    cloud_launch_time = models.DateTimeField(null=True, blank=True)
    # The time the ledger uses: the cloud's where it is plausible (after the previous change, not after
    # the observation), else the observation.
    effective_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["workspace", "created_at"]),
            # The few transitions into or out of rest (budgets.reports.rested_workspaces: what resting saved).
            models.Index(
                fields=["created_at"],
                condition=Q(from_state__in=["hibernated", "stopped"]) | Q(to_state__in=["hibernated", "stopped"]),
                name="workspace_transition_resting",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id}: {self.from_state or '∅'} → {self.to_state}"


class ProvisionJobQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "ProvisionJobQuerySet":
        return self.filter(workspace__in=Workspace.objects.visible_to(user))


class ProvisionJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.CharField(primary_key=True, max_length=32, default=new_job_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=16, default="launch")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    steps = models.JSONField(default=list)
    attempts = models.PositiveIntegerField(default=0)
    # What the job changes (e.g. a resize's instance type).
    parameters = models.JSONField(default=dict, blank=True)
    # A live worker keeps pushing this forward (heartbeats, scheduled retries); once it has passed, the
    # worker is presumed dead and the launch sweep resumes the job.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ProvisionJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        # The list's launch_progress reads each workspace's latest job (workspaces.selectors.workspace_list_rows).
        indexes = [models.Index(fields=["workspace", "-created_at"], name="job_latest_per_workspace")]

    def __str__(self) -> str:
        return f"{self.kind} {self.workspace_id} ({self.status}, {self.progress}%)"


class FirewallRule(models.Model):
    """An ingress rule on the workspace's security group; the database is the desired state."""

    class Protocol(models.TextChoices):
        TCP = "tcp", "TCP"
        UDP = "udp", "UDP"
        ICMP = "icmp", "ICMP"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="firewall_rules")
    position = models.PositiveIntegerField()
    cidr = models.CharField(max_length=64)
    protocol = models.CharField(max_length=8, choices=Protocol.choices, default=Protocol.TCP)
    from_port = models.PositiveIntegerField()
    to_port = models.PositiveIntegerField()
    description = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    objects = models.Manager()

    class Meta:
        ordering = ["workspace_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "position"], name="firewall_rule_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.protocol} {self.from_port}-{self.to_port} from {self.cidr}"


class OrphanedInstance(models.Model):
    """An instance tagged by Carrel with no live workspace behind it, as found by the reconciler."""

    cloud_account = models.ForeignKey(CloudAccount, on_delete=models.CASCADE, related_name="orphans")
    instance_id = models.CharField(max_length=32)
    workspace_tag = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    terminated_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager()

    class Meta:
        ordering = ["-first_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["cloud_account", "instance_id"], name="orphan_unique_instance"),
        ]

    def __str__(self) -> str:
        return self.instance_id
