"""Workspaces with an agent token, for the agent and heartbeat tests.

`agent_workspace` writes a workspace as a finished launch leaves it (no cloud) and runs the launch's own idle
setup, which issues the agent token; `agent_client` posts with that token as the agent does."""

import sys
from decimal import Decimal
from pathlib import Path

from django.utils import timezone
from rest_framework.test import APIClient

from idle.models import AgentToken, WorkspaceIdle
from idle.services.setup import idle_setup_at_launch
from idle.tokens import agent_token_secret
from workspaces.models import ProvisionJob, StateTransition, Workspace

AGENT_SCRIPT = Path(__file__).resolve().parents[2] / "idle" / "agent" / "carrel_agent.py"
PYTHON = sys.executable

QUIET = {
    "cpu_percent": [0.5] * 16,
    "memory_percent": 12.5,
    "network_bytes_per_s": 80.0,
    "disk_bytes_per_s": 512.0,
    "gpu_percent": [],
    "sessions": 0,
    "last_input_at": None,
    "busy": False,
    "busy_reasons": [],
    "agent_version": "1.0.0",
}


def agent_workspace(project, owner, name: str = "agent-box", *, state: str = "running", **idle) -> Workspace:
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
        created_at=timezone.now(),
    )
    StateTransition.objects.create(workspace=workspace, from_state="launching", to_state=state, hourly_rate=0)
    ProvisionJob.objects.create(workspace=workspace, status="succeeded", progress=100)
    idle_setup_at_launch(workspace=workspace, template_defaults=None, requested=idle or None)
    return workspace


def secret_of(workspace: Workspace) -> str:
    return agent_token_secret(AgentToken.objects.get(workspace=workspace))


def agent_client(workspace: Workspace | None = None, *, secret: str | None = None) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret or secret_of(workspace)}")
    return client


def heartbeat(client: APIClient, **changes):
    return client.post("/api/v1/agent/heartbeat", {**QUIET, **changes}, format="json")


def idle_row(workspace: Workspace) -> dict:
    """Every column of the workspace's idle row, to compare before and after."""
    return WorkspaceIdle.objects.filter(pk=workspace.pk).values().get()
