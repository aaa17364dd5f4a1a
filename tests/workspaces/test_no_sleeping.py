"""Workers never sleep waiting for the cloud: a task looks once and schedules itself to look again."""

import dataclasses
import time

import pytest
from celery.exceptions import Retry

from tests.workspaces.conftest import cloud_instances
from workspaces import cloud, services, tasks
from workspaces.models import ProvisionJob, Workspace


def launch(client, project, name):
    response = client.post(
        "/api/v1/instances/launch",
        {"name": name, "template": "Ubuntu 24.04 Base", "project": project.id},
        format="json",
    )
    assert response.status_code == 202, response.content
    return response.json()


@pytest.fixture
def still_pending(monkeypatch):
    """The provider reports every instance as still `pending` (as EC2 does for a minute or so)."""
    real = cloud.AwsProvider.describe

    def describe(self, instance_ids):
        return {key: dataclasses.replace(info, state="pending") for key, info in real(self, instance_ids).items()}

    monkeypatch.setattr(cloud.AwsProvider, "describe", describe)
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail(f"a worker slept {seconds}s"))
    return monkeypatch


def test_a_launch_looks_once_and_schedules_the_next_look(owner_client, project, account, ec2, settings, still_pending):
    settings.CARREL_LAUNCH_POLL_SECONDS = 3
    body = launch(owner_client, project, "patient")
    scheduled = []
    still_pending.setattr(
        tasks.provision_workspace, "retry", lambda **kw: scheduled.append((kw["countdown"], kw["kwargs"])) or Retry()
    )
    started = time.monotonic()
    with pytest.raises(Retry):
        tasks.provision_workspace.run(body["job_id"])
    assert time.monotonic() - started < 5
    assert scheduled == [(3, {"errors": 0})]
    assert len(cloud_instances(ec2)) == 1  # launched once; the next run only looks
    job = ProvisionJob.objects.get(pk=body["job_id"])
    assert job.status == "running" and job.lease_expires_at is not None

    with pytest.raises(Retry):
        tasks.provision_workspace.run(body["job_id"])  # still pending: looks again, launches nothing
    assert len(cloud_instances(ec2)) == 1
    assert ProvisionJob.objects.get(pk=body["job_id"]).attempts == 1

    still_pending.undo()
    tasks.provision_workspace.run(body["job_id"])
    assert Workspace.objects.get(pk=body["workspace_id"]).state == "running"


def test_a_launch_that_never_runs_ends_in_launch_timeout(owner_client, project, account, ec2, settings, still_pending):
    settings.CARREL_LAUNCH_TIMEOUT_SECONDS = 0
    body = launch(owner_client, project, "never")
    tasks.provision_workspace.run(body["job_id"])
    workspace = Workspace.objects.get(pk=body["workspace_id"])
    job = ProvisionJob.objects.get(pk=body["job_id"])
    assert workspace.state == "error" and job.status == "failed" and job.error_code == "LAUNCH_TIMEOUT"


def test_a_stop_looks_once_and_schedules_the_next_look(owner_client, project, account, ec2, settings, monkeypatch):
    settings.CARREL_LAUNCH_POLL_SECONDS = 3
    body = launch(owner_client, project, "stopper")
    services.workspace_provision(job_id=body["job_id"])
    workspace = Workspace.objects.get(pk=body["workspace_id"])
    services.record_transition(workspace=workspace, to_state="stopping", expected_from=["running"], reason="stop")
    real = cloud.AwsProvider.describe
    monkeypatch.setattr(
        cloud.AwsProvider,
        "describe",
        lambda self, ids: {k: dataclasses.replace(v, state="stopping") for k, v in real(self, ids).items()},
    )
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail(f"a worker slept {seconds}s"))
    scheduled = []
    monkeypatch.setattr(tasks.drive_workspace, "retry", lambda **kw: scheduled.append(kw["kwargs"]) or Retry())
    with pytest.raises(Retry):
        tasks.drive_workspace.run(workspace.pk, "stop")
    assert scheduled == [{"issued": True, "errors": 0}]
    monkeypatch.undo()
    tasks.drive_workspace.run(workspace.pk, "stop", issued=True)
    assert Workspace.objects.get(pk=workspace.pk).state == "stopped"
