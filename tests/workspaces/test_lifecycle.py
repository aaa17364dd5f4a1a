"""Each lifecycle action through the API changes the instance in the (moto) cloud and the workspace row,
and every change is a transition row with its time and rate."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from budgets import ledger
from budgets.models import CostEntry
from tests.conftest import assert_error
from tests.workspaces.conftest import cloud_instances
from workspaces.models import ProvisionJob, StateTransition, Workspace


@pytest.fixture
def launched(owner_client, project, account, eager_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/api/v1/instances/launch",
            {"name": "ml-box", "template": "Python Machine Learning", "size": "S", "project": project.id},
            format="json",
        )
    assert response.status_code == 202, response.content
    return Workspace.objects.get(name="ml-box")


def act(client, captures, name, action, **body):
    with captures(execute=True):
        return client.post(f"/api/v1/instances/{name}/{action}", body, format="json")


def test_it_launches_through_a_job_into_a_running_instance(launched, ec2, owner_client):
    workspace = launched
    assert workspace.state == "running"
    instance = ec2.describe_instances(InstanceIds=[workspace.provider_instance_id])["Reservations"][0]["Instances"][0]
    assert instance["State"]["Name"] == "running"
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert tags["carrel:workspace-id"] == workspace.pk
    assert tags["carrel:project"] == workspace.project_id
    assert tags["carrel:owner"] == "owner@lab-a.example"
    assert tags["carrel:template"] == "Python Machine Learning"
    assert instance["InstanceType"] == workspace.instance_type == "c5.xlarge"  # compute workload, size S
    assert instance["HibernationOptions"]["Configured"] is True
    assert instance["SecurityGroups"][0]["GroupId"] == workspace.security_group_id
    assert workspace.public_ip == instance["PublicIpAddress"]

    job = ProvisionJob.objects.get(workspace=workspace)
    assert job.status == "succeeded" and job.progress == 100
    assert [step["status"] for step in job.steps] == ["done"] * 4
    body = owner_client.get(f"/api/v1/jobs/{job.pk}").json()
    assert body["progress"] == 100 and body["state"] == "running"

    transitions = list(StateTransition.objects.filter(workspace=workspace).values_list("from_state", "to_state"))
    assert transitions == [("pending", "launching"), ("launching", "running")]
    assert all(t.hourly_rate == Decimal("0.1700") for t in StateTransition.objects.filter(workspace=workspace))


def test_the_launch_answer_follows_prism(owner_client, project, account):
    response = owner_client.post(
        "/api/v1/instances/launch",
        {"name": "gpu-box", "template": "GPU Deep Learning", "project": project.id},
        format="json",
    )
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "launching"
    assert body["name"] == "gpu-box"
    assert body["hourly_rate"] == 0.752  # g4dn.2xlarge, size S on the gpu ladder, us-east-1
    assert body["launch_progress"] == 0
    assert body["estimated_ready_time"] and body["job_id"].startswith("job_")


def test_stop_start_hibernate_resume_terminate(launched, owner_client, ec2, django_capture_on_commit_callbacks):
    captures = django_capture_on_commit_callbacks
    instance_id = launched.provider_instance_id

    def cloud_state():
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]

    response = act(owner_client, captures, "ml-box", "stop")
    assert response.status_code == 202
    # The answer describes the request (the task finished the stop after the answer was made).
    assert response.json() == {
        "name": "ml-box",
        "previous_state": "running",
        "new_state": "stopping",
        "state": "stopping",
        "message": "Workspace stopping - all data preserved",
    }
    assert cloud_state() == "stopped"
    assert Workspace.objects.get(pk=launched.pk).state == "stopped"

    assert act(owner_client, captures, "ml-box", "start").json()["new_state"] == "starting"
    assert cloud_state() == "running"
    assert Workspace.objects.get(pk=launched.pk).state == "running"

    hibernate = act(owner_client, captures, "ml-box", "hibernate").json()
    assert hibernate["new_state"] == "hibernating" and hibernate["hibernation_supported"] is True
    assert cloud_state() == "stopped"
    assert Workspace.objects.get(pk=launched.pk).state == "hibernated"
    status = owner_client.get("/api/v1/instances/ml-box/hibernation-status").json()
    assert status["current_state"] == "hibernated" and status["hibernation_time"]

    assert act(owner_client, captures, "ml-box", "resume").json()["new_state"] == "resuming"
    assert cloud_state() == "running"

    assert_error(act(owner_client, captures, "ml-box", "terminate"), 400, "VALIDATION_ERROR")
    assert_error(act(owner_client, captures, "ml-box", "terminate", confirm="yes"), 400, "CONFIRMATION_REQUIRED")
    assert act(owner_client, captures, "ml-box", "terminate", confirm="DELETE").json()["new_state"] == "terminating"
    assert cloud_state() == "terminated"
    workspace = Workspace.objects.get(pk=launched.pk)
    assert workspace.state == "terminated"
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"carrel-{workspace.pk}"]}])
    assert groups["SecurityGroups"] == []

    rows = list(StateTransition.objects.filter(workspace=workspace).order_by("created_at", "id"))
    assert [(row.from_state, row.to_state) for row in rows] == [
        ("pending", "launching"),
        ("launching", "running"),
        ("running", "stopping"),
        ("stopping", "stopped"),
        ("stopped", "starting"),
        ("starting", "running"),
        ("running", "hibernating"),
        ("hibernating", "hibernated"),
        ("hibernated", "resuming"),
        ("resuming", "running"),
        ("running", "terminating"),
        ("terminating", "terminated"),
    ]
    billed = {"launching", "running", "starting", "hibernating", "resuming"}  # stopping: only hibernating is billed
    for row in rows:
        assert row.created_at is not None
        assert row.instance_type == "c5.xlarge"
        assert row.hourly_rate == (Decimal("0.1700") if row.to_state in billed else Decimal("0"))
    assert [row.created_at for row in rows] == sorted(row.created_at for row in rows)
    assert rows[2].actor.email == "owner@lab-a.example"
    assert rows[3].actor is None  # the provider, not a person, completed the stop


def test_disallowed_transitions_answer_409(launched, owner_client, django_capture_on_commit_callbacks):
    captures = django_capture_on_commit_callbacks
    assert act(owner_client, captures, "ml-box", "start").status_code == 200  # already running: harmless
    assert_error(act(owner_client, captures, "ml-box", "resume"), 409, "INVALID_STATE")
    act(owner_client, captures, "ml-box", "stop")
    assert_error(act(owner_client, captures, "ml-box", "hibernate"), 409, "INVALID_STATE")
    assert_error(act(owner_client, captures, "ml-box", "resume"), 409, "INVALID_STATE")


def test_repeating_an_action_already_done_is_harmless(launched, owner_client, django_capture_on_commit_callbacks):
    captures = django_capture_on_commit_callbacks
    act(owner_client, captures, "ml-box", "stop")
    count = StateTransition.objects.count()
    again = act(owner_client, captures, "ml-box", "stop")
    assert again.status_code == 200
    assert again.json()["new_state"] == "stopped"
    assert StateTransition.objects.count() == count


def test_hibernation_not_supported_answers_409(
    owner_client, project, account, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            "/api/v1/instances/launch",
            {"name": "big", "template": "Ubuntu 24.04 Base", "instance_type": "g5.xlarge", "project": project.id},
            format="json",
        )
    assert Workspace.objects.get(name="big").hibernation_capable is False
    error = assert_error(act(owner_client, django_capture_on_commit_callbacks, "big", "hibernate"), 409)
    assert error["code"] == "HIBERNATION_NOT_SUPPORTED"


def test_patch_renames_and_resizes_only_while_stopped(launched, owner_client, ec2, django_capture_on_commit_callbacks):
    captures = django_capture_on_commit_callbacks
    renamed = owner_client.patch("/api/v1/instances/ml-box", {"name": "ml-box-2"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "ml-box-2"
    assert_error(owner_client.patch("/api/v1/instances/ml-box-2", {"size": "L"}, format="json"), 409, "INVALID_STATE")
    act(owner_client, captures, "ml-box-2", "stop")
    with captures(execute=True):
        resized = owner_client.patch(
            "/api/v1/instances/ml-box-2", {"configuration": {"cpuCores": 16, "memoryGB": 32}}, format="json"
        )
    assert resized.status_code == 202 and resized.json()["state"] == "resizing"
    new_type = Workspace.objects.get(name="ml-box-2").instance_type
    assert new_type != "c5.xlarge"
    instance_id = Workspace.objects.get(name="ml-box-2").provider_instance_id
    attribute = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceType")
    assert attribute["InstanceType"]["Value"] == new_type
    act(owner_client, captures, "ml-box-2", "start")
    last = StateTransition.objects.filter(workspace__name="ml-box-2").order_by("-created_at", "-id").first()
    assert last.instance_type == new_type and last.to_state == "running"


def test_sysinfo_connect_and_extend(launched, owner_client):
    sysinfo = owner_client.get("/api/v1/instances/ml-box/sysinfo").json()
    assert sysinfo["cpu"]["cores"] == 4 and sysinfo["memory"]["total_gb"] == 8
    connect = owner_client.get("/api/v1/instances/ml-box/connect").json()
    assert connect["ssh"]["user"] == "ubuntu"
    assert connect["ssh"]["command"] == f"ssh ubuntu@{launched.public_ip}"
    assert connect["services"]["jupyter"]["url"] == f"http://{launched.public_ip}:8888"
    assert owner_client.post("/api/v1/instances/ml-box/extend", {}, format="json").status_code == 204
    expires = Workspace.objects.get(pk=launched.pk).expires_at
    assert timedelta(hours=3, minutes=59) < expires - timezone.now() <= timedelta(hours=4)
    owner_client.post("/api/v1/instances/ml-box/extend", {"hours": 2}, format="json")
    assert Workspace.objects.get(pk=launched.pk).expires_at - expires == timedelta(hours=2)


def test_ttl_expiry_stops_the_workspace(launched, ec2, django_capture_on_commit_callbacks):
    from workspaces.tasks import stop_expired_workspaces

    Workspace.objects.filter(pk=launched.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        stop_expired_workspaces()
    workspace = Workspace.objects.get(pk=launched.pk)
    assert workspace.state == "stopped"
    assert cloud_instances(ec2, states=["stopped"])[0]["InstanceId"] == workspace.provider_instance_id
    assert StateTransition.objects.filter(workspace=workspace, to_state="stopping", reason="TTL expired").exists()


def test_console_logs(launched, owner_client):
    assert owner_client.get("/api/v1/logs").json()["instances"][0]["log_types"] == ["console"]
    assert owner_client.get("/api/v1/logs/ml-box/types").json()["types"][0]["type"] == "console"
    log = owner_client.get("/api/v1/logs/ml-box", {"type": "console", "tail": 2}).json()
    assert len(log["lines"]) == 2
    assert_error(owner_client.get("/api/v1/logs/ml-box", {"type": "kernel"}), 400, "UNKNOWN_LOG_TYPE")


def test_the_list_filters_and_keeps_its_query_count_for_1000_workspaces(
    launched, owner_client, project, owner, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert [w["name"] for w in owner_client.get("/api/v1/instances").json()] == ["ml-box"]
    extra = Workspace.objects.bulk_create(
        Workspace(
            organization=project.organization,
            project=project,
            owner=owner,
            name=f"extra-{index}",
            state="stopped",
            cloud_account=launched.cloud_account,
            instance_type="t3.medium",
            hourly_rate=Decimal("0.0416"),
        )
        for index in range(999)
    )
    StateTransition.objects.bulk_create(
        StateTransition(workspace=w, from_state="", to_state="stopped", hourly_rate=Decimal("0")) for w in extra
    )
    ProvisionJob.objects.bulk_create(ProvisionJob(workspace=w) for w in extra)
    # Each has ledger rows too: its cost is summed in SQL for the whole page, never per row.
    costs = CostEntry.objects.bulk_create(
        CostEntry(
            organization=project.organization,
            workspace=w,
            project=project,
            kind="compute",
            item="t3.medium",
            start=w.created_at,
            end=w.created_at,
            day=w.created_at.date(),
            quantity=Decimal(3600),
            unit="seconds",
            rate=Decimal("0.0416"),
            amount=Decimal("0.0416"),
        )
        for w in extra
    )
    ledger.roll_up(costs)  # as the ledger keeps its totals
    with django_assert_max_num_queries(len(one)):
        response = owner_client.get("/api/v1/instances", {"page_size": 500})
    assert len(response.json()) == 500 and response["X-Total-Count"] == "1000"
    assert {w["current_spend"] for w in response.json() if w["name"] != "ml-box"} == {0.0416}
    with django_assert_max_num_queries(len(one)):
        assert len(owner_client.get("/api/v1/instances", {"page": 2, "page_size": 500}).json()) == 500
    assert [w["name"] for w in owner_client.get("/api/v1/instances", {"state": "running"}).json()] == ["ml-box"]
    assert len(owner_client.get("/api/v1/instances", {"template": "Python Machine Learning"}).json()) == 1
    assert owner_client.get("/api/v1/instances", {"owner": owner.email})["X-Total-Count"] == "1000"
    assert owner_client.get("/api/v1/instances", {"project": project.name})["X-Total-Count"] == "1000"


def test_admin_actions_go_through_the_same_services(launched, ec2, django_capture_on_commit_callbacks):
    from django.test import Client
    from django.urls import reverse

    from tests.conftest import make_user

    admin_user = make_user("root@carrel.example")
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    browser = Client()
    browser.force_login(admin_user)
    url = reverse("admin:workspaces_workspace_changelist")
    assert browser.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(url, {"action": "hibernate_selected", "_selected_action": [launched.pk]})
    assert response.status_code == 302
    assert Workspace.objects.get(pk=launched.pk).state == "hibernated"
    assert cloud_instances(ec2, states=["stopped"])[0]["InstanceId"] == launched.provider_instance_id
    transition = StateTransition.objects.get(workspace=launched, to_state="hibernating")
    assert transition.actor == admin_user and transition.reason == "admin action"
