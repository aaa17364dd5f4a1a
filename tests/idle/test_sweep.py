# ruff: noqa: F811 (pytest fixtures imported from tests.workspaces.conftest are redefined as arguments)
"""The sweep and the action: when a warning is given, cleared and acted on, in how many queries, and what the
action does (hibernate, or stop saying why), judged again under the row's lock."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from idle.models import IdleEvent, WorkspaceIdle
from idle.services.actions import idle_act
from idle.services.sweep import idle_sweep
from tests.idle.sweep_support import make_workspace
from tests.workspaces.conftest import eager_tasks  # noqa: F401 (fixture)
from workspaces.models import StateTransition, Workspace

pytestmark = pytest.mark.django_db


def reported(workspace, *, quiet_minutes: float, now, active_minutes_ago: float | None = None, **fields):
    """The row as heartbeats leave it: reports every minute for `quiet_minutes`, the last one now."""
    WorkspaceIdle.objects.filter(pk=workspace.pk).update(
        signal_source="agent",
        observed_since=now - timedelta(minutes=quiet_minutes),
        last_observed_at=now,
        last_active_at=now - timedelta(minutes=active_minutes_ago) if active_minutes_ago is not None else None,
        **fields,
    )


def state_of(workspace) -> WorkspaceIdle:
    return WorkspaceIdle.objects.get(pk=workspace.pk)


def test_it_warns_only_once_the_window_is_nearly_over(project, owner):
    now = timezone.now()
    early, due = make_workspace(project, owner, "early"), make_workspace(project, owner, "due")
    reported(early, quiet_minutes=49, now=now)  # standard: 60-minute window, warning 10 minutes before
    reported(due, quiet_minutes=50, now=now)
    result = idle_sweep(now=now)
    assert result.warned == [due.pk] and result.acting == []
    assert state_of(early).warned_at is None and state_of(due).warned_at == now
    event = IdleEvent.objects.get(workspace=due)
    assert (event.kind, event.idle_seconds, event.profile) == ("warned", 3000, "standard")
    assert event.organization_id == due.organization_id and event.project_id == project.pk
    assert idle_sweep(now=now + timedelta(minutes=1)).warned == [early.pk]  # once each


def test_it_acts_only_when_the_window_is_over_and_the_warning_is_old_enough(project, owner):
    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    reported(workspace, quiet_minutes=70, now=now, warned_at=now - timedelta(minutes=9))
    assert idle_sweep(now=now).acting == []
    reported(workspace, quiet_minutes=71, now=now + timedelta(minutes=1))
    assert idle_sweep(now=now + timedelta(minutes=1)).acting == [workspace.pk]


def test_an_unwarned_workspace_is_warned_before_any_action(project, owner):
    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    reported(workspace, quiet_minutes=300, now=now)  # quiet for hours, never warned (e.g. detection just enabled)
    result = idle_sweep(now=now)
    assert result.warned == [workspace.pk] and result.acting == []


def test_activity_after_the_warning_clears_it(project, owner):
    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    reported(workspace, quiet_minutes=55, now=now, warned_at=now - timedelta(minutes=5), active_minutes_ago=1)
    result = idle_sweep(now=now)
    assert result.cleared == [workspace.pk] and result.warned == [] and result.acting == []
    assert state_of(workspace).warned_at is None


@pytest.mark.parametrize(
    "fields",
    [
        {"enabled": False},
        {"last_observed_at": None, "observed_since": None, "signal_source": ""},  # never reported
        {"snoozed_until": "later"},
    ],
    ids=["disabled", "no-data", "snoozed"],
)
def test_it_never_warns_without_usable_data_or_when_told_not_to(project, owner, fields):
    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    reported(workspace, quiet_minutes=300, now=now)
    fields = {k: (now + timedelta(minutes=30) if v == "later" else v) for k, v in fields.items()}
    WorkspaceIdle.objects.filter(pk=workspace.pk).update(**fields)
    result = idle_sweep(now=now)
    assert result.warned == [] and result.acting == []


def test_stale_heartbeats_are_never_idle(project, owner):
    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    reported(workspace, quiet_minutes=300, now=now - timedelta(minutes=4), warned_at=now - timedelta(minutes=30))
    result = idle_sweep(now=now)
    assert result.acting == [] and result.warned == []
    assert result.cleared == [workspace.pk]  # a warning does not outlive the data it was based on


def test_a_warning_ends_when_the_workspace_stops_running(project, owner):
    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    reported(workspace, quiet_minutes=55, now=now, warned_at=now - timedelta(minutes=2))
    Workspace.objects.filter(pk=workspace.pk).update(state="stopped")
    idle_sweep(now=now)
    assert state_of(workspace).warned_at is None


def test_the_sweep_takes_a_constant_number_of_queries(project, owner):
    now = timezone.now()

    def queries_for(count: int, prefix: str) -> int:
        created = [make_workspace(project, owner, f"{prefix}-{n}") for n in range(count)]
        for n, workspace in enumerate(created):
            # a third to warn, a third to act on, a third busy
            warned = now - timedelta(minutes=15) if n % 3 == 1 else None
            reported(workspace, quiet_minutes=[55, 70, 5][n % 3], now=now, warned_at=warned)
        with CaptureQueriesContext(connection) as context:
            result = idle_sweep(now=now)
        assert len(result.warned) == len(result.acting) == count // 3
        Workspace.objects.filter(pk__in=[w.pk for w in created]).update(state="stopped")
        return len(context.captured_queries)

    assert queries_for(3, "few") == queries_for(60, "many")


def test_the_warning_email_says_what_will_happen_when_with_a_snooze_link(
    project, owner, eager_tasks, django_capture_on_commit_callbacks, settings
):
    settings.CARREL_PUBLIC_URL = "https://carrel.example.org"
    now = timezone.now()
    workspace = make_workspace(project, owner, "analysis", hibernation_capable=False)
    reported(workspace, quiet_minutes=50, now=now)
    with django_capture_on_commit_callbacks(execute=True):
        idle_sweep(now=now)
    [email] = mail.outbox
    assert email.to == ["owner@lab-a.example"]
    assert email.subject == "Workspace analysis is idle and will stop soon"
    text = email.body
    assert "nothing going on for 50 minutes" in text
    assert "cannot hibernate" in text and "t3.medium" in text
    action_at = now + timedelta(minutes=10)
    assert f"{action_at:%H:%M} UTC" in text
    assert f"https://carrel.example.org/workspaces/{workspace.pk}/" in text
    link = next(line for line in text.splitlines() if line.startswith("https://carrel.example.org/idle/snooze/"))
    html = email.alternatives[0][0]
    assert link in html and "Snooze for 1 hour" in html


def test_no_email_goes_out_for_a_warning_that_no_longer_holds(project, owner, eager_tasks):
    from idle.tasks import send_idle_warning

    now = timezone.now()
    workspace = make_workspace(project, owner, "box")
    reported(workspace, quiet_minutes=50, now=now, warned_at=None)
    send_idle_warning.delay(workspace.pk, now.isoformat())
    assert mail.outbox == []


# --- The action -------------------------------------------------------------------------------------------------


def due(project, owner, name: str, **kwargs):
    now = timezone.now()
    workspace = make_workspace(project, owner, name, **kwargs)
    reported(workspace, quiet_minutes=75, now=now, warned_at=now - timedelta(minutes=12))
    return workspace, now


def test_it_hibernates_a_workspace_that_can(project, owner):
    workspace, now = due(project, owner, "box")
    event = idle_act(workspace_id=workspace.pk, now=now)
    workspace.refresh_from_db()
    assert workspace.state == "hibernating"
    transition = StateTransition.objects.filter(workspace=workspace).latest("created_at")
    assert transition.to_state == "hibernating" and "idle for 75 minutes" in transition.reason
    assert (event.kind, event.idle_seconds, event.detail) == (
        "hibernate",
        4500,
        "hibernated: RAM state and data preserved",
    )
    assert event.hourly_rate == workspace.hourly_rate and event.actor is None
    assert state_of(workspace).warned_at is None
    assert AuditEvent.objects.filter(
        action="workspace.hibernate", actor_label="system", target_id=workspace.pk
    ).exists()


def test_it_stops_one_that_cannot_hibernate_and_says_why(project, owner, org):
    org.discount_percent = 10
    org.save()
    workspace, now = due(project, owner, "box", hibernation_capable=False)
    event = idle_act(workspace_id=workspace.pk, now=now)
    workspace.refresh_from_db()
    assert workspace.state == "stopping" and event.kind == "stop"
    assert event.detail.startswith("stopped instead of hibernated: instance type t3.medium was not launched")
    assert str(event.hourly_rate) == "0.0374"  # 0.0416 less the organization's 10%


def test_it_stops_when_the_policy_says_stop(project, owner):
    workspace, now = due(project, owner, "box", idle={"profile": "gpu"})
    event = idle_act(workspace_id=workspace.pk, now=now)
    assert event.kind == "stop" and "as its idle policy says" in event.detail


def test_the_action_judges_again_under_the_lock(project, owner):
    workspace, now = due(project, owner, "box")
    # Someone logged in after the sweep decided: the heartbeat moved last_active_at.
    WorkspaceIdle.objects.filter(pk=workspace.pk).update(last_active_at=now)
    assert idle_act(workspace_id=workspace.pk, now=now) is None
    workspace.refresh_from_db()
    assert workspace.state == "running"
    assert state_of(workspace).warned_at is None  # the warning no longer holds
    assert not IdleEvent.objects.filter(workspace=workspace, kind__in=["hibernate", "stop"]).exists()


def test_acting_twice_acts_once(project, owner):
    workspace, now = due(project, owner, "box")
    assert idle_act(workspace_id=workspace.pk, now=now) is not None
    assert idle_act(workspace_id=workspace.pk, now=now) is None
    assert IdleEvent.objects.filter(workspace=workspace, kind="hibernate").count() == 1
