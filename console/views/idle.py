"""Idle detection on the console's pages: the warning banner (home and workspace pages) with its snooze button,
and the workspace page's activity (the latest measured usage), idle settings and idle history.

What is shown comes from the same code the API answers with (idle.serializers' `verdict_of` and `usage_of`,
idle.api.policies' `warnings_for`, idle.selectors' `idle_history`), in a constant number of queries."""

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from console.templatetags.console import duration
from idle.api.policies import warnings_for
from idle.models import IdleAction
from idle.profiles import profiles_for
from idle.selectors import idle_history
from idle.serializers import format_minutes, state_of, usage_of, verdict_of
from workspaces.models import Workspace, WorkspaceState

HISTORY_SHOWN = 20
ACTION_WORDS = {IdleAction.HIBERNATE: "hibernated", IdleAction.STOP: "stopped"}


def _bar(value: float | None) -> dict:
    if value is None:
        return {"value": None, "width": "0%"}
    return {"value": value, "width": f"{max(0.0, min(100.0, value)):.1f}%"}


def _when(verdict: dict, now) -> str:
    at = verdict["action_at"]
    if at is None or at <= now:
        return "any moment now"
    return f"in {duration(at - now)} ({timezone.localtime(at).strftime('%H:%M')})"


def home_warnings(user) -> list[dict]:
    """The person's own running workspaces under an idle warning now, each with what will happen and when."""
    now = timezone.now()
    shown = []
    for state in warnings_for(user, owner_only=True):
        verdict = verdict_of(state.workspace, state, now)
        shown.append(
            {
                "workspace": state.workspace,
                "verdict": verdict,
                "happens": ACTION_WORDS.get(verdict["action"], verdict["action"]),
                "can_snooze": True,  # their own workspace
                "when": _when(verdict, now),
            }
        )
    return shown


def idle_panel(request, workspace: Workspace, *, manage: bool) -> dict:
    """The workspace page's idle parts: banner, activity, settings (with the form for those who manage it) and
    history."""
    now = timezone.now()
    state = state_of(workspace)
    verdict = verdict_of(workspace, state, now)
    usage = usage_of(state)
    if usage is not None:
        measured = usage["measured_at"]
        usage["measured"] = parse_datetime(measured) if isinstance(measured, str) else measured
        usage["cores"] = [_bar(value) for value in usage["cpu_percent"]]
        usage["gpus"] = [_bar(value) for value in usage["gpu_percent"]]
        usage["memory"] = _bar(usage["memory_percent"])
    running = workspace.state == WorkspaceState.RUNNING
    happens = ACTION_WORDS.get(verdict["action"], verdict["action"])
    history = list(idle_history(user=request.user, workspace=workspace)[:HISTORY_SHOWN])
    for event in history:
        event.idle_duration = format_minutes(event.idle_seconds)
        event.saved = getattr(event, "estimated_savings", None)
    live = workspace.state not in (WorkspaceState.TERMINATING, WorkspaceState.TERMINATED)
    return {
        "idle": state,
        "idle_set_up": state.pk is not None,
        "idle_verdict": verdict,
        "idle_happens": happens,
        "idle_warning": (
            {
                "workspace": workspace,
                "verdict": verdict,
                "happens": happens,
                "can_snooze": manage,
                "when": _when(verdict, now),
            }
            if running and state.enabled and verdict["warned_at"] is not None
            else None
        ),
        "idle_usage": usage,
        "idle_history": history,
        "idle_history_limit": HISTORY_SHOWN,
        "can_configure_idle": manage and live,
        "idle_profiles": profiles_for(organization_ids=[workspace.organization_id]) if manage and live else [],
        "idle_actions": IdleAction.choices,
    }
