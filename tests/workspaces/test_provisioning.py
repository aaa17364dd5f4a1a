"""Launch jobs: idempotent under retries and crashes, retrying transient provider errors, cleaning up
after permanent ones; reconciliation repairs drift."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import assert_error
from tests.workspaces.conftest import cloud_instances
from workspaces import cloud, services
from workspaces.models import OrphanedInstance, ProvisionJob, StateTransition, Workspace
from workspaces.services import reconcile


def request_launch(client, project, name="box", template="Ubuntu 24.04 Base", **extra):
    response = client.post(
        "/api/v1/instances/launch", {"name": name, "template": template, "project": project.id, **extra}, format="json"
    )
    assert response.status_code == 202, response.content
    return Workspace.objects.get(pk=response.json()["workspace_id"]), response.json()["job_id"]


def test_running_the_launch_twice_creates_one_instance(owner_client, project, account, ec2, settings):
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    workspace, job_id = request_launch(owner_client, project)
    services.workspace_provision(job_id=job_id)
    services.workspace_provision(job_id=job_id)  # a redelivered message after success
    assert len(cloud_instances(ec2)) == 1

    # A retry that starts over before the first run recorded anything still finds the tagged instance.
    Workspace.objects.filter(pk=workspace.pk).update(state="launching", provider_instance_id="")
    services.workspace_provision(job_id=job_id)
    instances = cloud_instances(ec2)
    assert len(instances) == 1
    assert Workspace.objects.get(pk=workspace.pk).provider_instance_id == instances[0]["InstanceId"]


def test_a_launch_interrupted_after_run_instances_adopts_the_instance(
    owner_client, project, account, ec2, settings, monkeypatch
):
    """The in-process version of a worker dying right after RunInstances (the worker test kills a real one)."""
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    workspace, job_id = request_launch(owner_client, project)
    original_launch = cloud.AwsProvider.launch

    class WorkerDied(BaseException):
        pass

    def launch_then_die(self, spec):
        original_launch(self, spec)
        raise WorkerDied

    monkeypatch.setattr(cloud.AwsProvider, "launch", launch_then_die)
    with pytest.raises(WorkerDied):
        services.workspace_provision(job_id=job_id)
    monkeypatch.setattr(cloud.AwsProvider, "launch", original_launch)
    assert Workspace.objects.get(pk=workspace.pk).provider_instance_id == ""

    services.workspace_provision(job_id=job_id)  # the redelivered task
    assert len(cloud_instances(ec2)) == 1
    assert Workspace.objects.get(pk=workspace.pk).state == "running"


def test_throttled_calls_are_retried_by_the_client(owner_client, project, account, ec2, settings):
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    settings.CARREL_CLOUD_MAX_ATTEMPTS = 5
    settings.CARREL_CLOUD_FAULTS = "throttle:RunInstances:3,throttle:DescribeInstances:2"
    workspace, job_id = request_launch(owner_client, project)
    services.workspace_provision(job_id=job_id)
    assert Workspace.objects.get(pk=workspace.pk).state == "running"
    assert len(cloud_instances(ec2)) == 1


def test_throttling_beyond_the_client_retries_is_retried_by_the_task(owner_client, project, account, ec2, settings):
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    settings.CARREL_CLOUD_MAX_ATTEMPTS = 2
    settings.CARREL_CLOUD_FAULTS = "throttle:RunInstances:5"
    workspace, job_id = request_launch(owner_client, project)
    with pytest.raises(cloud.TransientCloudError) as raised:
        services.workspace_provision(job_id=job_id)
    assert raised.value.code == "RequestLimitExceeded"
    assert Workspace.objects.get(pk=workspace.pk).state == "launching"
    assert "RequestLimitExceeded" in ProvisionJob.objects.get(pk=job_id).error_message
    assert cloud_instances(ec2) == []

    settings.CARREL_CLOUD_FAULTS = ""  # the provider recovers before the task's next attempt
    services.workspace_provision(job_id=job_id)
    assert Workspace.objects.get(pk=workspace.pk).state == "running"
    assert ProvisionJob.objects.get(pk=job_id).attempts == 2
    assert len(cloud_instances(ec2)) == 1


def test_a_permanent_error_leaves_the_workspace_in_error_and_nothing_in_the_cloud(
    owner_client, project, account, ec2, settings
):
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    account.subnet_id = "subnet-0doesnotexist00"
    account.save()
    workspace, job_id = request_launch(owner_client, project)
    services.workspace_provision(job_id=job_id)

    workspace.refresh_from_db()
    assert workspace.state == "error"
    assert "InvalidSubnetID" in workspace.error_message
    job = ProvisionJob.objects.get(pk=job_id)
    assert job.status == "failed" and job.error_code.startswith("InvalidSubnetID")
    assert cloud_instances(ec2) == []
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"carrel-{workspace.pk}"]}])
    assert groups["SecurityGroups"] == []
    assert StateTransition.objects.filter(workspace=workspace, to_state="error").count() == 1
    body = owner_client.get(f"/api/v1/jobs/{job_id}").json()
    assert body["status"] == "failed" and body["state"] == "error" and body["error_message"]


# --- Reconciliation ------------------------------------------------------------------------------


@pytest.fixture
def running(owner_client, project, account, settings):
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    workspace, job_id = request_launch(owner_client, project, name="drifty")
    services.workspace_provision(job_id=job_id)
    workspace.refresh_from_db()
    assert workspace.state == "running"
    return workspace


def test_reconcile_repairs_an_instance_stopped_outside_carrel(running, ec2):
    ec2.stop_instances(InstanceIds=[running.provider_instance_id])
    report = reconcile.workspaces_reconcile()
    assert report.repaired == [running.pk]
    running.refresh_from_db()
    assert running.state == "stopped"
    last = StateTransition.objects.filter(workspace=running).order_by("-created_at", "-id").first()
    assert (last.from_state, last.to_state, last.reason) == ("running", "stopped", "reconciled with the provider")
    assert reconcile.workspaces_reconcile().repaired == []  # nothing more to do


def test_reconcile_repairs_an_instance_terminated_outside_carrel(running, ec2):
    ec2.terminate_instances(InstanceIds=[running.provider_instance_id])
    reconcile.workspaces_reconcile()
    running.refresh_from_db()
    assert running.state == "terminated"


def test_the_launch_sweep_adopts_the_instance_of_a_launch_whose_worker_died(
    owner_client, project, account, ec2, settings, moto_image, eager_tasks, django_capture_on_commit_callbacks
):
    workspace, job_id = request_launch(owner_client, project, name="orphaned-launch")
    # The worker got as far as RunInstances and died: the instance exists, the database never heard of it,
    # and nobody renews the job's lease any more.
    ec2.run_instances(
        ImageId=moto_image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.medium",
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "carrel:workspace-id", "Value": workspace.pk},
                    {"Key": "carrel:cloud-account", "Value": workspace.cloud_account_id},
                ],
            }
        ],
    )
    ProvisionJob.objects.filter(pk=job_id).update(
        status="running", attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile.launches_resume_stalled() == [workspace.pk]
    workspace.refresh_from_db()
    assert workspace.state == "running"
    instances = cloud_instances(ec2)
    assert len(instances) == 1
    assert workspace.provider_instance_id == instances[0]["InstanceId"]
    assert reconcile.launches_resume_stalled() == []  # finished: nothing left to resume


def test_the_launch_sweep_leaves_a_job_whose_lease_is_live(owner_client, project, account, ec2):
    workspace, job_id = request_launch(owner_client, project, name="busy-launch")
    ProvisionJob.objects.filter(pk=job_id).update(
        status="running", attempts=1, lease_expires_at=timezone.now() + timedelta(seconds=30)
    )
    assert reconcile.launches_resume_stalled() == []


def test_reconcile_reports_orphans_and_terminates_them_when_the_organization_opts_in(running, account, ec2, moto_image):
    ghost = ec2.run_instances(
        ImageId=moto_image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "carrel:workspace-id", "Value": "ws_ghost"},
                    {"Key": "carrel:cloud-account", "Value": account.pk},
                    {"Key": "carrel:organization", "Value": account.organization_id},
                ],
            }
        ],
    )["Instances"][0]["InstanceId"]
    report = reconcile.workspaces_reconcile()
    assert report.orphans == [ghost] and report.orphans_terminated == []
    orphan = OrphanedInstance.objects.get(instance_id=ghost)
    assert orphan.workspace_tag == "ws_ghost" and orphan.terminated_at is None
    assert len(cloud_instances(ec2)) == 2

    account.terminate_orphans = True
    account.orphan_grace_minutes = 30
    account.save()
    assert reconcile.workspaces_reconcile().orphans_terminated == []  # still within the grace period
    OrphanedInstance.objects.filter(pk=orphan.pk).update(first_seen_at=timezone.now() - timedelta(hours=1))
    assert reconcile.workspaces_reconcile().orphans_terminated == [ghost]
    assert [i["InstanceId"] for i in cloud_instances(ec2)] == [running.provider_instance_id]


def test_reconcile_describes_in_batches(running, account, owner, project, settings, ec2, moto_image):
    from decimal import Decimal

    for index in range(5):
        instance = ec2.run_instances(ImageId=moto_image, MinCount=1, MaxCount=1, InstanceType="t3.micro")
        Workspace.objects.create(
            organization=project.organization,
            project=project,
            owner=owner,
            name=f"w{index}",
            state="running",
            cloud_account=account,
            region="us-east-1",
            instance_type="t3.micro",
            hourly_rate=Decimal("0.0104"),
            provider_instance_id=instance["Instances"][0]["InstanceId"],
        )
    from tests.cloud_hooks import api_call_counts

    before = api_call_counts(["DescribeInstances"])["DescribeInstances"]
    report = reconcile.workspaces_reconcile()
    assert report.checked == 6
    # one batched describe for the six workspaces, one tag scan for orphans
    assert api_call_counts(["DescribeInstances"])["DescribeInstances"] - before == 2


# --- Firewall ---------------------------------------------------------------------------------------


def ingress(ec2, group_id):
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return sorted(
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"])
        for p in group["IpPermissions"]
        for r in p["IpRanges"]
    )


def test_firewall_rules_reach_the_security_group(
    owner_client, project, account, ec2, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        workspace, _ = request_launch(owner_client, project, name="fw", template="Python Machine Learning")
    workspace.refresh_from_db()
    # The default opens SSH and the template's services to the caller only.
    assert ingress(ec2, workspace.security_group_id) == [
        ("tcp", 22, 22, "127.0.0.1/32"),
        ("tcp", 8888, 8888, "127.0.0.1/32"),
    ]
    listed = owner_client.get("/api/v1/instances/fw/firewall").json()["rules"]
    assert [(r["position"], r["from_port"]) for r in listed] == [(1, 22), (2, 8888)]

    with django_capture_on_commit_callbacks(execute=True):
        added = owner_client.post(
            "/api/v1/instances/fw/firewall",
            {"rules": [{"cidr": "198.51.100.0/24", "from_port": 8000, "to_port": 8100}]},
            format="json",
        )
    assert added.status_code == 201
    assert ("tcp", 8000, 8100, "198.51.100.0/24") in ingress(ec2, workspace.security_group_id)

    world_ssh = {"rules": [{"cidr": "0.0.0.0/0", "port": 22}]}
    assert_error(
        owner_client.post("/api/v1/instances/fw/firewall", world_ssh, format="json"), 400, "WORLD_SSH_NEEDS_FLAG"
    )
    with django_capture_on_commit_callbacks(execute=True):
        flagged = owner_client.post(
            "/api/v1/instances/fw/firewall", {**world_ssh, "allow_world_ssh": True}, format="json"
        )
    assert flagged.status_code == 201
    assert ("tcp", 22, 22, "0.0.0.0/0") in ingress(ec2, workspace.security_group_id)

    bad = owner_client.post(
        "/api/v1/instances/fw/firewall", {"rules": [{"cidr": "nope", "port": 70000}]}, format="json"
    )
    assert set(assert_error(bad, 400, "VALIDATION_ERROR")["fields"]) == {"cidr", "from_port", "to_port"}

    with django_capture_on_commit_callbacks(execute=True):
        assert owner_client.delete("/api/v1/instances/fw/firewall?position=1").status_code == 204
    assert ("tcp", 22, 22, "127.0.0.1/32") not in ingress(ec2, workspace.security_group_id)
    with django_capture_on_commit_callbacks(execute=True):
        assert owner_client.delete("/api/v1/instances/fw/firewall").status_code == 204
    assert ingress(ec2, workspace.security_group_id) == []


def test_a_launch_whose_security_group_disappeared_recreates_it(owner_client, project, account, ec2, settings):
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    workspace, job_id = request_launch(owner_client, project, name="lost-group")
    # An earlier attempt made the group; then someone deleted it before the instance was launched.
    group = ec2.create_security_group(GroupName="carrel-stale", Description="deleted below")["GroupId"]
    ec2.delete_security_group(GroupId=group)
    Workspace.objects.filter(pk=workspace.pk).update(security_group_id=group)
    ProvisionJob.objects.filter(pk=job_id).update(attempts=1)

    services.workspace_provision(job_id=job_id)

    workspace.refresh_from_db()
    assert workspace.state == "running"
    assert workspace.security_group_id not in ("", group)
    instance = cloud_instances(ec2)[0]
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [workspace.security_group_id]


def test_ipv6_rules_reach_the_security_group_as_ipv6_ranges(
    owner_client, project, account, ec2, eager_tasks, django_capture_on_commit_callbacks
):
    """EC2 refuses an IPv6 network in IpRanges (moto does not): it must go in Ipv6Ranges, and be read back from
    there, or every later sync would revoke and re-add it."""
    with django_capture_on_commit_callbacks(execute=True):
        workspace, _ = request_launch(owner_client, project, name="v6")
    workspace.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        added = owner_client.post(
            f"/api/v1/instances/{workspace.pk}/firewall",
            {"rules": [{"cidr": "2001:db8::/48", "port": 22, "description": "lab v6"}]},
            format="json",
        )
    assert added.status_code == 201, added.content
    group = ec2.describe_security_groups(GroupIds=[workspace.security_group_id])["SecurityGroups"][0]
    v6 = [(p["FromPort"], r["CidrIpv6"]) for p in group["IpPermissions"] for r in p.get("Ipv6Ranges", [])]
    v4 = [r["CidrIp"] for p in group["IpPermissions"] for r in p.get("IpRanges", [])]
    assert v6 == [(22, "2001:db8::/48")] and "2001:db8::/48" not in v4

    provider = services.provider_for(workspace)
    assert ("tcp", 22, 22, "2001:db8::/48") in {
        rule.key() for rule in provider.ingress_rules(workspace.security_group_id)
    }
    calls = []
    provider.ec2.meta.events.register("before-call.ec2", lambda model, **kw: calls.append(model.name))
    provider.set_ingress(workspace.security_group_id, services.ingress_for(workspace))
    assert calls == ["DescribeSecurityGroups"]  # in sync: nothing revoked, nothing added
