"""The cloud poller: one DescribeInstances per cloud account and region per tick moves every workspace that
waits for the cloud, touching only the workspaces of its own CloudAccount row."""

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.cloud_hooks import api_call_counts
from tests.conftest import bearer_client
from tests.workspaces.conftest import cloud_instances
from workspaces import cloud, services, tasks
from workspaces.models import CloudAccount, ProvisionJob, StateTransition, Workspace
from workspaces.services import poller, provisioning, reconcile

OPERATIONS = ["CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "RunInstances", "DescribeInstances"]


def calls() -> dict[str, int]:
    return api_call_counts(OPERATIONS + ["StopInstances", "TerminateInstances"])


def spent(before: dict[str, int]) -> dict[str, int]:
    return {operation: count - before[operation] for operation, count in calls().items() if count - before[operation]}


def launch_burst(owner, project, names: list[str]) -> list[Workspace]:
    """Launches asked for together through the API (SSH open to the caller), then carried out one after
    another as workers would: every one but the last hands its wait to a scheduled tick (another launch is
    still under way), the last ticks at once."""
    client = bearer_client(owner)
    launched = []
    for name in names:
        response = client.post(
            "/api/v1/instances/launch",
            {"name": name, "template": "Ubuntu 24.04 Base", "size": "XS", "project": project.id},
            format="json",
        )
        assert response.status_code == 202, response.content
        launched.append(response.json())
    for body in launched:
        services.workspace_provision(job_id=body["job_id"])
    return [Workspace.objects.get(pk=body["workspace_id"]) for body in launched]


@pytest.fixture
def pending_forever(monkeypatch):
    """The provider reports every instance as still `pending` (as EC2 does for a while after RunInstances)."""
    real = cloud.AwsProvider.describe

    def describe(self, instance_ids):
        return {key: dataclasses.replace(info, state="pending") for key, info in real(self, instance_ids).items()}

    monkeypatch.setattr(cloud.AwsProvider, "describe", describe)
    return lambda: monkeypatch.setattr(cloud.AwsProvider, "describe", real)


@pytest.fixture
def described(monkeypatch):
    """The instance ids of every DescribeInstances the poller makes."""
    seen: list[list[str]] = []
    real = cloud.AwsProvider.describe

    def describe(self, instance_ids):
        ids = sorted(instance_ids)
        seen.append(ids)
        return real(self, ids)

    monkeypatch.setattr(cloud.AwsProvider, "describe", describe)
    return seen


@pytest.fixture
def scheduled(monkeypatch):
    """The poll ticks scheduled (instead of run): (account, region, countdown)."""
    recorded: list[tuple[str, str, float]] = []
    monkeypatch.setattr(tasks.poll_cloud, "apply_async", lambda args, countdown: recorded.append((*args, countdown)))
    return recorded


def test_it_finishes_a_burst_of_launches_with_one_describe_call(owner, project, account, ec2):
    before = calls()
    workspaces = launch_burst(owner, project, [f"burst-{index}" for index in range(5)])

    assert {workspace.state for workspace in workspaces} == {"running"}
    # Per launch: the group with its tags, its rules in one call, the instance; one look for all five.
    assert spent(before) == {
        "CreateSecurityGroup": 5,
        "AuthorizeSecurityGroupIngress": 5,
        "RunInstances": 5,
        "DescribeInstances": 1,
    }
    for job in ProvisionJob.objects.filter(workspace__in=workspaces):
        assert (job.status, job.progress, job.attempts, job.lease_expires_at) == ("succeeded", 100, 1, None)
    assert {w.provider_instance_id for w in workspaces} == {i["InstanceId"] for i in cloud_instances(ec2)}


def test_a_tick_describes_and_moves_only_the_workspaces_of_its_own_cloud_account(
    owner, project, account, outsider, cloud, moto_image, described, ec2
):
    """Two organizations whose cloud accounts share one AWS account and region: a tick for one account never
    asks about, finishes or fails the other's launches."""
    org_b = outsider.memberships.get().organization
    account_b = CloudAccount.objects.create(
        organization=org_b,
        name="shared-aws",
        region="us-east-1",
        endpoint_url=cloud.url,
        image_overrides={"*": moto_image},
        is_default=True,
    )
    project_b = org_b.projects.get()
    mine = [
        services.workspace_launch(actor=owner, project=project, name=f"a{i}", template="Ubuntu 24.04 Base")
        for i in (1, 2)
    ]
    theirs = [
        services.workspace_launch(actor=outsider, project=project_b, name=f"b{i}", template="Ubuntu 24.04 Base")
        for i in (1, 2)
    ]
    # The first launch of each account: another is still under way there, so it waits for a tick.
    services.workspace_provision(job_id=mine[0].job.pk)
    services.workspace_provision(job_id=theirs[0].job.pk)
    assert described == []
    a1, b1 = (Workspace.objects.get(pk=result.workspace.pk) for result in (mine[0], theirs[0]))
    assert a1.provider_instance_id and b1.provider_instance_id
    assert poller.poll_targets() == sorted([(account.pk, "us-east-1"), (account_b.pk, "us-east-1")])

    report = poller.cloud_poll(account_id=account.pk, region="us-east-1")

    assert described == [[a1.provider_instance_id]]
    assert report.finished == [a1.pk] and report.waiting == [] and report.calls == 1
    assert Workspace.objects.get(pk=a1.pk).state == "running"
    assert Workspace.objects.get(pk=b1.pk).state == "launching"  # the other tenant's: not touched
    assert ProvisionJob.objects.get(pk=theirs[0].job.pk).status == "running"

    poller.cloud_poll(account_id=account_b.pk, region="us-east-1")
    assert described[-1] == [b1.provider_instance_id]
    assert Workspace.objects.get(pk=b1.pk).state == "running"
    assert len(cloud_instances(ec2)) == 2  # nobody's instance was terminated


def test_a_pending_instance_keeps_waiting_with_its_launch_leased_and_finishes_when_running(
    owner, project, account, settings, pending_forever
):
    (workspace,) = launch_burst(owner, project, ["patient"])
    assert workspace.state == "launching"
    report = poller.cloud_poll(account_id=account.pk, region="us-east-1")
    assert report.waiting == [workspace.pk] and report.finished == []
    job = ProvisionJob.objects.get(workspace=workspace)
    # Leased past the next tick: the launch sweep leaves it to the poller.
    assert job.lease_expires_at > timezone.now() + timedelta(seconds=settings.CARREL_LAUNCH_LEASE_SECONDS)
    assert reconcile.launches_resume_stalled() == []

    pending_forever()  # EC2 reports it running at last
    assert poller.cloud_poll(account_id=account.pk, region="us-east-1").finished == [workspace.pk]
    assert Workspace.objects.get(pk=workspace.pk).state == "running"
    assert ProvisionJob.objects.get(pk=job.pk).status == "succeeded"


def test_an_instance_the_provider_does_not_list_yet_is_waited_for_not_an_error(owner, project, account):
    """EC2 is eventually consistent: a new instance may be missing from DescribeInstances for a moment. The
    poller filters on instance-id, which leaves it out instead of failing the call (as InstanceIds would)."""
    (workspace,) = launch_burst(owner, project, ["fresh"])
    Workspace.objects.filter(pk=workspace.pk).update(state="launching", provider_instance_id="i-0123456789abcdef0")
    ProvisionJob.objects.filter(workspace=workspace).update(status="running", finished_at=None)
    report = poller.cloud_poll(account_id=account.pk, region="us-east-1")
    assert report.waiting == [workspace.pk] and report.failed == []
    assert Workspace.objects.get(pk=workspace.pk).state == "launching"


def test_a_launch_whose_instance_was_terminated_ends_in_error(owner, project, account, ec2):
    first, second = (
        services.workspace_launch(actor=owner, project=project, name=name, template="Ubuntu 24.04 Base")
        for name in ("doomed", "later")
    )
    services.workspace_provision(job_id=first.job.pk)  # waits for a tick: "later" is under way
    instance_id = Workspace.objects.get(pk=first.workspace.pk).provider_instance_id
    ec2.terminate_instances(InstanceIds=[instance_id])

    report = poller.cloud_poll(account_id=account.pk, region="us-east-1")

    assert report.failed == [first.workspace.pk]
    workspace = Workspace.objects.get(pk=first.workspace.pk)
    assert workspace.state == "error" and workspace.error_message.startswith("InstanceTerminated")
    job = ProvisionJob.objects.get(pk=first.job.pk)
    assert (job.status, job.error_code, job.lease_expires_at) == ("failed", "InstanceTerminated", None)
    assert Workspace.objects.get(pk=second.workspace.pk).state == "launching"  # not yet asked for


def test_a_launch_past_its_time_ends_in_launch_timeout(owner, project, account, ec2, settings, pending_forever):
    (workspace,) = launch_burst(owner, project, ["never"])
    settings.CARREL_LAUNCH_TIMEOUT_SECONDS = 0
    report = poller.cloud_poll(account_id=account.pk, region="us-east-1")
    assert report.failed == [workspace.pk]
    job = ProvisionJob.objects.get(workspace=workspace)
    assert (job.status, job.error_code) == ("failed", "LAUNCH_TIMEOUT") and "pending" in job.error_message
    assert Workspace.objects.get(pk=workspace.pk).state == "error"
    assert cloud_instances(ec2) == []  # the instance it launched is terminated


def test_one_tick_at_a_time_per_account_and_region(owner, project, account, pending_forever):
    (workspace,) = launch_burst(owner, project, ["locked"])
    pending_forever()
    before = calls()
    cache.add(f"poller:lock:{account.pk}:us-east-1", "another tick", timeout=60)
    report = poller.cloud_poll(account_id=account.pk, region="us-east-1")
    assert report.locked and spent(before) == {}
    assert Workspace.objects.get(pk=workspace.pk).state == "launching"

    cache.delete(f"poller:lock:{account.pk}:us-east-1")
    assert poller.cloud_poll(account_id=account.pk, region="us-east-1").finished == [workspace.pk]


def test_a_launch_is_never_finished_twice(owner, project, account, pending_forever):
    (workspace,) = launch_burst(owner, project, ["once"])
    pending_forever()
    stale = poller.waiting_workspaces(account, "us-east-1", now=timezone.now())
    poller.cloud_poll(account_id=account.pk, region="us-east-1")
    # A second finish from a stale read (a tick that raced the first) changes nothing.
    job = ProvisionJob.objects.get(workspace=workspace)
    info = services.provider_for(stale[0]).describe([stale[0].provider_instance_id])[stale[0].provider_instance_id]
    provisioning.finish_launch(job, stale[0], info)
    assert StateTransition.objects.filter(workspace=workspace, to_state="running").count() == 1


def test_a_burst_of_stops_shares_one_describe_call(owner, project, account):
    workspaces = launch_burst(owner, project, ["s1", "s2", "s3"])
    for workspace in workspaces:
        services.workspace_act(actor=owner, workspace=workspace, action="stop")
    before = calls()
    for workspace in workspaces:
        services.workspace_drive(workspace_id=workspace.pk, action="stop")  # each asks, none waits
    assert {Workspace.objects.get(pk=w.pk).state for w in workspaces} == {"stopping"}

    report = poller.cloud_poll(account_id=account.pk, region="us-east-1")

    assert sorted(report.finished) == sorted(w.pk for w in workspaces)
    assert {Workspace.objects.get(pk=w.pk).state for w in workspaces} == {"stopped"}
    assert spent(before) == {"StopInstances": 3, "DescribeInstances": 1}


def test_a_lone_stop_start_and_terminate_finish_in_their_own_task(owner, project, account, ec2):
    (workspace,) = launch_burst(owner, project, ["lone"])
    for action, during, final in (("stop", "stopping", "stopped"), ("start", "starting", "running")):
        services.workspace_act(actor=owner, workspace=Workspace.objects.get(pk=workspace.pk), action=action)
        Workspace.objects.filter(pk=workspace.pk).update(state_changed_at=timezone.now() - timedelta(minutes=1))
        services.workspace_drive(workspace_id=workspace.pk, action=action)
        assert Workspace.objects.get(pk=workspace.pk).state == final, action
    group_id = Workspace.objects.get(pk=workspace.pk).security_group_id
    services.workspace_act(actor=owner, workspace=Workspace.objects.get(pk=workspace.pk), action="terminate")
    services.workspace_drive(workspace_id=workspace.pk, action="terminate")
    assert Workspace.objects.get(pk=workspace.pk).state == "terminated"
    assert cloud_instances(ec2) == []
    assert ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroups"] == []


def test_the_tick_task_schedules_the_next_while_workspaces_wait(
    owner, project, account, settings, pending_forever, scheduled, django_capture_on_commit_callbacks
):
    settings.CARREL_LAUNCH_POLL_SECONDS = 4
    launch_burst(owner, project, ["waiting"])
    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.poll_cloud.run(account.pk, "us-east-1")
    assert scheduled == [(account.pk, "us-east-1", 4)]
    with django_capture_on_commit_callbacks(execute=True):
        services.workspace_provision(job_id=ProvisionJob.objects.get().pk)  # a resumed launch hands over again
    assert len(scheduled) == 1  # one tick scheduled at a time


def test_the_beat_sweep_schedules_a_tick_for_each_account_and_region_with_waits(
    owner, project, account, pending_forever, scheduled, django_capture_on_commit_callbacks
):
    launch_burst(owner, project, ["w1"])
    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.poll_cloud_accounts()
        tasks.poll_cloud_accounts()
    assert scheduled == [(account.pk, "us-east-1", 0)]


def test_a_launch_whose_tick_was_lost_is_resumed_by_the_launch_sweep(
    owner, project, account, eager_tasks, django_capture_on_commit_callbacks
):
    first, _ = (
        services.workspace_launch(actor=owner, project=project, name=name, template="Ubuntu 24.04 Base")
        for name in ("lost", "stuck-behind")
    )
    services.workspace_provision(job_id=first.job.pk)  # handed to a tick that never comes
    assert Workspace.objects.get(pk=first.workspace.pk).state == "launching"
    ProvisionJob.objects.filter(pk=first.job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile.launches_resume_stalled() == [first.workspace.pk]
    assert Workspace.objects.get(pk=first.workspace.pk).state == "running"


def test_many_moves_at_once_are_spread_over_the_workers_with_the_reports_read(
    owner, project, account, monkeypatch, eager_tasks, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(poller, "FINISH_INLINE", 2)
    client = bearer_client(owner)
    bodies = [
        client.post(
            "/api/v1/instances/launch",
            {"name": f"many-{index}", "template": "Ubuntu 24.04 Base", "project": project.id},
            format="json",
        ).json()
        for index in range(5)
    ]
    for body in bodies[:-1]:
        services.workspace_provision(job_id=body["job_id"])  # each waits for a tick: others are under way
    before = calls()
    finishing = []
    real = tasks.finish_cloud_waits.delay
    monkeypatch.setattr(tasks.finish_cloud_waits, "delay", lambda *args: (finishing.append(args), real(*args)))
    with django_capture_on_commit_callbacks(execute=True):
        services.workspace_provision(job_id=bodies[-1]["job_id"])  # the last one ticks for all five

    assert [len(reports) for _, _, reports in finishing] == [2, 2, 1]
    assert {Workspace.objects.get(pk=body["workspace_id"]).state for body in bodies} == {"running"}
    assert spent(before) == {
        "CreateSecurityGroup": 1,
        "AuthorizeSecurityGroupIngress": 1,
        "RunInstances": 1,
        "DescribeInstances": 1,
    }
    # A report names its workspace and instance: a message about another account's workspace moves nothing.
    assert (
        poller.cloud_waits_finish(account_id="acct_other", region="us-east-1", reports=finishing[0][2]).finished == []
    )


def test_an_instance_report_survives_a_task_message():
    info = cloud.InstanceInfo(
        instance_id="i-0123456789abcdef0",
        state="running",
        instance_type="t3.micro",
        public_ip="203.0.113.7",
        private_ip="10.0.0.7",
        launch_time=datetime(2026, 12, 6, 2, 0, tzinfo=UTC),
        hibernation_configured=True,
        state_reason="",
        tags={"carrel:workspace-id": "ws_1"},
        transition_time=None,
        availability_zone="us-east-1a",
    )
    assert cloud.InstanceInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
