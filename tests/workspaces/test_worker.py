"""A real Celery worker (a separate process, not eager mode) takes launches through the broker."""

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import bearer_client
from tests.workspaces.conftest import cloud_instances
from workspaces import services
from workspaces.models import ProvisionJob, Workspace
from workspaces.moto_server import SANDBOX_AWS_ENV

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def celery_worker(tmp_path, **extra_env):
    env = {
        **os.environ,
        **SANDBOX_AWS_ENV,
        "DJANGO_SETTINGS_MODULE": "platform_site.settings.test",
        "DATABASE_URL": database_url(),
        "CARREL_LAUNCH_POLL_SECONDS": "10",
        **extra_env,
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "platform_site",
            "worker",
            "--pool",
            "solo",
            "-l",
            "info",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def wait_until(predicate, timeout: float = 60, what: str = "condition", log_path=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    log = log_path.read_text()[-4000:] if log_path and log_path.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{log}")


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
