"""What the Celery tasks do when the provider fails them, observed in the database, the (moto) cloud and the
logs: a refused action gives up at once, trouble that lasts gives up after the retries with backoff, and
the reconciler repairs what was left; a throttled firewall sync retries until the rule reaches the
security group; a launch that reaches its retry limit ends in error and leaves nothing behind.

Tasks run eagerly (retries too: Celery runs them in turn, without the countdown); the `retries` fixture
records each retry Celery schedules, from its `task_retry` signal."""

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.workspaces.conftest import cloud_instances
from workspaces import services, tasks
from workspaces.models import FirewallRule, ProvisionJob, StateTransition, Workspace

FOREVER = 1000  # more throttled answers than a task makes attempts
# An action or a launch gives up at its tenth error in a row (nine retries, backing off); a launch waits at
# most 30s between attempts, so that a dead worker's launch is resumed soon. The firewall sync retries ten times.
ACTION_BACKOFF = [2, 4, 8, 16, 32, 60, 60, 60, 60]
LAUNCH_BACKOFF = [2, 4, 8, 16, 30, 30, 30, 30, 30]
SYNC_BACKOFF = [2, 4, 8, 16, 32, 60, 60, 60, 60, 60]


def throttle(settings, operation: str) -> None:
    """The provider answers RequestLimitExceeded to every `operation`; the client does not retry it itself."""
    settings.CARREL_CLOUD_MAX_ATTEMPTS = 1
    settings.CARREL_CLOUD_FAULTS = f"throttle:{operation}:{FOREVER}"


def recover(settings) -> None:
    settings.CARREL_CLOUD_FAULTS = ""


def ingress(ec2, group_id: str) -> list[tuple]:
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return sorted(
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"])
        for p in group["IpPermissions"]
        for r in p["IpRanges"]
    )


def instance_state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def moves(workspace: Workspace) -> list[tuple[str, str, str]]:
    rows = StateTransition.objects.filter(workspace=workspace).order_by("created_at", "id")
    return list(rows.values_list("from_state", "to_state", "reason"))


def make_running(owner, project, account, instance_id: str, name: str = "box") -> Workspace:
    workspace = Workspace.objects.create(
        organization=project.organization,
        project=project,
        owner=owner,
        name=name,
        state="running",
        cloud_account=account,
        region="us-east-1",
        instance_type="t3.medium",
        hourly_rate=Decimal("0.0416"),
        provider_instance_id=instance_id,
    )
    StateTransition.objects.create(
        workspace=workspace, from_state="", to_state="running", instance_type="t3.medium", hourly_rate=Decimal("0.0416")
    )
    return workspace


def tagged_instance(ec2, image: str, workspace: Workspace) -> str:
    tags = [
        {"Key": "carrel:workspace-id", "Value": workspace.pk},
        {"Key": "carrel:cloud-account", "Value": workspace.cloud_account_id},
        {"Key": "carrel:organization", "Value": workspace.organization_id},
    ]
    reservation = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.medium",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    return reservation["Instances"][0]["InstanceId"]


def request_launch(client, project, name: str) -> tuple[Workspace, str]:
    response = client.post(
        "/api/v1/instances/launch",
        {"name": name, "template": "Ubuntu 24.04 Base", "project": project.id},
        format="json",
    )
    assert response.status_code == 202, response.content
    return Workspace.objects.get(pk=response.json()["workspace_id"]), response.json()["job_id"]


def groups_named(ec2, workspace: Workspace) -> list:
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"carrel-{workspace.pk}"]}])
    return found["SecurityGroups"]


# --- (a) Driving an action -----------------------------------------------------------------------------


