"""The idle API's bodies: input serializers (strict fields, the services' bounds) and the shapes it answers with.

`idle_body` is what GET /idle/instances/{name} answers (settings, signal state, verdict, latest usage); the
sysinfo route and the console's workspace page show the same `usage_of` and `verdict_of`."""

from datetime import datetime, timedelta

from django.utils import timezone
from rest_framework import serializers

from idle.decision import judge, quiet_since
from idle.models import IdleAction, WorkspaceIdle
from idle.profiles import BUILTIN_PROFILES, DEFAULT_PROFILE, THRESHOLD_FIELDS, Profile
from idle.services.configure import MAX_WARNING_MINUTES, MAX_WINDOW_MINUTES
from platform_site.api import fields as strict
from workspaces.models import Workspace, WorkspaceState

# --- Input -----------------------------------------------------------------------------------------------------


def _minutes(**kwargs):
    return strict.IntegerField(min_value=1, max_value=MAX_WINDOW_MINUTES, **kwargs)


def _percent(help_text: str):
    return strict.FloatField(min_value=0, max_value=100, required=False, allow_null=True, help_text=help_text)


def _rate(help_text: str):
    return strict.FloatField(min_value=0, max_value=1e15, required=False, allow_null=True, help_text=help_text)


class IdleThresholdsInputSerializer(serializers.Serializer):
    """The thresholds a profile or a workspace sets; a threshold that is null (or left out) is not judged."""

    cpu_threshold = _percent("Percent, judged on the busiest core.")
    memory_threshold = _percent("Percent of memory in use.")
    network_threshold = _rate("Bytes per second, in plus out.")
    disk_threshold = _rate("Bytes per second, read plus write.")
    gpu_threshold = _percent("Percent, judged on the busiest GPU.")


class IdleProfileCreateSerializer(IdleThresholdsInputSerializer):
    organization = strict.CharField(
        required=False, help_text="The organization's id; needed when you belong to several."
    )
    name = strict.CharField(max_length=64)
    description = strict.CharField(max_length=255, required=False, allow_blank=True, default="")
    idle_threshold_minutes = _minutes(help_text="The window every signal must stay quiet for.")
    action = strict.ChoiceField(choices=IdleAction.values, default=IdleAction.HIBERNATE)
    warning_minutes = strict.IntegerField(min_value=1, max_value=MAX_WARNING_MINUTES, default=10)


class IdleConfigureSerializer(IdleThresholdsInputSerializer):
    enabled = strict.BooleanField(required=False)
    profile = strict.CharField(
        required=False, max_length=64, help_text="A profile's name: its thresholds replace the workspace's."
    )
    idle_threshold_minutes = _minutes(required=False)
    action = strict.ChoiceField(choices=IdleAction.values, required=False)
    warning_minutes = strict.IntegerField(min_value=1, max_value=MAX_WARNING_MINUTES, required=False)

    def validate(self, attrs: dict) -> dict:
        # Only what the body names changes; a threshold named with null is no longer judged.
        return {key: value for key, value in attrs.items() if key in self.initial_data}


class ProjectIdlePolicyInputSerializer(serializers.Serializer):
    enabled = strict.BooleanField(default=True)
    profile = strict.CharField(max_length=64, default=DEFAULT_PROFILE)
    idle_threshold_minutes = _minutes(required=False, allow_null=True, help_text="Overrides the profile's window.")
    action = strict.ChoiceField(
        choices=["", *IdleAction.values], required=False, allow_blank=True, help_text="Overrides the profile's."
    )


class IdleLaunchSerializer(serializers.Serializer):
    """A launch's idle settings; what is left out comes from the project's default, then the template's."""

    enabled = strict.BooleanField(required=False)
    profile = strict.CharField(required=False, max_length=64)
    idle_threshold_minutes = _minutes(required=False)
    action = strict.ChoiceField(choices=IdleAction.values, required=False)


# --- Output ----------------------------------------------------------------------------------------------------


class IdleThresholdsSerializer(serializers.Serializer):
    """The thresholds a profile or a workspace judges by (null: not judged)."""

    cpu_threshold = strict.FloatField(allow_null=True)
    memory_threshold = strict.FloatField(allow_null=True)
    network_threshold = strict.FloatField(allow_null=True)
    disk_threshold = strict.FloatField(allow_null=True)
    gpu_threshold = strict.FloatField(allow_null=True)


class IdleProfileSerializer(IdleThresholdsSerializer):
    name = strict.CharField()
    description = strict.CharField()
    idle_threshold_minutes = strict.IntegerField()
    action = strict.CharField()
    warning_minutes = strict.IntegerField()
    builtin = strict.BooleanField()
    organization = strict.CharField(source="organization_id", allow_null=True)


