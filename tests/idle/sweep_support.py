"""Helpers for the sweep, action and scenario tests: workspaces with idle state, and heartbeats posted through
`POST /api/v1/agent/heartbeat` with the workspace's own agent token at a controlled time."""

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from idle.models import AgentToken, WorkspaceIdle
from idle.services.setup import idle_setup_at_launch
from idle.services.sweep import idle_sweep
from idle.tokens import agent_token_secret
from workspaces.models import StateTransition, Workspace

QUIET = {
    "cpu_percent": [0.5] * 16,
    "memory_percent": 6.0,  # under every built-in profile's threshold (batch: 10%)
    "network_bytes_per_s": 80.0,
    "disk_bytes_per_s": 512.0,
    "gpu_percent": [],
    "sessions": 0,
    "busy": False,
    "busy_reasons": [],
    "last_input_at": None,
    "agent_version": "1.0",
}


def quiet(**overrides) -> dict:
    return {**QUIET, **overrides}


def make_workspace(
    project,
    owner,
    name: str,
    *,
    state: str = "running",
    hibernation_capable: bool = True,
    configured_at: datetime | None = None,
    cloud_account=None,
    instance_id: str = "",
    idle: dict | None = None,
) -> Workspace:
    """A workspace row as a launch leaves it (no cloud unless `cloud_account`/`instance_id`), with the idle state
    and agent token the launch's own setup gives it; its policy configured at `configured_at`."""
    created = configured_at or timezone.now() - timedelta(hours=3)
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
        hibernation_capable=hibernation_capable,
        cloud_account=cloud_account,
        provider_instance_id=instance_id,
        created_at=created,
        state_changed_at=created,
    )
    StateTransition.objects.create(
        workspace=workspace, from_state="launching", to_state=state, hourly_rate=0, created_at=created
    )
    idle_setup_at_launch(workspace=workspace, template_defaults=None, requested=idle)
    WorkspaceIdle.objects.filter(pk=workspace.pk).update(configured_at=created)
    return workspace


def agent_client(workspace: Workspace) -> APIClient:
    client = APIClient()
    secret = agent_token_secret(AgentToken.objects.get(workspace=workspace))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def beat(workspace: Workspace, sample: dict | None = None, *, client: APIClient | None = None) -> dict:
    """One heartbeat through the API, now (the caller controls the clock)."""
    response = (client or agent_client(workspace)).post("/api/v1/agent/heartbeat", sample or QUIET, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def timeline(
    start: datetime,
    end: datetime,
    *,
    every: timedelta = timedelta(minutes=2),
    samples: dict[Workspace, dict | Callable[[datetime], dict | None]],
    sweep: bool = True,
    at_each: Callable[[datetime], None] | None = None,
) -> list:
    """From `start` to `end` (exclusive) every `every`, with the clock there: each workspace's agent posts its
    sample (a callable may vary it, or return None for no heartbeat), then the sweep runs. The sweeps' results."""
    clients = {workspace: agent_client(workspace) for workspace in samples}
    results = []
    moment = start
    with time_machine.travel(start, tick=False) as traveller:
        while moment < end:
            traveller.move_to(moment)
            for workspace, sample in samples.items():
                body = sample(moment) if callable(sample) else sample
                if body is not None:
                    beat(workspace, body, client=clients[workspace])
            if sweep:
                results.append(idle_sweep())
            if at_each is not None:
                at_each(moment)
            moment += every
    return results


def events_of(workspace: Workspace) -> list[str]:
    return list(workspace.idle_events.order_by("created_at", "id").values_list("kind", flat=True))


def ids(workspaces: Iterable[Workspace]) -> set[str]:
    return {workspace.pk for workspace in workspaces}
