"""The sweep: every minute, decide for every running workspace with idle detection on (idle.decision.judge).

A bounded number of queries whatever the number of workspaces: one loads every row the decision needs (as
plain tuples, no model instances), then one locks and one updates the rows to warn, one writes their
IdleEvents, one clears the warnings that no longer hold, and one clears those of workspaces no longer running.
The e-mails and the actions are tasks enqueued when the transaction commits; the action task judges again
under the row's lock (idle.services.actions), so a report that arrives meanwhile still saves the workspace."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from idle import dispatch
from idle.decision import STALE_AFTER, judge
from idle.models import IdleEvent, WorkspaceIdle
from workspaces.models import WorkspaceState

logger = logging.getLogger("carrel.idle")

# One sweep at a time (PostgreSQL advisory lock key; SQLite serializes writers anyway).
SWEEP_LOCK_KEY = 0x1D1E_5EE9
# Rows judged: the state's fields plus where the events go.
COLUMNS = (
    "workspace_id",
    "workspace__organization_id",
    "workspace__project_id",
    "profile",
    "enabled",
    "idle_threshold_minutes",
    "warning_minutes",
    "signal_source",
    "observed_since",
    "last_observed_at",
    "last_active_at",
    "configured_at",
    "warned_at",
    "snoozed_until",
)


@dataclass(slots=True)
class Row:
    """A WorkspaceIdle as the sweep reads it: what judge() needs, without building model instances."""

    workspace_id: str
    organization_id: str
    project_id: str
    profile: str
    enabled: bool
    idle_threshold_minutes: int
    warning_minutes: int
    signal_source: str
    observed_since: datetime | None
    last_observed_at: datetime | None
    last_active_at: datetime | None
    configured_at: datetime
    warned_at: datetime | None
    snoozed_until: datetime | None


@dataclass
class SweepResult:
    checked: int = 0
    warned: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    acting: list[str] = field(default_factory=list)
    locked_out: bool = False  # another sweep was running: this one did nothing


def _take_lock() -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SWEEP_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def rows_to_judge(*, now: datetime) -> list[Row]:
    """Every running workspace's enabled idle state with data recent enough to judge, or a warning to clear
    (rows without either cannot be warned, acted on or cleared: judging them would only say "no data")."""
    fresh = now - max(STALE_AFTER.values())
    queryset = WorkspaceIdle.objects.filter(enabled=True, workspace__state=WorkspaceState.RUNNING).filter(
        Q(last_observed_at__gte=fresh) | Q(warned_at__isnull=False)
    )
    return [Row(*values) for values in queryset.order_by().values_list(*COLUMNS)]


def idle_sweep(*, now: datetime | None = None) -> SweepResult:
    now = now or timezone.now()
    result = SweepResult()
    with transaction.atomic():
        if not _take_lock():
            result.locked_out = True
            return result
        rows = rows_to_judge(now=now)
        result.checked = len(rows)
        to_warn: dict[str, tuple[Row, int]] = {}
        for row in rows:
            verdict = judge(row, now=now)
            if verdict.clear_warning:
                result.cleared.append(row.workspace_id)
            idle_seconds = int(verdict.idle_for.total_seconds()) if verdict.idle_for is not None else 0
            if verdict.warn:
                to_warn[row.workspace_id] = (row, idle_seconds)
            elif verdict.act:
                result.acting.append(row.workspace_id)
        if result.cleared:
            WorkspaceIdle.objects.filter(pk__in=result.cleared).update(warned_at=None)
        if to_warn:
            _warn(to_warn, now=now, result=result)
        # A warning holds only while the workspace runs (stopped by hand, terminated, …: it is over).
        WorkspaceIdle.objects.filter(warned_at__isnull=False).exclude(workspace__state=WorkspaceState.RUNNING).update(
            warned_at=None
        )
        for workspace_id in result.acting:
            dispatch.act_on_idle_workspace(workspace_id)
    if result.warned or result.acting:
        logger.info(
            "Idle sweep: %d judged, %d warned, %d to act on, %d warnings cleared",
            result.checked,
            len(result.warned),
            len(result.acting),
            len(result.cleared),
        )
    return result


def _warn(to_warn: dict[str, tuple[Row, int]], *, now: datetime, result: SweepResult) -> None:
    """Warn under the rows' locks, and only those still unwarned and not snoozed (a snooze takes the same lock)."""
    still = list(
        WorkspaceIdle.objects.select_for_update()
        .filter(pk__in=list(to_warn), warned_at__isnull=True)
        .filter(Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not still:
        return
    WorkspaceIdle.objects.filter(pk__in=still).update(warned_at=now)
    events = []
    for workspace_id in still:
        row, idle_seconds = to_warn[workspace_id]
        window = timedelta(minutes=row.idle_threshold_minutes)
        acts_in = max(window - timedelta(seconds=idle_seconds), timedelta(minutes=row.warning_minutes))
        events.append(
            IdleEvent(
                workspace_id=workspace_id,
                organization_id=row.organization_id,
                project_id=row.project_id,
                kind=IdleEvent.Kind.WARNED,
                profile=row.profile,
                idle_seconds=idle_seconds,
                detail=f"idle for {idle_seconds // 60} of {row.idle_threshold_minutes} minutes; acted on in "
                f"{int(acts_in.total_seconds() // 60)} minutes unless it is used or snoozed",
                created_at=now,
            )
        )
        dispatch.send_idle_warning(workspace_id, now)
    IdleEvent.objects.bulk_create(events)
    result.warned.extend(still)