def test_a_stop_the_provider_refuses_gives_up_at_once_and_the_reconciler_repairs_the_workspace(
    owner, project, account, retries, caplog, django_capture_on_commit_callbacks
):
    """StopInstances on an instance the provider no longer knows is refused (InvalidInstanceID.NotFound):
    a permanent error, so the task does not retry, logs it, and leaves the state to the reconciler."""
    workspace = make_running(owner, project, account, "i-0123456789abcdef0")
    with (
        caplog.at_level(logging.INFO, logger="carrel.workspaces"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.workspace_act(actor=owner, workspace=workspace, action="stop")

    assert retries.seen == []
    refusals = [r for r in caplog.records if r.levelno == logging.ERROR and "refused by the provider" in r.getMessage()]
    assert len(refusals) == 1
    assert workspace.pk in refusals[0].getMessage() and "InvalidInstanceID.NotFound" in refusals[0].getMessage()
    workspace.refresh_from_db()
    assert workspace.state == "stopping"  # nothing invented: the provider never said stopped
    assert [move[:2] for move in moves(workspace)] == [("", "running"), ("running", "stopping")]

    tasks.reconcile_cloud_account(account.pk)
    workspace.refresh_from_db()
    assert workspace.state == "terminated"  # the provider has no such instance
    assert moves(workspace)[-1] == ("stopping", "terminated", "reconciled with the provider")


def test_a_stop_throttled_past_its_retries_gives_up_and_the_reconciler_repairs_the_workspace(
    owner, project, account, ec2, moto_image, settings, retries, caplog, django_capture_on_commit_callbacks
):
    workspace = make_running(owner, project, account, "")
    instance_id = tagged_instance(ec2, moto_image, workspace)
    Workspace.objects.filter(pk=workspace.pk).update(provider_instance_id=instance_id)
    workspace.refresh_from_db()
    throttle(settings, "StopInstances")
    with (
        caplog.at_level(logging.INFO, logger="carrel.workspaces"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.workspace_act(actor=owner, workspace=workspace, action="stop")

    assert [retry.task for retry in retries.seen] == ["drive_workspace"] * len(ACTION_BACKOFF)
    assert retries.countdowns == ACTION_BACKOFF
    assert all("StopInstances: RequestLimitExceeded" in retry.why for retry in retries.seen)
    assert any(
        r.levelno == logging.ERROR and r.getMessage().startswith(f"Giving up stop of {workspace.pk}")
        for r in caplog.records
    )
    workspace.refresh_from_db()
    assert workspace.state == "stopping"
    assert instance_state(ec2, instance_id) == "running"

    # Once the transition is stuck, the reconciler follows the provider, which never stopped the instance.
    recover(settings)
    tasks.reconcile_cloud_account(account.pk)
    assert Workspace.objects.get(pk=workspace.pk).state == "stopping"  # not stuck yet: a task may still be on it
    stuck = timezone.now() - timedelta(seconds=settings.CARREL_TRANSITION_STUCK_SECONDS + 1)
    Workspace.objects.filter(pk=workspace.pk).update(state_changed_at=stuck)
    tasks.reconcile_cloud_account(account.pk)
    workspace.refresh_from_db()
    assert workspace.state == "running"
    assert moves(workspace)[-1] == ("stopping", "running", "reconciled with the provider")


# --- (b) Syncing the firewall ----------------------------------------------------------------------------


@pytest.fixture
def launched(owner_client, project, account, eager_tasks, django_capture_on_commit_callbacks) -> Workspace:
    with django_capture_on_commit_callbacks(execute=True):
        workspace, _ = request_launch(owner_client, project, "fw-box")
    workspace.refresh_from_db()
    assert workspace.state == "running" and workspace.security_group_id
    return workspace


NEW_RULE = {"cidr": "198.51.100.0/24", "from_port": 8000, "to_port": 8100}
NEW_INGRESS = ("tcp", 8000, 8100, "198.51.100.0/24")


def test_a_throttled_firewall_sync_retries_until_the_rule_reaches_the_security_group(
    launched, owner, ec2, settings, retries, django_capture_on_commit_callbacks
):
    before = ingress(ec2, launched.security_group_id)
    throttle(settings, "AuthorizeSecurityGroupIngress")
    retries.then = lambda: recover(settings)  # the provider recovers before the task's next attempt
    with django_capture_on_commit_callbacks(execute=True):
        services.firewall_add(actor=owner, workspace=launched, rules=[NEW_RULE])

    assert [(retry.task, retry.countdown) for retry in retries.seen] == [("sync_workspace_firewall", 2)]
    assert "AuthorizeSecurityGroupIngress: RequestLimitExceeded" in retries.seen[0].why
    assert ingress(ec2, launched.security_group_id) == sorted([*before, NEW_INGRESS])


def test_a_firewall_sync_throttled_past_its_retries_keeps_the_rule_for_the_next_sync(
    launched, owner, ec2, settings, retries, django_capture_on_commit_callbacks
):
    before = ingress(ec2, launched.security_group_id)
    throttle(settings, "AuthorizeSecurityGroupIngress")
    with django_capture_on_commit_callbacks(execute=True):
        services.firewall_add(actor=owner, workspace=launched, rules=[NEW_RULE])

    assert retries.countdowns == SYNC_BACKOFF
    assert ingress(ec2, launched.security_group_id) == before
    assert FirewallRule.objects.filter(workspace=launched, from_port=8000).exists()  # still the desired state

    recover(settings)
    with django_capture_on_commit_callbacks(execute=True):  # the next change syncs the whole rule set
        services.firewall_clear(actor=owner, workspace=launched, position=1)
    assert ingress(ec2, launched.security_group_id) == sorted([*before[1:], NEW_INGRESS])


# --- (c) Launches ---------------------------------------------------------------------------------------


def test_a_throttled_launch_is_retried_by_the_task_with_backoff_under_a_lease(
    owner_client, project, account, ec2, settings, retries, django_capture_on_commit_callbacks
):
    """The task's own retry (the client's retries are used up): the job stays leased while the retry
    waits, so the launch sweep leaves it alone, and the next attempt launches one instance."""
    throttle(settings, "RunInstances")
    leases = []

    def provider_recovers():
        leases.append((timezone.now(), ProvisionJob.objects.get().lease_expires_at))
        recover(settings)

    retries.then = provider_recovers
    with django_capture_on_commit_callbacks(execute=True):
        workspace, job_id = request_launch(owner_client, project, "retried")

    assert [(retry.task, retry.countdown) for retry in retries.seen] == [("provision_workspace", 2)]
    ((at, lease),) = leases
    assert lease >= at + timedelta(seconds=2 + settings.CARREL_LAUNCH_LEASE_SECONDS - 1)
    job = ProvisionJob.objects.get(pk=job_id)
    assert (job.status, job.attempts, job.lease_expires_at) == ("succeeded", 2, None)
    workspace.refresh_from_db()
    assert workspace.state == "running"
    assert [i["InstanceId"] for i in cloud_instances(ec2)] == [workspace.provider_instance_id]


def test_a_launch_throttled_past_its_retries_ends_in_error_with_the_providers_code_and_leaves_nothing(
    owner_client, project, account, ec2, settings, retries, django_capture_on_commit_callbacks
):
    throttle(settings, "RunInstances")
    with django_capture_on_commit_callbacks(execute=True):
        workspace, job_id = request_launch(owner_client, project, "never-launched")

    assert retries.countdowns == LAUNCH_BACKOFF  # a launch backs off to 30s at most
    assert all("RunInstances: RequestLimitExceeded" in retry.why for retry in retries.seen)
    job = ProvisionJob.objects.get(pk=job_id)
    assert (job.status, job.error_code, job.attempts) == ("failed", "RequestLimitExceeded", tasks.MAX_ERRORS)
    workspace.refresh_from_db()
    assert workspace.state == "error" and workspace.error_message.startswith("RequestLimitExceeded")
    assert moves(workspace)[-1] == ("launching", "error", "launch failed: RequestLimitExceeded")
    assert cloud_instances(ec2) == []
    assert groups_named(ec2, workspace) == []
    body = owner_client.get(f"/api/v1/jobs/{job_id}").json()
    assert (body["status"], body["state"]) == ("failed", "error")


def test_a_launch_whose_instance_never_runs_times_out_and_terminates_it(
    owner_client, project, account, ec2, moto_image, settings, retries, monkeypatch, django_capture_on_commit_callbacks
):
    """An earlier attempt's instance that the provider keeps stopped never reaches running: the cloud poller
    looks again every CARREL_LAUNCH_POLL_SECONDS until the launch's time is up, then fails it with
    LAUNCH_TIMEOUT and removes the instance and its security group."""
    workspace, job_id = request_launch(owner_client, project, "stuck")  # its task is not run yet
    instance_id = tagged_instance(ec2, moto_image, workspace)
    ec2.stop_instances(InstanceIds=[instance_id])
    ProvisionJob.objects.filter(pk=job_id).update(attempts=1)  # not the first attempt: look for the instance
    leases, ticks = [], []
    real_tick = tasks.poll_cloud.apply_async

    def tick_later(args, countdown):
        job = ProvisionJob.objects.get(pk=job_id)
        leases.append(job.lease_expires_at)
        ticks.append(countdown)
        if len(ticks) == 3:  # the launch's time runs out before its fourth look
            late = job.created_at - timedelta(seconds=settings.CARREL_LAUNCH_TIMEOUT_SECONDS + 1)
            ProvisionJob.objects.filter(pk=job_id).update(created_at=late)
        return real_tick(args, countdown=countdown)

    monkeypatch.setattr(tasks.poll_cloud, "apply_async", tick_later)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.provision_workspace.delay(job_id)

    assert retries.seen == []  # the launch task hands the wait over; nothing retries
    assert ticks == [settings.CARREL_LAUNCH_POLL_SECONDS] * 3
    assert all(lease is not None for lease in leases)  # leased while waiting: the launch sweep leaves it be
    job = ProvisionJob.objects.get(pk=job_id)
    assert (job.status, job.error_code, job.lease_expires_at) == ("failed", "LAUNCH_TIMEOUT", None)
    assert "stopped" in job.error_message
    workspace.refresh_from_db()
    assert workspace.state == "error" and workspace.provider_instance_id == instance_id
    assert moves(workspace)[-1] == ("launching", "error", "launch failed: LAUNCH_TIMEOUT")
    assert instance_state(ec2, instance_id) == "terminated"
    assert cloud_instances(ec2) == []
    assert groups_named(ec2, workspace) == []