class IdleUsageSerializer(serializers.Serializer):
    source = strict.CharField(help_text="agent (the workspace's agent) or cloudwatch (the fallback).")
    measured_at = strict.DateTimeField(allow_null=True)
    cpu_percent = serializers.ListField(child=strict.FloatField(), help_text="Per core (agent), or the instance's.")
    memory_percent = strict.FloatField(allow_null=True)
    network_bytes_per_s = strict.FloatField(allow_null=True)
    disk_bytes_per_s = strict.FloatField(allow_null=True)
    gpu_percent = serializers.ListField(child=strict.FloatField(), help_text="Per GPU.")
    sessions = strict.IntegerField(allow_null=True)
    last_input_at = strict.DateTimeField(allow_null=True)
    busy = strict.BooleanField()
    busy_reasons = serializers.ListField(child=strict.CharField())
    agent_version = strict.CharField(allow_null=True)


class IdleVerdictSerializer(serializers.Serializer):
    idle = strict.BooleanField(help_text="Every signal has been quiet for the whole window.")
    idle_for_seconds = strict.IntegerField(allow_null=True, help_text="Null: no usable data (never idle).")
    why_not = strict.CharField(help_text="What keeps it from being idle; empty when it is.")
    active_reasons = serializers.ListField(child=strict.CharField(), help_text="Why the latest report was busy.")
    warned_at = strict.DateTimeField(allow_null=True)
    snoozed_until = strict.DateTimeField(allow_null=True)
    action = strict.CharField(help_text="What happens when idle: hibernate, or stop where it cannot hibernate.")
    action_at = strict.DateTimeField(allow_null=True, help_text="When it happens if every signal stays quiet.")


class IdleSettingsSerializer(IdleThresholdsSerializer):
    enabled = strict.BooleanField()
    profile = strict.CharField()
    idle_threshold_minutes = strict.IntegerField()
    action = strict.CharField()
    warning_minutes = strict.IntegerField()
    configured_at = strict.DateTimeField(allow_null=True)


class IdleStateSerializer(serializers.Serializer):
    name = strict.CharField()
    workspace_id = strict.CharField()
    state = strict.CharField()
    settings = IdleSettingsSerializer()
    signal_source = strict.CharField()
    observed_since = strict.DateTimeField(allow_null=True)
    last_observed_at = strict.DateTimeField(allow_null=True)
    last_active_at = strict.DateTimeField(allow_null=True)
    verdict = IdleVerdictSerializer()
    usage = IdleUsageSerializer(allow_null=True)


class IdleWarningSerializer(serializers.Serializer):
    instance_name = strict.CharField()
    workspace_id = strict.CharField()
    project = strict.CharField()
    warned_at = strict.DateTimeField()
    action = strict.CharField()
    action_at = strict.DateTimeField(allow_null=True)
    idle_for_seconds = strict.IntegerField(allow_null=True)
    snooze = strict.CharField(help_text="POST here to put the action off by an hour.")


class IdleHistorySerializer(serializers.Serializer):
    id = strict.CharField()
    instance_name = strict.CharField(source="workspace.name")
    workspace_id = strict.CharField()
    project = strict.CharField(source="project_id")
    action = strict.CharField(source="kind", help_text="warned, snoozed, hibernate or stop.")
    trigger_time = strict.DateTimeField(source="created_at")
    idle_duration = serializers.SerializerMethodField()
    idle_seconds = strict.IntegerField()
    profile = strict.CharField()
    hourly_rate = strict.DecimalField(max_digits=10, decimal_places=4, coerce_to_string=False)
    estimated_savings = serializers.SerializerMethodField(
        help_text="USD not spent: the hourly rate until the workspace next started (or now, or its TTL). "
        "Null for warnings and snoozes."
    )
    detail = strict.CharField()
    actor = serializers.SerializerMethodField()

    def get_idle_duration(self, event) -> str:
        return format_minutes(event.idle_seconds)

    def get_estimated_savings(self, event) -> float | None:
        savings = getattr(event, "estimated_savings", None)
        return None if savings is None else float(round(savings, 2))

    def get_actor(self, event) -> str | None:
        return event.actor.email if event.actor_id else None


class ProjectIdlePolicySerializer(serializers.Serializer):
    project_id = strict.CharField()
    set = strict.BooleanField(help_text="False: the project has no default; new workspaces follow their template.")
    enabled = strict.BooleanField()
    profile = strict.CharField()
    idle_threshold_minutes = strict.IntegerField(allow_null=True)
    action = strict.CharField()
    updated_by = strict.CharField(allow_null=True)
    updated_at = strict.DateTimeField(allow_null=True)


# --- Shaping ---------------------------------------------------------------------------------------------------


