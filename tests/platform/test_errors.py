"""Every error under /api/ answers with the one envelope and a stable code."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import assert_error
from workspaces.models import Workspace


def test_it_lists_fields_on_validation_errors(owner_client, org):
    error = assert_error(owner_client.post("/api/v1/projects", {"description": 3}, format="json"), 400)
    assert error["code"] == "VALIDATION_ERROR"
    assert error["fields"]["name"] == ["This field is required."]
    assert "name" in error["details"]


def test_it_reports_malformed_json(owner_client, org):
    response = owner_client.post("/api/v1/projects", data="{not json", content_type="application/json")
    assert_error(response, 400, "PARSE_ERROR")


def test_it_answers_401_with_a_bearer_challenge(db):
    error = assert_error(APIClient().get("/api/v1/projects"), 401, "AUTHENTICATION_REQUIRED")
    assert error["remediation"]


def test_401_carries_www_authenticate(db):
    response = APIClient().get("/api/v1/projects")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_answers_403_for_a_forbidden_action(org, project, owner):
    from accounts.models import OrgRole
    from projects.models import ProjectMember, ProjectRole
    from tests.conftest import add_org_member, bearer_client, make_user

    viewer = make_user("viewer@lab-a.example")
    add_org_member(org, viewer, OrgRole.MEMBER)
    ProjectMember.objects.create(project=project, user=viewer, role=ProjectRole.VIEWER)
    response = bearer_client(viewer).delete(f"/api/v1/projects/{project.id}")
    assert_error(response, 403, "PERMISSION_DENIED")


def test_it_answers_404_for_objects_and_unknown_routes(owner_client):
    assert_error(owner_client.get("/api/v1/projects/proj_doesnotexist"), 404, "PROJECT_NOT_FOUND")
    assert_error(owner_client.get("/api/v1/no/such/route"), 404, "ROUTE_NOT_FOUND")
    assert_error(APIClient().get("/api/v2/projects"), 404, "ROUTE_NOT_FOUND")


def test_it_answers_405(owner_client):
    assert_error(owner_client.put("/api/v1/tokens", {}, format="json"), 405, "METHOD_NOT_ALLOWED")


def test_it_answers_409(owner_client, project, owner):
    Workspace.objects.create(
        organization=project.organization, project=project, owner=owner, name="ws", state="stopped"
    )
    error = assert_error(owner_client.delete(f"/api/v1/projects/{project.id}"), 409, "PROJECT_HAS_LIVE_WORKSPACES")
    assert error["remediation"]


@override_settings(CARREL_RATE_LIMITS={"token": "2/minute", "user": "2/minute", "ip": "2/minute"})
def test_it_answers_429(owner_client):
    owner_client.get("/api/v1/me/profile")
    owner_client.get("/api/v1/me/profile")
    response = owner_client.get("/api/v1/me/profile")
    assert_error(response, 429, "RATE_LIMITED")
    assert int(response["Retry-After"]) >= 1


def test_it_answers_500_without_leaking_the_exception(owner_client, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("projects.api.selectors.projects_for", explode)
    response = owner_client.get("/api/v1/projects")
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret internals" not in response.content.decode()
    assert error["request_id"].startswith("req_")


def test_it_keeps_a_callers_request_id(owner_client):
    response = owner_client.get("/api/v1/nowhere", HTTP_X_REQUEST_ID="trace-abc-12345")
    assert response["X-Request-ID"] == "trace-abc-12345"
    assert response.json()["error"]["request_id"] == "trace-abc-12345"


@pytest.mark.parametrize("path", ["/api/v1/projects", "/api/v1/tokens"])
def test_session_writes_need_csrf(owner, path):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    assert_error(client.post(path, {"name": "x"}, format="json"), 403, "CSRF_FAILED")
