"""State transitions: the one way a workspace's state changes, with a row per change."""

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django.db import transaction
from django.utils import timezone

from platform_site.actors import Actor
from workspaces.models import (
    COMPUTE_BILLED_STATES,
    StateTransition,
    Workspace,
)

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger("carrel.workspaces")

# --- Transitions --------------------------------------------------------------------------------


def rate_in_state(workspace: Workspace, state: str) -> Decimal:
    return workspace.hourly_rate if state in COMPUTE_BILLED_STATES else Decimal("0")


def _locked_state(workspace_id: str) -> str | None:
    """The workspace's state, read under a row lock (PostgreSQL) for the rest of the transaction."""
    return Workspace.objects.select_for_update().filter(pk=workspace_id).values_list("state", flat=True).first()


def record_transition(
    *,
    workspace: Workspace,
    to_state: str,
    expected_from: Iterable[str],
    actor: "Actor | None" = None,
    reason: str = "",
    **fields: Any,
) -> bool:
    """Move the workspace to `to_state` if it is still in one of `expected_from`; False otherwise.

    The move is a conditional update on the state read: a transition row is written only when that
    update changed the row, so a concurrent move (where row locks do not hold, e.g. SQLite) never leaves
    two rows claiming the same departure."""
    with transaction.atomic():
        current = _locked_state(workspace.pk)
        if current is None or current not in set(expected_from):
            return False
        now = timezone.now()
        updated = Workspace.objects.filter(pk=workspace.pk, state=current).update(
            state=to_state, state_changed_at=now, updated_at=now, **fields
        )
        if updated != 1:
            return False
        for name, value in fields.items():
            setattr(workspace, name, value)
        workspace.state, workspace.state_changed_at = to_state, now
        StateTransition.objects.create(
            workspace=workspace,
            from_state=current,
            to_state=to_state,
            # A person (authenticated); SYSTEM and None are recorded without one.
            actor=cast("User | None", actor if actor is not None and actor.is_authenticated else None),
            reason=reason[:255],
            instance_type=workspace.instance_type,
            hourly_rate=rate_in_state(workspace, to_state),
            created_at=now,
        )
    return True