def format_minutes(seconds: int | float | None) -> str:
    """25 minutes, 1 hour 5 minutes (the seed's `idle_duration`)."""
    minutes = int(seconds or 0) // 60
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def profile_body(profile: Profile) -> dict:
    return IdleProfileSerializer(profile).data


def state_of(workspace: Workspace) -> WorkspaceIdle:
    """The workspace's row (prefetched or not); an unsaved, disabled one for a workspace that has none (launched
    before idle detection)."""
    try:
        return workspace.idle
    except WorkspaceIdle.DoesNotExist:
        standard = BUILTIN_PROFILES[DEFAULT_PROFILE]
        return WorkspaceIdle(
            workspace=workspace, enabled=False, profile=standard.name, configured_at=None, **standard.thresholds()
        )


def effective_action(workspace: Workspace, state: WorkspaceIdle) -> str:
    if state.action == IdleAction.HIBERNATE and not workspace.hibernation_capable:
        return IdleAction.STOP
    return state.action


def _when_acting(state: WorkspaceIdle, since: datetime, now: datetime) -> datetime:
    """When the action comes if every signal stays quiet from now on (decision.judge's timing)."""
    window = timedelta(minutes=state.idle_threshold_minutes)
    warning = timedelta(minutes=state.warning_minutes)
    warned = state.warned_at if state.warned_at is not None and state.warned_at >= since else None
    if warned is None:
        warned = max(since + max(window - warning, window / 2), now)
        if state.snoozed_until is not None and state.snoozed_until > warned:
            warned = state.snoozed_until
    return max(since + window, warned + warning)


def verdict_of(workspace: Workspace, state: WorkspaceIdle, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    body = {
        "idle": False,
        "idle_for_seconds": None,
        "why_not": "",
        "active_reasons": list(state.active_reasons or []),
        "warned_at": state.warned_at,
        "snoozed_until": state.snoozed_until if state.snoozed_until and state.snoozed_until > now else None,
        "action": effective_action(workspace, state),
        "action_at": None,
    }
    if state.pk is None or state.configured_at is None:
        return {**body, "why_not": "not set up"}
    if workspace.state != WorkspaceState.RUNNING:
        return {**body, "why_not": "not running", "warned_at": None}
    verdict = judge(state, now=now)
    if verdict.clear_warning:
        body["warned_at"] = None
    body["why_not"] = verdict.why_not
    body["idle"] = verdict.why_not == ""
    if verdict.idle_for is not None:
        body["idle_for_seconds"] = int(verdict.idle_for.total_seconds())
        since = quiet_since(state)
        if since is not None and state.enabled:
            body["action_at"] = _when_acting(state, since, now)
    return body


def _floats(values) -> list[float]:
    return [float(value) for value in values or [] if isinstance(value, int | float) and not isinstance(value, bool)]


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def usage_of(state: WorkspaceIdle) -> dict | None:
    """The latest measured usage, or None when nothing was ever measured."""
    sample = state.last_sample or {}
    if not sample or not state.signal_source:
        return None
    sessions = sample.get("sessions")
    return {
        "source": state.signal_source,
        "measured_at": sample.get("measured_at") or state.last_observed_at,
        "cpu_percent": _floats(sample.get("cpu_percent")),
        "memory_percent": _number(sample.get("memory_percent")),
        "network_bytes_per_s": _number(sample.get("network_bytes_per_s")),
        "disk_bytes_per_s": _number(sample.get("disk_bytes_per_s")),
        "gpu_percent": _floats(sample.get("gpu_percent")),
        "sessions": sessions if isinstance(sessions, int) and not isinstance(sessions, bool) else None,
        "last_input_at": sample.get("last_input_at"),
        "busy": bool(sample.get("busy")),
        "busy_reasons": [str(reason) for reason in sample.get("busy_reasons") or []],
        "agent_version": sample.get("agent_version"),
    }


def settings_of(state: WorkspaceIdle) -> dict:
    return {
        "enabled": state.enabled,
        "profile": state.profile,
        **{field: getattr(state, field) for field in THRESHOLD_FIELDS},
        "configured_at": state.configured_at,
    }


def idle_body(workspace: Workspace, state: WorkspaceIdle, now: datetime | None = None) -> dict:
    return IdleStateSerializer(
        {
            "name": workspace.name,
            "workspace_id": workspace.pk,
            "state": workspace.state,
            "settings": settings_of(state),
            "signal_source": state.signal_source,
            "observed_since": state.observed_since,
            "last_observed_at": state.last_observed_at,
            "last_active_at": state.last_active_at,
            "verdict": verdict_of(workspace, state, now),
            "usage": usage_of(state),
        }
    ).data
