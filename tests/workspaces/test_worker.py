"""A real Celery worker (a separate process, not eager mode) takes launches through the broker."""

import pytest

from tests.conftest import bearer_client
from tests.support import celery_worker, wait_until
from tests.workspaces.conftest import cloud_instances
from workspaces import services
from workspaces.models import ProvisionJob, Workspace

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def launch(owner, project, name):
    response = bearer_client(owner).post(
        "/api/v1/instances/launch",
        {"name": name, "template": "Ubuntu 24.04 Base", "project": project.id},
        format="json",
    )
    assert response.status_code == 202, response.content
    return response.json()


def test_a_real_worker_takes_a_launch_from_launching_to_running(owner, project, account, ec2, tmp_path):
    with celery_worker(tmp_path):
        body = launch(owner, project, "worker-box")
        assert body["state"] == "launching"
        wait_until(
            lambda: Workspace.objects.get(pk=body["workspace_id"]).state == "running",
            what="the worker to finish the launch",
            log_path=tmp_path / "worker.log",
        )
    job = ProvisionJob.objects.get(pk=body["job_id"])
    assert job.status == "succeeded" and job.progress == 100 and job.attempts == 1
    instances = cloud_instances(ec2)
    assert [i["InstanceId"] for i in instances] == [Workspace.objects.get(pk=body["workspace_id"]).provider_instance_id]
    assert "provision_workspace" in (tmp_path / "worker.log").read_text()


def test_a_worker_killed_after_run_instances_leaves_one_instance_which_is_adopted(
    owner, project, account, ec2, tmp_path, settings
):
    with celery_worker(tmp_path, CARREL_CLOUD_FAULTS="exit-after:RunInstances") as worker:
        body = launch(owner, project, "doomed-box")
        wait_until(lambda: worker.poll() is not None, what="the worker to die", log_path=tmp_path / "worker.log")
    assert worker.returncode != 0
    workspace = Workspace.objects.get(pk=body["workspace_id"])
    assert workspace.state == "launching" and workspace.provider_instance_id == ""  # it died before recording
    assert len(cloud_instances(ec2)) == 1

    # The message is redelivered (acks_late) or the reconciler re-enqueues the stale launch: either way the
    # task runs again, finds the tagged instance and adopts it.
    settings.CARREL_LAUNCH_POLL_SECONDS = 10
    services.workspace_provision(job_id=body["job_id"])
    workspace.refresh_from_db()
    instances = cloud_instances(ec2)
    assert len(instances) == 1
    assert workspace.state == "running" and workspace.provider_instance_id == instances[0]["InstanceId"]
