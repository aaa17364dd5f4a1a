"""record_transition: a conditional update, and a transition row only for an update that happened."""

from decimal import Decimal
from unittest import mock

import pytest

from workspaces.models import StateTransition, Workspace
from workspaces.services import record_transition, transitions


@pytest.fixture
def workspace(org, project, owner):
    return Workspace.objects.create(
        organization=org, project=project, owner=owner, name="box", state="running", hourly_rate=Decimal("0.1")
    )


def test_it_moves_the_state_and_writes_one_row(workspace):
    assert record_transition(workspace=workspace, to_state="hibernating", expected_from=["running"], reason="zz")
    assert Workspace.objects.get(pk=workspace.pk).state == "hibernating"
    row = StateTransition.objects.get(workspace=workspace)
    # Hibernating is billed (AWS bills the time RAM is written out); plain stopping is not.
    assert (row.from_state, row.to_state, row.hourly_rate) == ("running", "hibernating", Decimal("0.1"))
    assert record_transition(workspace=workspace, to_state="stopping", expected_from=["hibernating"])
    assert StateTransition.objects.get(to_state="stopping").hourly_rate == Decimal("0")


def test_it_refuses_a_state_it_does_not_expect(workspace):
    assert not record_transition(workspace=workspace, to_state="starting", expected_from=["stopped"])
    assert not StateTransition.objects.exists()


def test_it_writes_no_row_when_the_conditional_update_changed_nothing(workspace):
    # The state read says "running" but another process has moved the row on (no row lock on SQLite):
    # the update matches no row, so no transition may claim to have left "running".
    stale = Workspace.objects.select_related("organization").get(pk=workspace.pk)
    Workspace.objects.filter(pk=workspace.pk).update(state="stopped")
    with mock.patch.object(transitions, "_locked_workspace", return_value=stale):
        moved = record_transition(workspace=workspace, to_state="stopping", expected_from=["running"])
    assert moved is False
    assert not StateTransition.objects.exists()
    assert Workspace.objects.get(pk=workspace.pk).state == "stopped"
    assert workspace.state == "running"  # the caller's object is not changed either
