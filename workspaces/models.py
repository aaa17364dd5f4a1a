from django.conf import settings
from django.db import models
from django.utils import timezone

from platform_site.ids import new_workspace_id
from platform_site.tenancy import ScopedQuerySet


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
    TERMINATING = "terminating", "Terminating"
    TERMINATED = "terminated", "Terminated"
    ERROR = "error", "Error"


# A workspace is live until it is terminated: stopped and hibernated machines still hold volumes.
LIVE_STATES = frozenset(WorkspaceState.values) - {WorkspaceState.TERMINATED}


class WorkspaceQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "WorkspaceQuerySet":
        from projects.models import Project

        return self.filter(project__in=Project.objects.visible_to(user))

    def live(self) -> "WorkspaceQuerySet":
        return self.filter(state__in=LIVE_STATES)


class Workspace(models.Model):
    """A cloud workstation inside a project. The lifecycle and provisioning arrive with the workspace issue."""

    id = models.CharField(primary_key=True, max_length=32, default=new_workspace_id, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="workspaces")
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="workspaces")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="workspaces")
    name = models.CharField(max_length=63)
    state = models.CharField(max_length=16, choices=WorkspaceState.choices, default=WorkspaceState.PENDING)
    created_at = models.DateTimeField(default=timezone.now)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "state"])]

    def __str__(self) -> str:
        return self.name
