"""Workspace tests talk to a real moto server over HTTP through the production boto3 code."""

import os
from dataclasses import dataclass, field

import boto3
import pytest
from celery.signals import task_retry

from platform_site.celery import app as celery_app
from templates.services import template_catalog_load
from workspaces.models import CloudAccount
from workspaces.moto_server import SANDBOX_AWS_ENV, sandbox_image_id, start_moto_server

for key, value in SANDBOX_AWS_ENV.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def moto():
    server = start_moto_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_image(moto):
    return sandbox_image_id(moto.url)


@pytest.fixture
def cloud(moto):
    """A fresh cloud for each test."""
    moto.reset()
    return moto


@pytest.fixture
def ec2(cloud):
    return boto3.client(
        "ec2",
        endpoint_url=cloud.url,
        region_name="us-east-1",
        aws_access_key_id=SANDBOX_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SANDBOX_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def catalog(db):
    template_catalog_load()


@pytest.fixture
def account(org, cloud, moto_image, catalog) -> CloudAccount:
    return CloudAccount.objects.create(
        organization=org,
        name="sandbox",
        region="us-east-1",
        endpoint_url=cloud.url,
        image_overrides={"*": moto_image},
        is_default=True,
    )


@pytest.fixture
def eager_tasks(settings):
    """Run Celery tasks in-process when their on-commit callbacks fire (not a substitute for the worker test)."""
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


def cloud_instances(ec2, states=("pending", "running", "stopping", "stopped")) -> list[dict]:
    reservations = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": list(states)}])
    return [instance for reservation in reservations["Reservations"] for instance in reservation["Instances"]]


@dataclass
class Retry:
    task: str
    countdown: int
    why: str  # the error retried, or empty when the task only looks again later


@dataclass
class Retries:
    seen: list[Retry] = field(default_factory=list)
    then: object = None  # called at each retry, e.g. to let the provider recover

    @property
    def countdowns(self) -> list[int]:
        return [retry.countdown for retry in self.seen]


@pytest.fixture
def retries(eager_tasks):
    # Eager tasks keep their failures in the result instead of raising, as a worker would.
    celery_app.conf.task_eager_propagates = False
    recorded = Retries()

    def on_retry(sender=None, reason=None, **kwargs):
        why = str(reason.exc) if reason.exc is not None else ""
        recorded.seen.append(Retry(task=sender.name.rsplit(".", 1)[-1], countdown=reason.when, why=why))
        if recorded.then is not None:
            recorded.then()

    task_retry.connect(on_retry, weak=False)
    yield recorded
    task_retry.disconnect(on_retry)
