# ruff: noqa: F811 (pytest fixtures imported from tests.workspaces.conftest are redefined as arguments)
"""Idle detection end to end, with a controlled clock (time_machine) and every heartbeat posted through
`POST /api/v1/agent/heartbeat` with the workspace's own agent token; the sweep runs after each round.

Each scenario runs a quiet workspace next to the one under test: the quiet one is warned, so the sweep would
have caught the other had it been idle."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from idle.cloudwatch import cloudwatch_fetch
from idle.decision import judge
from idle.models import IdleEvent, WorkspaceIdle
from idle.services.snooze import snooze_link_token
from idle.services.sweep import idle_sweep
from projects.models import Project
from tests.conftest import bearer_client
from tests.idle.sweep_support import beat, events_of, make_workspace, quiet, timeline
from tests.support import celery_worker, wait_until
from tests.workspaces.conftest import (  # noqa: F401 (fixtures)
    account,
    catalog,
    cloud,
    cloud_instances,
    eager_tasks,
    ec2,
    moto,
    moto_image,
)
from workspaces.models import CloudAccount, Workspace


@pytest.fixture(autouse=True)
def _heartbeats_unthrottled(settings):
    # The clock jumps minutes between heartbeats; the per-token limit is not what these tests are about.
    settings.CARREL_AGENT_HEARTBEAT_RATE = "1000/minute"


def state_of(workspace) -> WorkspaceIdle:
    return WorkspaceIdle.objects.get(pk=workspace.pk)


def warned_ids(results) -> set[str]:
    return {workspace_id for result in results for workspace_id in result.warned}


def acted_ids(results) -> set[str]:
    return {workspace_id for result in results for workspace_id in result.acting}


@pytest.mark.django_db
def test_one_busy_core_of_16_keeps_a_workspace_alive(project, owner):
    now = timezone.now()
    busy, control = make_workspace(project, owner, "busy-core"), make_workspace(project, owner, "quiet")
    # One core at 60%, fifteen at 0.5%: an average over cores (4.2%) would read as under the 5% threshold.
    one_core = quiet(cpu_percent=[60.0] + [0.5] * 15)
    results = timeline(now - timedelta(minutes=100), now, samples={busy: one_core, control: quiet()})
    assert busy.pk not in warned_ids(results) | acted_ids(results)
    assert control.pk in warned_ids(results)
    state = state_of(busy)
    assert state.active_reasons == ["cpu"]
    assert judge(state, now=state.last_observed_at).why_not == "quiet for less than the window"
    assert events_of(busy) == []


@pytest.mark.django_db
def test_a_registered_long_job_keeps_it_alive_with_nobody_logged_in(project, owner):
    now = timezone.now()
    job, control = make_workspace(project, owner, "training"), make_workspace(project, owner, "quiet")
    sample = quiet(sessions=0, busy=True, busy_reasons=["keep-alive: python train.py"])
    results = timeline(now - timedelta(minutes=180), now, samples={job: sample, control: quiet()})
    assert job.pk not in warned_ids(results) | acted_ids(results)
    assert control.pk in warned_ids(results)
    assert state_of(job).active_reasons == ["busy"]
    assert state_of(job).last_sample["busy_reasons"] == ["keep-alive: python train.py"]


@pytest.mark.django_db
def test_a_gpu_at_80_percent_keeps_it_alive(project, owner):
    now = timezone.now()
    gpu = make_workspace(project, owner, "gpu-box", idle={"profile": "gpu"})
    control = make_workspace(project, owner, "gpu-quiet", idle={"profile": "gpu"})
    results = timeline(
        now - timedelta(minutes=60),
        now,
        samples={gpu: quiet(gpu_percent=[80.0, 0.0]), control: quiet(gpu_percent=[0.0, 0.0])},
    )
    assert gpu.pk not in warned_ids(results) | acted_ids(results)
    assert control.pk in warned_ids(results) and control.pk in acted_ids(results)  # 15-minute window
    assert state_of(gpu).active_reasons == ["gpu"]


@pytest.mark.django_db
def test_no_heartbeats_and_no_cloudwatch_data_never_hibernate(project, owner, account):
    now = timezone.now()
    start = now - timedelta(hours=4)
    silent = make_workspace(project, owner, "silent", cloud_account=account, instance_id="i-0123456789abcdef0")
    # The agent reports for an hour, quiet, then dies (and CloudWatch has nothing either).
    dies = make_workspace(project, owner, "agent-died", cloud_account=account, instance_id="i-0123456789abcdef1")
    stop_at = start + timedelta(minutes=45)

    def fetch(moment):
        if moment.minute % 5 == 0:
            cloudwatch_fetch(cloud_account_id=account.pk, region="us-east-1")

    results = timeline(
        start,
        now,
        samples={dies: lambda moment: quiet() if moment < stop_at else None},
        at_each=fetch,
        every=timedelta(minutes=1),
    )
    for workspace in (silent, dies):
        assert workspace.pk not in warned_ids(results) | acted_ids(results)
        assert events_of(workspace) == []
        assert judge(state_of(workspace), now=now).why_not in ("no data", "stale data")
    assert Workspace.objects.get(pk=silent.pk).state == Workspace.objects.get(pk=dies.pk).state == "running"


def launch(client, project, name: str) -> Workspace:
    response = client.post(
        "/api/v1/instances/launch",
        {"name": name, "template": "Python Machine Learning", "size": "S", "project": project.id},
        format="json",
    )
    assert response.status_code == 202, response.content
    return Workspace.objects.get(pk=response.json()["workspace_id"])


@pytest.mark.django_db
def test_one_idle_workspace_never_acts_on_another(
    owner, project, account, outsider, cloud, ec2, eager_tasks, django_capture_on_commit_callbacks
):
    """Two organizations share one cloud endpoint and region (each its own cloud account): the idle one of
    organization A is hibernated; B's busy one, and B's instance on the cloud, are left alone."""
    theirs_project = Project.objects.get(name="Climate")
    CloudAccount.objects.create(
        organization=theirs_project.organization,
        name="shared",
        region="us-east-1",
        endpoint_url=cloud.url,
        image_overrides=account.image_overrides,
        is_default=True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        idle = launch(bearer_client(owner), project, "idle-box")
    with django_capture_on_commit_callbacks(execute=True):
        busy = launch(bearer_client(outsider), theirs_project, "busy-box")
    idle.refresh_from_db()
    busy.refresh_from_db()
    assert idle.state == busy.state == "running" and idle.cloud_account_id != busy.cloud_account_id
    now = timezone.now()
    start = now - timedelta(minutes=60)
    WorkspaceIdle.objects.filter(pk__in=[idle.pk, busy.pk]).update(configured_at=start)
    working = quiet(sessions=1)
    results = timeline(start, now - timedelta(minutes=1), samples={idle: quiet(), busy: working})
    assert warned_ids(results) == {idle.pk}
    # Now (the real clock): both report; the sweep acts on the idle one, and the tasks run.
    beat(idle, quiet())
    beat(busy, working)
    with django_capture_on_commit_callbacks(execute=True):
        result = idle_sweep()
    assert result.acting == [idle.pk]
    idle.refresh_from_db()
    busy.refresh_from_db()
    assert (idle.state, busy.state) == ("hibernated", "running")
    on_cloud = {i["InstanceId"]: i["State"]["Name"] for i in cloud_instances(ec2, states=("running", "stopped"))}
    assert on_cloud == {idle.provider_instance_id: "stopped", busy.provider_instance_id: "running"}
    assert events_of(idle) == ["warned", "hibernate"] and events_of(busy) == []
    assert IdleEvent.objects.get(workspace=idle, kind="hibernate").organization_id == idle.organization_id


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_idle_workspace_is_warned_snoozed_warned_again_then_hibernated_by_a_real_worker(
    owner, project, account, ec2, tmp_path, client
):
    log = tmp_path / "worker.log"
    with celery_worker(tmp_path):
        workspace = launch(bearer_client(owner), project, "idle-box")
        wait_until(
            lambda: Workspace.objects.get(pk=workspace.pk).state == "running",
            timeout=120,
            what="the launch to run",
            log_path=log,
        )
        workspace.refresh_from_db()
        # The template's batch profile: a 60-minute window, the warning 10 minutes before. The timeline ends now,
        # so that the worker, on the real clock, finds heartbeats as fresh as the sweep did.
        now = timezone.now()
        start = now - timedelta(minutes=122)
        WorkspaceIdle.objects.filter(pk=workspace.pk).update(configured_at=start)
        snoozed: list = []

        def snooze_from_the_email(moment):
            state = state_of(workspace)
            if state.warned_at is not None and not snoozed:
                with time_machine.travel(moment + timedelta(seconds=30), tick=False):  # read half a minute later
                    page = client.get(f"/idle/snooze/{snooze_link_token(state)}")
                assert page.status_code == 200, page.content
                snoozed.append(moment)

        results = timeline(
            start, now - timedelta(minutes=1), samples={workspace: quiet()}, at_each=snooze_from_the_email
        )
        warnings = [result for result in results if result.warned]
        assert len(warnings) == 2 and not acted_ids(results)
        assert snoozed == [start + timedelta(minutes=50)]
        # The snooze ran out at +110.5 minutes: warned again at the next sweep.
        assert state_of(workspace).warned_at == start + timedelta(minutes=112)
        beat(workspace, quiet())
        assert idle_sweep().acting == [workspace.pk]
        wait_until(
            lambda: Workspace.objects.get(pk=workspace.pk).state == "hibernated",
            timeout=120,
            what="the worker to hibernate the workspace",
            log_path=log,
        )
        wait_until(lambda: "Idle warning e-mailed" in log.read_text(), what="a warning e-mail", log_path=log)
    instance = workspace.provider_instance_id
    assert {i["InstanceId"]: i["State"]["Name"] for i in cloud_instances(ec2, states=("stopped",))} == {
        instance: "stopped"
    }
    assert events_of(workspace) == ["warned", "snoozed", "warned", "hibernate"]
    event = IdleEvent.objects.get(workspace=workspace, kind="hibernate")
    assert event.idle_seconds >= 120 * 60 and event.hourly_rate == workspace.hourly_rate
    assert "act_on_idle_workspace" in log.read_text() and "drive_workspace" in log.read_text()
