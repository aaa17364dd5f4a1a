"""A real Celery worker (a separate process, not eager mode) takes launches through the broker."""

import os
import signal
import time

import pytest

from tests.conftest import bearer_client
from tests.support import celery_worker, wait_until
from tests.workspaces.conftest import cloud_instances
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


def test_a_launch_whose_worker_is_killed_resumes_by_itself(owner, project, account, ec2, tmp_path):
    """SIGKILL a real worker mid-launch (after RunInstances, while the poller cannot see the instance); a
    new worker with beat, as the sandbox's supervisor or compose's `restart:` starts, finishes the launch
    within two minutes with nobody calling anything: the lease runs out, the launch sweep re-enqueues the
    job, the rerun hands the instance to the poller again, whose tick finishes the launch."""
    fast = {"CARREL_LAUNCH_LEASE_SECONDS": "10", "CARREL_LAUNCH_SWEEP_SECONDS": "5"}
    # The provider never tells the first worker's poller the instance is running: mid-launch when killed.
    with celery_worker(
        tmp_path / "first",
        CARREL_CLOUD_FAULTS="throttle:DescribeInstances:1000000",
        CARREL_CLOUD_MAX_ATTEMPTS="1",
        **fast,
    ) as first:
        body = launch(owner, project, "doomed-box")
        wait_until(lambda: len(cloud_instances(ec2)) == 1, what="RunInstances", log_path=tmp_path / "first/worker.log")
        wait_until(
            lambda: ProvisionJob.objects.get(pk=body["job_id"]).steps[2]["status"] == "done",
            what="the instance step",
            log_path=tmp_path / "first/worker.log",
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    assert Workspace.objects.get(pk=body["workspace_id"]).state == "launching"

    killed_at = time.monotonic()
    with celery_worker(tmp_path / "second", beat=True, **fast):
        wait_until(
            lambda: Workspace.objects.get(pk=body["workspace_id"]).state == "running",
            timeout=120,
            what="the launch to resume by itself",
            log_path=tmp_path / "second/worker.log",
        )
    assert time.monotonic() - killed_at < 120
    instances = cloud_instances(ec2)
    workspace = Workspace.objects.get(pk=body["workspace_id"])
    assert [i["InstanceId"] for i in instances] == [workspace.provider_instance_id]
    assert ProvisionJob.objects.get(pk=body["job_id"]).status == "succeeded"
    # Any path is the launch resuming by itself: the sweep re-enqueues the job once its lease runs out, or
    # a tick of the cloud poller (scheduled by the first worker, or by beat's poll sweep) finishes it.
    log = (tmp_path / "second/worker.log").read_text()
    assert "Resuming launch job" in log or "provision_workspace" in log or "poll_cloud" in log


def test_the_production_lease_and_sweep_resume_a_launch_within_two_minutes(settings):
    from workspaces.tasks import LAUNCH_MAX_BACKOFF

    # A live worker renews the lease up to its next retry, and every tick of the poller up to the next tick;
    # once they stop renewing it (a dead worker, a lost tick), the lease runs out and the next sweep takes the job.
    renewed_for = max(LAUNCH_MAX_BACKOFF, settings.CARREL_LAUNCH_POLL_SECONDS)
    worst_case = renewed_for + settings.CARREL_LAUNCH_LEASE_SECONDS + settings.CARREL_LAUNCH_SWEEP_SECONDS
    assert worst_case < 120
