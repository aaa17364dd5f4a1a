"""The rule: when a workspace is idle, when it is warned, and when it is acted on. One home for it.

A report (a heartbeat, or a CloudWatch fetch) is *active* when any signal is at or over its threshold (CPU by
its busiest core, GPU by its busiest GPU), someone is logged in, the user typed recently, or a registered job
is running. A workspace is idle once reports have covered the whole window without a gap and none of them was
active. Missing or stale data is never idle."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Heartbeats come every minute; CloudWatch's basic monitoring every five, published a few minutes late.
STALE_AFTER = {"agent": timedelta(minutes=3), "cloudwatch": timedelta(minutes=15)}
SNOOZE = timedelta(hours=1)


def active_reasons(sample: dict, thresholds: Any) -> list[str]:
    """Why this report is not idle under `thresholds` (an object with the Thresholds fields); [] when idle.

    `sample` holds what was measured (keys as the heartbeat's): cpu_percent (per core), memory_percent,
    network_bytes_per_s, disk_bytes_per_s, gpu_percent (per GPU), sessions, busy. A signal that was not
    measured cannot make a report active; whether there was a report at all is the caller's business."""
    reasons = []

    def over(value: Any, limit: Any, label: str) -> None:
        if value is not None and limit is not None and value >= limit:
            reasons.append(label)

    cpu = sample.get("cpu_percent") or []
    over(max(cpu) if cpu else None, thresholds.cpu_threshold, "cpu")
    gpu = sample.get("gpu_percent") or []
    over(max(gpu) if gpu else None, thresholds.gpu_threshold, "gpu")
    over(sample.get("memory_percent"), thresholds.memory_threshold, "memory")
    over(sample.get("network_bytes_per_s"), thresholds.network_threshold, "network")
    over(sample.get("disk_bytes_per_s"), thresholds.disk_threshold, "disk")
    if sample.get("sessions"):
        reasons.append("sessions")
    if sample.get("busy"):
        reasons.append("busy")
    return reasons


@dataclass(frozen=True)
class Verdict:
    idle_for: timedelta | None  # how long every signal has been quiet (None: no usable data)
    why_not: str  # "" when idle for the whole window; else what stops it
    warn: bool  # send the warning now
    act: bool  # hibernate or stop now
    clear_warning: bool  # activity came back after the warning: it no longer holds


def quiet_since(state: Any) -> datetime | None:
    """Since when every report has been quiet, or None when the data is missing."""
    if state.observed_since is None or state.last_observed_at is None:
        return None
    starts: list[datetime] = [state.observed_since, state.configured_at]
    if state.last_active_at is not None:
        starts.append(state.last_active_at)
    return max(starts)


def judge(state: Any, *, now: datetime) -> Verdict:
    """`state` is a WorkspaceIdle (or any object with its fields) of a running workspace."""
    window = timedelta(minutes=state.idle_threshold_minutes)
    warning = timedelta(minutes=state.warning_minutes)
    since = quiet_since(state)
    stale_after = STALE_AFTER.get(state.signal_source)
    if not state.enabled:
        return Verdict(None, "disabled", False, False, state.warned_at is not None)
    if since is None or stale_after is None:
        return Verdict(None, "no data", False, False, state.warned_at is not None)
    if now - state.last_observed_at > stale_after:
        return Verdict(None, "stale data", False, False, state.warned_at is not None)
    idle_for = max(now - since, timedelta(0))
    warned = state.warned_at
    clear = warned is not None and warned < since
    if clear:
        warned = None
    if state.snoozed_until is not None and state.snoozed_until > now:
        return Verdict(idle_for, "snoozed", False, False, clear)
    why_not = "" if idle_for >= window else "quiet for less than the window"
    # The warning comes `warning` before the window closes, but never before half the window has passed.
    warn_from = max(window - warning, window / 2)
    if idle_for < warn_from:
        return Verdict(idle_for, why_not, False, False, clear)
    if warned is None:
        return Verdict(idle_for, why_not, True, False, clear)
    act = idle_for >= window and now - warned >= warning
    return Verdict(idle_for, why_not, False, act, clear)
