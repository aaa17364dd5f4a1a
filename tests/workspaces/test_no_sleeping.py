"""Workers never sleep waiting for the cloud: a task asks once, looks once, and hands the wait to the cloud
poller, whose ticks (scheduled, never slept for) look again."""

import dataclasses
import time

import pytest

from tests.workspaces.conftest import cloud_instances
from workspaces import cloud, services, tasks  # noqa: F401
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
def ticks(monkeypatch):
    """The countdowns of the poller's ticks as they are scheduled (eager tasks still run them at once)."""
    countdowns = []
    real = tasks.poll_cloud.apply_async

    def apply_async(args, countdown):
        countdowns.append(countdown)
        return real(args, countdown=countdown)

    monkeypatch.setattr(tasks.poll_cloud, "apply_async", apply_async)
    return countdowns


@pytest.fixture
def still_pending(monkeypatch):
    """The provider reports every instance as still `pending` (as EC2 does for a minute or so)."""
    real = cloud.AwsProvider.describe

    def describe(self, instance_ids):
        return {key: dataclasses.replace(info, state="pending") for key, info in real(self, instance_ids).items()}

    monkeypatch.setattr(cloud.AwsProvider, "describe", describe)
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail(f"a worker slept {seconds}s"))
    return monkeypatch


def test_a_launch_looks_once_and_hands_the_wait_to_the_poller(
    owner_client, project, account, ec2, settings, monkeypatch, retries, ticks, django_capture_on_commit_callbacks
):
    settings.CARREL_LAUNCH_POLL_SECONDS = 3
    real = cloud.AwsProvider.describe
    looks = []

    def describe(self, instance_ids):
        # The first look finds the instance still pending (as EC2 does for a while); later looks, running.
        looks.append(len(cloud_instances(ec2)))
        found = real(self, instance_ids)
        return {k: dataclasses.replace(v, state="pending") for k, v in found.items()} if len(looks) == 1 else found

    monkeypatch.setattr(cloud.AwsProvider, "describe", describe)
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail(f"a worker slept {seconds}s"))
    with django_capture_on_commit_callbacks(execute=True):
        body = launch(owner_client, project, "patient")
    assert retries.seen == []  # the launch task does not wait: the poller's tick looks again in 3 s
    assert ticks == [3]
    assert looks == [1, 1]  # launched once; the tick only looked
    assert Workspace.objects.get(pk=body["workspace_id"]).state == "running"
    job = ProvisionJob.objects.get(pk=body["job_id"])
    assert job.status == "succeeded" and job.attempts == 1 and job.lease_expires_at is None


def test_a_launch_that_never_runs_ends_in_launch_timeout(owner_client, project, account, ec2, settings, still_pending):
    settings.CARREL_LAUNCH_TIMEOUT_SECONDS = 0
    body = launch(owner_client, project, "never")
    tasks.provision_workspace.run(body["job_id"])
    workspace = Workspace.objects.get(pk=body["workspace_id"])
    job = ProvisionJob.objects.get(pk=body["job_id"])
    assert workspace.state == "error" and job.status == "failed" and job.error_code == "LAUNCH_TIMEOUT"


def test_a_stop_looks_once_and_hands_the_wait_to_the_poller(
    owner_client, project, account, ec2, settings, monkeypatch, retries, ticks, django_capture_on_commit_callbacks
):
    settings.CARREL_LAUNCH_POLL_SECONDS = 3
    body = launch(owner_client, project, "stopper")
    services.workspace_provision(job_id=body["job_id"])
    real_describe, real_stop = cloud.AwsProvider.describe, cloud.AwsProvider.stop
    looks, stops = [], []

    def describe(self, ids):
        # The first look after the stop finds the instance still stopping; later looks, stopped.
        looks.append(1)
        found = real_describe(self, ids)
        return {k: dataclasses.replace(v, state="stopping") for k, v in found.items()} if len(looks) == 1 else found

    def stop(self, *args, **kwargs):
        stops.append(args)
        return real_stop(self, *args, **kwargs)

    monkeypatch.setattr(cloud.AwsProvider, "describe", describe)
    monkeypatch.setattr(cloud.AwsProvider, "stop", stop)
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail(f"a worker slept {seconds}s"))
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(f"/api/v1/instances/{body['workspace_id']}/stop", {}, format="json")
    assert retries.seen == [] and ticks == [3]
    assert len(stops) == 1 and len(looks) == 2  # asked once; the tick only looked
    assert Workspace.objects.get(pk=body["workspace_id"]).state == "stopped"
