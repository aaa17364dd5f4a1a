"""State transitions: the one way a workspace's state changes, with a row per change."""

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django.db import transaction
from django.utils import timezone

from idle.tokens import agent_token_revoke
from platform_site.actors import Actor
from workspaces.models import (
    COMPUTE_BILLED_STATES,
    StateTransition,
    Workspace,
)

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger("carrel.workspaces")

REVOKES_AGENT_TOKEN = frozenset({"terminating", "terminated"})

# --- Transitions --------------------------------------------------------------------------------


def rate_in_state(workspace: Workspace, state: str) -> Decimal:
    return workspace.hourly_rate if state in COMPUTE_BILLED_STATES else Decimal("0")


def _locked_workspace(workspace_id: str) -> Workspace | None:
    """The workspace read under a row lock (PostgreSQL) for the rest of the transaction, with what the
    ledger needs."""
    return (
        Workspace.objects.select_for_update(of=("self",)).select_related("organization").filter(pk=workspace_id).first()
    )


class _LostRace(Exception):
    """The conditional update found the state changed (where row locks do not hold): undo the transition row."""


def record_transition(
    *,
    workspace: Workspace,
    to_state: str,
    expected_from: Iterable[str],
    actor: "Actor | None" = None,
    reason: str = "",
    cloud_at: datetime | None = None,
    cloud_launch_time: datetime | None = None,
    **fields: Any,
) -> bool:
    """Move the workspace to `to_state` if it is still in one of `expected_from`; False otherwise.

    Writes the transition row and, through budgets.ledger, the cost of the interval it ends, in one
    transaction under the workspace's row lock. `cloud_at` is when the cloud says the change happened
    (used where plausible), `cloud_launch_time` the instance's LaunchTime reported with it.
    The move is also a conditional update on the state read, so a concurrent move (where row locks do not
    hold, e.g. SQLite) never leaves two rows claiming the same departure."""
    from budgets import ledger

    try:
        with transaction.atomic():
            locked = _locked_workspace(workspace.pk)
            if locked is None or locked.state not in set(expected_from):
                return False
            current = locked.state
            now = timezone.now()
            # The cloud's time counts if it is after the previous change and not after now; an interval the
            # midnight close has already written cannot be unwritten, so it never goes before `ledger_through`.
            effective = ledger.plausible(cloud_at, after=locked.state_changed_at, before=now) or now
            if locked.ledger_through is not None:
                effective = max(effective, locked.ledger_through)
            rate = fields.get("hourly_rate", locked.hourly_rate)
            transition = StateTransition.objects.create(
                workspace=locked,
                from_state=current,
                to_state=to_state,
                # A person (authenticated); SYSTEM and None are recorded without one.
                actor=cast("User | None", actor if actor is not None and actor.is_authenticated else None),
                reason=reason[:255],
                instance_type=fields.get("instance_type", locked.instance_type),
                hourly_rate=rate if to_state in COMPUTE_BILLED_STATES else Decimal("0"),
                created_at=now,
                cloud_at=cloud_at,
                cloud_launch_time=cloud_launch_time,
                effective_at=effective,
            )
            ledger_fields = ledger.close_for_transition(
                workspace=locked,
                from_state=current,
                to_state=to_state,
                at=effective,
                transition=transition,
                launch_time=cloud_launch_time,
                new_rate=fields.get("hourly_rate"),
            )
            updated = Workspace.objects.filter(pk=workspace.pk, state=current).update(
                state=to_state, state_changed_at=now, updated_at=now, **ledger_fields, **fields
            )
            if updated != 1:
                raise _LostRace
            if to_state in REVOKES_AGENT_TOKEN:  # however it goes (asked, TTL, found gone): its agent is done
                agent_token_revoke(workspace_id=workspace.pk)
    except _LostRace:
        return False
    for name, value in {**ledger_fields, **fields}.items():
        setattr(workspace, name, value)
    workspace.state, workspace.state_changed_at = to_state, now
    return True
