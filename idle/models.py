"""Idle detection: profiles, each workspace's policy and what its signals last said, agent tokens, and the
record of every warning, snooze and action."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from platform_site.ids import make_id
from platform_site.tenancy import ScopedQuerySet


class IdleAction(models.TextChoices):
    HIBERNATE = "hibernate", "Hibernate"
    STOP = "stop", "Stop"


class Thresholds(models.Model):
    """What counts as idle. A threshold left empty is not judged; every one that is set must stay under it."""

    idle_threshold_minutes = models.PositiveIntegerField(help_text="The window every signal must stay quiet for.")
    action = models.CharField(max_length=16, choices=IdleAction.choices, default=IdleAction.HIBERNATE)
    cpu_threshold = models.FloatField(null=True, blank=True, help_text="Percent, judged on the busiest core.")
    memory_threshold = models.FloatField(null=True, blank=True, help_text="Percent of memory in use.")
    network_threshold = models.FloatField(null=True, blank=True, help_text="Bytes per second, in plus out.")
    disk_threshold = models.FloatField(null=True, blank=True, help_text="Bytes per second, read plus write.")
    gpu_threshold = models.FloatField(null=True, blank=True, help_text="Percent, judged on the busiest GPU.")
    warning_minutes = models.PositiveIntegerField(
        default=10, help_text="The warning comes this long before the action (never less)."
    )

    class Meta:
        abstract = True


def new_idle_profile_id() -> str:
    return make_id("idlp")


class IdleProfileQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "IdleProfileQuerySet":
        from accounts.models import Membership

        return self.filter(organization_id__in=Membership.objects.filter(user=user).values("organization_id"))


class IdleProfile(Thresholds):
    """An organization's own profile (the built-in ones live in idle/profiles.py)."""

    id = models.CharField(primary_key=True, max_length=32, default=new_idle_profile_id, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="idle_profiles")
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    objects = IdleProfileQuerySet.as_manager()

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="idle_profile_unique_name_per_org"),
        ]

    def __str__(self) -> str:
        return self.name


class ProjectIdlePolicy(models.Model):
    """The project-wide default its owners set: applied at launch over the template's idle defaults."""

    project = models.OneToOneField(
        "projects.Project", primary_key=True, on_delete=models.CASCADE, related_name="idle_policy"
    )
    enabled = models.BooleanField(default=True)
    profile = models.CharField(max_length=64)
    idle_threshold_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Overrides the profile's.")
    action = models.CharField(
        max_length=16, choices=IdleAction.choices, blank=True, help_text="Overrides the profile's."
    )
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = models.Manager()

    def __str__(self) -> str:
        return f"{self.project_id}: {self.profile}"


class SignalSource(models.TextChoices):
    NONE = "", "No data"
    AGENT = "agent", "Workspace agent"
    CLOUDWATCH = "cloudwatch", "CloudWatch"


class WorkspaceIdleQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "WorkspaceIdleQuerySet":
        from workspaces.models import Workspace

        return self.filter(workspace__in=Workspace.objects.visible_to(user))


class WorkspaceIdle(Thresholds):
    """One workspace's idle policy (resolved from a profile when configured) and the state of its signals.

    Each signal report (a heartbeat, or a CloudWatch fetch) is judged against the thresholds when it arrives
    (idle.decision.active_reasons) and moves `last_active_at`; the sweep then needs only this row to decide.
    Changing the thresholds restarts the window (`configured_at`), so samples judged by the old ones never
    count towards idleness under the new ones."""

    workspace = models.OneToOneField(
        "workspaces.Workspace", primary_key=True, on_delete=models.CASCADE, related_name="idle"
    )
    enabled = models.BooleanField(default=True)
    profile = models.CharField(max_length=64, blank=True)
    configured_at = models.DateTimeField(default=timezone.now)
    # The signals: where they come from, since when without a gap, the latest, and the last one that was busy.
    signal_source = models.CharField(max_length=16, choices=SignalSource.choices, blank=True, default="")
    observed_since = models.DateTimeField(null=True, blank=True)
    last_observed_at = models.DateTimeField(null=True, blank=True)
    last_active_at = models.DateTimeField(null=True, blank=True)
    active_reasons = models.JSONField(default=list, blank=True, help_text="Why the latest report was not idle.")
    last_sample = models.JSONField(default=dict, blank=True, help_text="The latest measured usage.")
    # The warning in force (null: none) and the snooze.
    warned_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)

    objects = WorkspaceIdleQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["enabled", "last_observed_at"])]

    def __str__(self) -> str:
        return f"{self.workspace_id}: {self.profile or 'custom'}"


class AgentToken(models.Model):
    """The workspace agent's credential: good only for posting that workspace's heartbeat.

    The secret is never stored: it is derived from the nonce with the server's secret key (so a retried launch
    writes the same user data), and only its SHA-256 is kept to look it up."""

    workspace = models.OneToOneField(
        "workspaces.Workspace", primary_key=True, on_delete=models.CASCADE, related_name="agent_token"
    )
    nonce = models.CharField(max_length=64)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager()

    def __str__(self) -> str:
        return f"agent token of {self.workspace_id}"


def new_idle_event_id() -> str:
    return make_id("idle")


class IdleEventQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "IdleEventQuerySet":
        from projects.models import Project

        return self.filter(project__in=Project.objects.visible_to(user))


class IdleEvent(models.Model):
    """One row per warning, snooze and action taken because a workspace was idle (GET /idle/history)."""

    class Kind(models.TextChoices):
        WARNED = "warned", "Warned"
        SNOOZED = "snoozed", "Snoozed"
        HIBERNATED = "hibernate", "Hibernated"
        STOPPED = "stop", "Stopped"

    id = models.CharField(primary_key=True, max_length=32, default=new_idle_event_id, editable=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="idle_events")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="idle_events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    profile = models.CharField(max_length=64, blank=True)
    # How long every signal had been quiet when this happened.
    idle_seconds = models.PositiveIntegerField(default=0)
    # The compute rate the action stopped paying (the ledger's rate in force); savings run from `created_at`
    # until the workspace starts again (or its TTL would have stopped it).
    hourly_rate = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    detail = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    objects = IdleEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"]),
            models.Index(fields=["workspace", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id}: {self.kind}"
