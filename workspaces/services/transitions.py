"""State transitions: the one way a workspace's state changes, with a row per change."""

import logging
from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from workspaces.models import (
    COMPUTE_BILLED_STATES,
    StateTransition,
    Workspace,
)

logger = logging.getLogger("carrel.workspaces")

# --- Transitions --------------------------------------------------------------------------------


def rate_in_state(workspace: Workspace, state: str) -> Decimal:
    return workspace.hourly_rate if state in COMPUTE_BILLED_STATES else Decimal("0")


def record_transition(
    *,
    workspace: Workspace,
    to_state: str,
    expected_from: Iterable[str],
    actor=None,
    reason: str = "",
    **fields,
) -> bool:
    """Move the workspace to `to_state` if it is still in one of `expected_from`; False otherwise."""
    with transaction.atomic():
        current = Workspace.objects.select_for_update().filter(pk=workspace.pk).values_list("state", flat=True).first()
        if current is None or current not in set(expected_from):
            return False
        now = timezone.now()
        for name, value in fields.items():
            setattr(workspace, name, value)
        Workspace.objects.filter(pk=workspace.pk, state=current).update(
            state=to_state, state_changed_at=now, updated_at=now, **fields
        )
        workspace.state, workspace.state_changed_at = to_state, now
        StateTransition.objects.create(
            workspace=workspace,
            from_state=current,
            to_state=to_state,
            actor=actor if actor is not None and actor.is_authenticated else None,
            reason=reason[:255],
            instance_type=workspace.instance_type,
            hourly_rate=rate_in_state(workspace, to_state),
            created_at=now,
        )
    return True
