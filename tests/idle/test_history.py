"""Idle history and what it saved: each action's rate times the hours until the workspace woke (or now, or its
TTL), in SQL, scoped to what the caller can see; and the savings in the project's budget."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from idle.models import IdleEvent
from idle.selectors import idle_history, idle_savings
from projects.models import Project
from tests.idle.sweep_support import make_workspace
from workspaces.models import StateTransition, Workspace

pytestmark = pytest.mark.django_db
D = Decimal


def action(workspace, *, at, kind="hibernate", rate="0.5000", **fields) -> IdleEvent:
    return IdleEvent.objects.create(
        workspace=workspace,
        organization_id=workspace.organization_id,
        project_id=workspace.project_id,
        kind=kind,
        profile="standard",
        idle_seconds=3900,
        hourly_rate=D(rate),
        created_at=at,
        **fields,
    )


def woke(workspace, *, at, to_state="resuming"):
    StateTransition.objects.create(
        workspace=workspace, from_state="hibernated", to_state=to_state, hourly_rate=0, created_at=at
    )


def savings_of(user, **filters) -> dict[str, Decimal | None]:
    return {event.pk: event.estimated_savings for event in idle_history(user=user, **filters)}


def test_savings_run_until_the_workspace_woke(project, owner):
    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    first = action(workspace, at=now - timedelta(hours=10))
    woke(workspace, at=now - timedelta(hours=8))  # 2 hours asleep
    woke(workspace, at=now - timedelta(hours=7), to_state="starting")  # a later start is not the first
    second = action(workspace, at=now - timedelta(hours=3), kind="stop")  # still stopped: until now
    warned = action(workspace, at=now - timedelta(hours=3, minutes=10), kind="warned", rate="0")
    found = savings_of(owner, now=now)
    assert found[first.pk] == D("1.0")
    assert found[second.pk] == D("1.5")
    assert found[warned.pk] is None


def test_savings_stop_at_the_ttl(project, owner):
    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    Workspace.objects.filter(pk=workspace.pk).update(expires_at=now - timedelta(hours=1))
    event = action(workspace, at=now - timedelta(hours=4))  # the TTL would have stopped it 3 hours later
    assert savings_of(owner, now=now)[event.pk] == D("1.5")


def test_a_workspace_terminated_while_asleep_saves_until_then(project, owner):
    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    event = action(workspace, at=now - timedelta(hours=4))
    woke(workspace, at=now - timedelta(hours=3), to_state="terminating")
    assert savings_of(owner, now=now)[event.pk] == D("0.5")


def test_history_is_scoped_and_filtered(project, owner, outsider):
    now = timezone.now()
    mine, other = make_workspace(project, owner, "mine"), make_workspace(project, owner, "other")
    theirs_project = Project.objects.get(name="Climate")
    theirs = make_workspace(theirs_project, outsider, "theirs")
    a = action(mine, at=now - timedelta(hours=2))
    b = action(other, at=now - timedelta(hours=1), kind="stop")
    c = action(theirs, at=now - timedelta(hours=1))
    assert list(idle_history(user=owner)) == [b, a]
    assert list(idle_history(user=outsider)) == [c]
    assert list(idle_history(user=owner, workspace=mine)) == [a]
    assert list(idle_history(user=owner, kind="stop")) == [b]
    assert list(idle_history(user=owner, project=theirs_project)) == []


def test_history_and_savings_take_constant_queries(project, owner):
    now = timezone.now()

    def count(n: int) -> tuple[int, int]:
        for i in range(n):
            workspace = make_workspace(project, owner, f"box-{n}-{i}")
            action(workspace, at=now - timedelta(hours=3))
            woke(workspace, at=now - timedelta(hours=1))
        with CaptureQueriesContext(connection) as history:
            rows = [(e.workspace.name, e.project.name, e.estimated_savings) for e in idle_history(user=owner)]
        with CaptureQueriesContext(connection) as savings:
            idle_savings(project=project)
        assert rows
        return len(history.captured_queries), len(savings.captured_queries)

    assert count(2) == count(20)


def test_the_project_budget_shows_idle_savings(project, owner, owner_client):
    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    action(workspace, at=now - timedelta(hours=5), rate="0.2000")
    woke(workspace, at=now - timedelta(hours=3))
    action(workspace, at=now - timedelta(hours=2), kind="stop", rate="0.2000")
    woke(workspace, at=now - timedelta(hours=1), to_state="starting")
    action(workspace, at=now - timedelta(minutes=30), kind="warned", rate="0")
    totals = idle_savings(project=project, now=now)
    assert totals == {"total_usd": D("0.6000"), "actions": 2}
    body = owner_client.get(f"/api/v1/projects/{project.pk}/budget").json()
    assert body["idle_savings"]["actions"] == 2
    assert D(str(body["idle_savings"]["total_usd"])) == D("0.6000")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the hand-written sum is PostgreSQL's")
def test_the_savings_sum_answers_what_the_querysets_answer(project, owner, monkeypatch):
    from types import SimpleNamespace

    from idle import selectors

    now = timezone.now()
    boxes = [make_workspace(project, owner, f"box-{i}") for i in range(4)]
    action(boxes[0], at=now - timedelta(hours=10))
    woke(boxes[0], at=now - timedelta(hours=8, minutes=17))
    woke(boxes[0], at=now - timedelta(hours=7), to_state="starting")
    action(boxes[0], at=now - timedelta(hours=3), kind="stop", rate="0.1234")
    action(boxes[1], at=now - timedelta(days=3), rate="1.75")  # before `since` below
    Workspace.objects.filter(pk=boxes[2].pk).update(expires_at=now - timedelta(minutes=50))
    action(boxes[2], at=now - timedelta(hours=4, seconds=7))
    action(boxes[3], at=now - timedelta(hours=2), kind="warned", rate="9")  # not an action
    action(boxes[3], at=now + timedelta(minutes=5))  # after now: nothing saved yet
    other = Project.objects.create(organization=project.organization, name="Other")
    action(make_workspace(other, owner, "elsewhere"), at=now - timedelta(hours=5), rate="3")

    for since in (None, now - timedelta(days=1), now + timedelta(days=1)):
        sql = idle_savings(project=project, since=since, now=now)
        monkeypatch.setattr(selectors, "connection", SimpleNamespace(vendor="sqlite"))
        querysets = idle_savings(project=project, since=since, now=now)
        monkeypatch.undo()
        assert sql == querysets, since
    assert idle_savings(project=project, now=now)["actions"] == 5
