"""Snooze: put off a workspace's idle action by an hour, from the API, the console, or the warning e-mail's link.

The e-mail's link is signed (django.core.signing, salt "carrel.idle.snooze") over the workspace and the warning
it answers, good for 24 hours, and single-use: a snooze clears the warning, so the link no longer matches."""

from datetime import datetime, timedelta

from django.core import signing
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User
from audit.services import audit_record
from idle.decision import SNOOZE
from idle.models import IdleEvent, WorkspaceIdle
from platform_site.actors import SYSTEM, Actor
from platform_site.errors import Conflict, NotFound
from workspaces.models import Workspace, WorkspaceState
from workspaces.services.access import require_can_manage

SNOOZE_SALT = "carrel.idle.snooze"
SNOOZE_LINK_MAX_AGE = timedelta(hours=24)


def _link_refused(message: str) -> NotFound:
    return NotFound(message, code="SNOOZE_LINK_INVALID")


def _snoozable(workspace: Workspace, state: WorkspaceIdle | None) -> WorkspaceIdle:
    if workspace.state != WorkspaceState.RUNNING:
        raise Conflict(
            f"Workspace '{workspace.name}' is {workspace.state}; only a running workspace can be snoozed.",
            code="INVALID_STATE",
        )
    if state is None or not state.enabled:
        raise Conflict(
            f"Idle detection is off for workspace '{workspace.name}': there is nothing to snooze.",
            code="IDLE_DETECTION_DISABLED",
        )
    return state


def _snooze(*, actor: Actor, workspace: Workspace, state: WorkspaceIdle, now: datetime, via: str) -> WorkspaceIdle:
    """Under the row lock: push the snooze an hour further, end the warning, record it."""
    start = max(now, state.snoozed_until) if state.snoozed_until else now
    state.snoozed_until = start + SNOOZE
    previous_warning = state.warned_at
    state.warned_at = None
    state.save(update_fields=["snoozed_until", "warned_at"])
    person = actor if isinstance(actor, User) else None
    IdleEvent.objects.create(
        workspace=workspace,
        organization_id=workspace.organization_id,
        project_id=workspace.project_id,
        kind=IdleEvent.Kind.SNOOZED,
        profile=state.profile,
        detail=f"snoozed until {state.snoozed_until:%Y-%m-%d %H:%M} UTC ({via})",
        actor=person,
        created_at=now,
    )
    audit_record(
        actor=actor,
        action="workspace.idle_snooze",
        target=workspace,
        organization=workspace.organization,
        metadata={
            "snoozed_until": state.snoozed_until.isoformat(),
            "warning": previous_warning.isoformat() if previous_warning else None,
            "via": via,
        },
    )
    return state


def workspace_snooze(*, actor: Actor, workspace: Workspace, now: datetime | None = None) -> WorkspaceIdle:
    """Snooze (or snooze further) a running workspace's idle action: `snoozed_until = max(now, snoozed_until) +
    1 hour`, and any warning ends. For whoever may manage the workspace; 409 INVALID_STATE when it is not running,
    409 IDLE_DETECTION_DISABLED when idle detection is off."""
    require_can_manage(user=actor, workspace=workspace)
    now = now or timezone.now()
    with transaction.atomic():
        state = WorkspaceIdle.objects.select_for_update().filter(pk=workspace.pk).first()
        state = _snoozable(workspace, state)
        return _snooze(actor=actor, workspace=workspace, state=state, now=now, via="api")


def snooze_link_token(state: WorkspaceIdle) -> str:
    """The one-click link's token for the warning in force (the e-mail task builds it when sending)."""
    if state.warned_at is None:
        raise ValueError("no warning in force")
    return signing.dumps({"w": state.workspace_id, "t": state.warned_at.isoformat()}, salt=SNOOZE_SALT, compress=True)


def snooze_by_link(token: str, *, now: datetime | None = None) -> WorkspaceIdle:
    """Snooze from the e-mail's link (the link is the credential; recorded as done by the link, for the system).
    404 SNOOZE_LINK_INVALID when the link was altered, is over 24 hours old, or its warning no longer holds
    (already snoozed through it, the workspace was used, or it was acted on)."""
    now = now or timezone.now()
    try:
        payload = signing.loads(token, salt=SNOOZE_SALT, max_age=SNOOZE_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise _link_refused("This snooze link has expired (links are good for 24 hours).") from None
    except signing.BadSignature:
        raise _link_refused("This snooze link is not valid.") from None
    workspace_id = payload.get("w") if isinstance(payload, dict) else None
    warned_at = parse_datetime(str(payload.get("t"))) if isinstance(payload, dict) else None
    if not isinstance(workspace_id, str) or warned_at is None:
        raise _link_refused("This snooze link is not valid.")
    with transaction.atomic():
        state = (
            WorkspaceIdle.objects.select_for_update(of=("self",))
            .select_related("workspace__organization")
            .filter(pk=workspace_id)
            .first()
        )
        if state is None:
            raise _link_refused("This snooze link is not valid.")
        if state.warned_at != warned_at:
            raise _link_refused(
                "This snooze link was already used, or the warning it answered no longer holds "
                "(the workspace was used, snoozed, or acted on since)."
            )
        state = _snoozable(state.workspace, state)
        return _snooze(actor=SYSTEM, workspace=state.workspace, state=state, now=now, via="e-mailed link")
