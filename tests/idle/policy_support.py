"""Workspaces with idle state for the policies API and console tests: written as a launch leaves them (no cloud),
with their WorkspaceIdle row from the launch's own setup, and signal state set as reports would leave it."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from idle.models import WorkspaceIdle
from idle.services.setup import idle_setup_at_launch
from workspaces.models import ProvisionJob, StateTransition, Workspace

SIXTEEN_QUIET_CORES = [0.5] * 16


def idle_workspace(project, owner, name: str = "idle-box", *, state: str = "running", **idle) -> Workspace:
    """A workspace with the idle settings a launch gives it (`idle`: the launch's own request)."""
    workspace = Workspace.objects.create(
        organization=project.organization,
        project=project,
        owner=owner,
        name=name,
        state=state,
        template_name="Ubuntu 24.04 Base",
        size="S",
        instance_type="t3.medium",
        region="us-east-1",
        hourly_rate=Decimal("0.0416"),
        hibernation_capable=True,
        created_at=timezone.now() - timedelta(hours=3),
    )
    StateTransition.objects.create(workspace=workspace, from_state="launching", to_state=state, hourly_rate=0)
    ProvisionJob.objects.create(workspace=workspace, status="succeeded", progress=100)
    idle_setup_at_launch(workspace=workspace, template_defaults=None, requested=idle or None)
    return workspace


def quiet_for(workspace: Workspace, minutes: float, *, now: datetime | None = None, **sample) -> WorkspaceIdle:
    """The agent has reported every minute for `minutes`, every report quiet (as report_changes leaves it)."""
    now = now or timezone.now()
    since = now - timedelta(minutes=minutes)
    measured = {
        "cpu_percent": SIXTEEN_QUIET_CORES,
        "memory_percent": 12.5,
        "network_bytes_per_s": 80.0,
        "disk_bytes_per_s": 512.0,
        "gpu_percent": [],
        "sessions": 0,
        "busy": False,
        "busy_reasons": [],
        "last_input_at": None,
        "agent_version": "1.0",
        "measured_at": now.isoformat(),
        **sample,
    }
    WorkspaceIdle.objects.filter(workspace=workspace).update(
        configured_at=since - timedelta(minutes=1),
        signal_source="agent",
        observed_since=since,
        last_observed_at=now,
        last_active_at=None,
        active_reasons=[],
        last_sample=measured,
    )
    return WorkspaceIdle.objects.get(workspace=workspace)


def warned(workspace: Workspace, minutes_ago: float = 2) -> WorkspaceIdle:
    """The sweep's warning, `minutes_ago`."""
    WorkspaceIdle.objects.filter(workspace=workspace).update(warned_at=timezone.now() - timedelta(minutes=minutes_ago))
    return WorkspaceIdle.objects.get(workspace=workspace)
