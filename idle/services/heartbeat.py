"""A heartbeat from a workspace's agent: what it measured becomes the workspace's latest usage and moves its
idle state (idle.services.reports.report_changes, the same rule the CloudWatch fallback feeds)."""

from datetime import UTC, datetime

from django.utils import timezone

from idle.models import AgentToken, SignalSource, WorkspaceIdle
from idle.services.reports import report_changes
from platform_site.errors import Conflict, NotFound

# The fields report_changes reads besides the thresholds: a concurrent report or a reconfiguration between
# the read and the write makes the conditional update miss, and the report is judged again on the new row.
_READ_FIELDS = ("signal_source", "observed_since", "last_observed_at", "last_active_at", "configured_at")
ATTEMPTS = 5

SAMPLE_KEYS = (
    "cpu_percent",
    "memory_percent",
    "network_bytes_per_s",
    "disk_bytes_per_s",
    "gpu_percent",
    "sessions",
    "last_input_at",
    "busy",
    "busy_reasons",
    "agent_version",
)


def heartbeat_sample(payload: dict, *, at: datetime) -> dict:
    """The stored form of a validated heartbeat (WorkspaceIdle.last_sample): every key present, times as ISO."""
    sample: dict = {key: payload.get(key) for key in SAMPLE_KEYS}
    for key in ("cpu_percent", "gpu_percent", "busy_reasons"):
        sample[key] = list(sample[key] or [])
    sample["busy"] = bool(sample["busy"])
    sample["agent_version"] = sample["agent_version"] or ""
    last_input = payload.get("last_input_at")
    sample["last_input_at"] = _iso(min(last_input, at)) if last_input is not None else None
    sample["measured_at"] = _iso(at)
    return sample


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def heartbeat_record(*, token: AgentToken, payload: dict, now: datetime | None = None) -> WorkspaceIdle:
    """Record one heartbeat (a validated payload, idle.api.agent.HeartbeatSerializer) for the token's workspace
    only, measured at `now` (the server's clock: the agent's may be wrong). Returns the updated row.

    A conditional update on the fields the report was judged against: a concurrent heartbeat or a configure
    in between makes it miss, and the report is judged again on the fresh row."""
    at = now or timezone.now()
    sample = heartbeat_sample(payload, at=at)
    last_input = payload.get("last_input_at")
    for _ in range(ATTEMPTS):
        state: WorkspaceIdle | None = WorkspaceIdle.objects.filter(pk=token.workspace_id).first()
        if state is None:
            raise NotFound("This workspace has no idle detection state.", code="INSTANCE_NOT_FOUND")
        changes = report_changes(state, source=SignalSource.AGENT, at=at, sample=sample, last_input_at=last_input)
        guard = {field: getattr(state, field) for field in _READ_FIELDS}
        if WorkspaceIdle.objects.filter(pk=state.pk, **guard).update(**changes):
            for field, value in changes.items():
                setattr(state, field, value)
            return state
    raise Conflict("The workspace's idle state kept changing; send the next heartbeat.", code="INVALID_STATE")
