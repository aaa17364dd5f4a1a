"""A launch may set its TTL (`ttl_hours`), within the platform's, the project's and the template's limits."""

import pytest
from django.utils import timezone

from tests.conftest import assert_error
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def launch(client, project, **extra):
    body = {"name": "ttl-box", "template": "Ubuntu 24.04 Base", "size": "S", "project": project.pk, **extra}
    return client.post("/api/v1/instances/launch", body, format="json")


def test_it_launches_with_a_ttl(owner_client, project, account):
    response = launch(owner_client, project, ttl_hours=3)
    assert response.status_code == 202, response.json()
    expires = Workspace.objects.get(name="ttl-box").expires_at
    assert 2.9 < (expires - timezone.now()).total_seconds() / 3600 <= 3
    assert owner_client.get("/api/v1/instances/ttl-box").json()["expires_at"] is not None


def test_it_launches_without_a_ttl_by_default(owner_client, project, account):
    assert launch(owner_client, project).status_code == 202
    assert Workspace.objects.get(name="ttl-box").expires_at is None


def test_it_refuses_a_ttl_over_the_projects_limit_and_creates_nothing(owner_client, project, account):
    project.max_ttl_hours = 4
    project.save(update_fields=["max_ttl_hours"])
    error = assert_error(launch(owner_client, project, ttl_hours=5), 400, "TTL_LIMIT_EXCEEDED")
    assert "4 hours" in error["message"]
    assert not Workspace.objects.filter(name="ttl-box").exists()


def test_it_refuses_a_ttl_over_the_platforms_limit(owner_client, project, account):
    assert_error(launch(owner_client, project, ttl_hours=169), 400, "TTL_LIMIT_EXCEEDED")
    assert_error(launch(owner_client, project, ttl_hours=-1), 400, "VALIDATION_ERROR")
