"""The action: hibernate (or stop) a workspace the sweep found idle, after judging it again under its row lock."""

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from idle.decision import judge
from idle.models import IdleAction, IdleEvent, WorkspaceIdle
from platform_site.actors import SYSTEM
from platform_site.errors import Conflict
from workspaces.models import Workspace, WorkspaceState
from workspaces.services.lifecycle import workspace_act

logger = logging.getLogger("carrel.idle")
RATE_PLACES = Decimal("0.0001")
HUNDRED = Decimal(100)


def net_hourly_rate(workspace: Workspace) -> Decimal:
    """The compute rate the workspace pays per hour (the ledger's rate less the organization's discount)."""
    discount = workspace.organization.discount_percent or Decimal(0)
    return (workspace.hourly_rate * (HUNDRED - discount) / HUNDRED).quantize(RATE_PLACES)


def _choose(state: WorkspaceIdle, workspace: Workspace) -> tuple[str, str]:
    """The lifecycle action and what the event says about it."""
    if state.action == IdleAction.HIBERNATE:
        if workspace.hibernation_capable:
            return "hibernate", "hibernated: RAM state and data preserved"
        return "stop", (
            f"stopped instead of hibernated: instance type {workspace.instance_type} was not launched with "
            "hibernation configured (data preserved, RAM state lost)"
        )
    return "stop", "stopped, as its idle policy says (data preserved)"


def idle_act(*, workspace_id: str, now: datetime | None = None) -> IdleEvent | None:
    """Hibernate or stop the workspace if it is still idle now; the IdleEvent written, or None when it was not
    (used since the sweep, snoozed, no longer running, detection turned off, or another task acted first)."""
    now = now or timezone.now()
    with transaction.atomic():
        state = (
            WorkspaceIdle.objects.select_for_update(of=("self",))
            .select_related("workspace__organization", "workspace__project", "workspace__owner")
            .filter(pk=workspace_id)
            .first()
        )
        if state is None or state.workspace.state != WorkspaceState.RUNNING:
            return None
        verdict = judge(state, now=now)
        if not verdict.act:
            if verdict.clear_warning:
                WorkspaceIdle.objects.filter(pk=state.pk, warned_at=state.warned_at).update(warned_at=None)
            return None
        # The warning is spent by the action (conditional on the row being as judged).
        if not WorkspaceIdle.objects.filter(pk=state.pk, warned_at=state.warned_at).update(warned_at=None):
            return None
        workspace = state.workspace
        action, detail = _choose(state, workspace)
        idle_minutes = int(verdict.idle_for.total_seconds() // 60) if verdict.idle_for else 0
        reason = f"idle for {idle_minutes} minutes (idle detection, profile {state.profile or 'custom'})"
        try:
            workspace_act(actor=SYSTEM, workspace=workspace, action=action, reason=reason)
        except Conflict as error:
            if error.code != "HIBERNATION_NOT_SUPPORTED":
                logger.info("Idle action on %s not taken: %s", workspace_id, error.message)
                transaction.set_rollback(True)
                return None
            action, detail = "stop", f"stopped instead of hibernated: {error.details or error.message}"
            workspace_act(actor=SYSTEM, workspace=workspace, action=action, reason=f"{reason}; cannot hibernate")
        event = IdleEvent.objects.create(
            workspace=workspace,
            organization_id=workspace.organization_id,
            project_id=workspace.project_id,
            kind=IdleEvent.Kind.HIBERNATED if action == "hibernate" else IdleEvent.Kind.STOPPED,
            profile=state.profile,
            idle_seconds=int(verdict.idle_for.total_seconds()) if verdict.idle_for else 0,
            hourly_rate=net_hourly_rate(workspace),
            detail=detail[:255],
            created_at=now,
        )
    logger.info("Idle detection: %s %s after %d idle minutes", action, workspace_id, idle_minutes)
    return event
