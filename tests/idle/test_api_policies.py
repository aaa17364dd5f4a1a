"""The idle policies API: profiles, a workspace's idle state and settings, snooze, warnings, history and a
project's default, each for the owner, a member, a viewer and an outsider."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from idle.models import IdleEvent, IdleProfile, ProjectIdlePolicy, WorkspaceIdle
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_user
from tests.idle.policy_support import idle_workspace, quiet_for, warned
from workspaces.models import StateTransition

pytestmark = pytest.mark.django_db


def _person(org, project, email: str, role: str | None):
    user = make_user(email)
    add_org_member(org, user)
    if role:
        ProjectMember.objects.create(project=project, user=user, role=role)
    return user


@pytest.fixture
def member(org, project):
    return _person(org, project, "member@lab-a.example", ProjectRole.MEMBER)


@pytest.fixture
def viewer(org, project):
    return _person(org, project, "viewer@lab-a.example", ProjectRole.VIEWER)


@pytest.fixture
def box(project, member):
    """The member's running workspace, launched with the standard profile."""
    return idle_workspace(project, member, "box")


# --- Profiles --------------------------------------------------------------------------------------------------


def test_it_lists_the_builtin_profiles_as_the_seed_shows_them(owner_client):
    response = owner_client.get("/api/v1/idle/profiles")
    assert response.status_code == 200
    profiles = {profile["name"]: profile for profile in response.json()}
    assert set(profiles) == {"standard", "batch", "gpu"}
    assert profiles["batch"] | {"builtin": True} == profiles["batch"]
    assert profiles["batch"]["description"] == "Long-running research jobs"
    assert (profiles["batch"]["idle_threshold_minutes"], profiles["batch"]["action"]) == (60, "hibernate")
    assert profiles["batch"]["memory_threshold"] == 10.0 and profiles["batch"]["network_threshold"] == 1024
    assert (profiles["gpu"]["idle_threshold_minutes"], profiles["gpu"]["action"]) == (15, "stop")
    assert profiles["gpu"]["cpu_threshold"] == 10.0 and profiles["gpu"]["gpu_threshold"] == 10.0
    assert profiles["gpu"]["disk_threshold"] is None


def test_it_creates_an_organization_profile_that_only_its_members_see(owner_client, outsider_client, org):
    body = {
        "name": "cost-optimized",
        "description": "Maximum cost savings",
        "idle_threshold_minutes": 10,
        "action": "hibernate",
        "cpu_threshold": 2.0,
        "memory_threshold": 5.0,
        "network_threshold": 512,
        "disk_threshold": 1024,
        "gpu_threshold": 2.0,
    }
    response = owner_client.post("/api/v1/idle/profiles", body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created | body == created and created["builtin"] is False and created["organization"] == org.pk
    assert AuditEvent.objects.filter(action="idle_profile.create", organization=org).exists()
    assert "cost-optimized" in [p["name"] for p in owner_client.get("/api/v1/idle/profiles").json()]
    assert "cost-optimized" not in [p["name"] for p in outsider_client.get("/api/v1/idle/profiles").json()]


def test_it_lets_only_organization_owners_and_admins_create_profiles(org, project, member, outsider_client):
    body = {"name": "quiet", "idle_threshold_minutes": 30, "organization": org.pk}
    assert_error(bearer_client(member).post("/api/v1/idle/profiles", body, format="json"), 403, "PERMISSION_DENIED")
    assert_error(outsider_client.post("/api/v1/idle/profiles", body, format="json"), 404, "ORGANIZATION_NOT_FOUND")
    assert not IdleProfile.objects.exists()


def test_it_refuses_a_taken_or_builtin_name_and_thresholds_out_of_bounds(owner_client, org):
    def post(**fields):
        return owner_client.post("/api/v1/idle/profiles", {"idle_threshold_minutes": 30, **fields}, format="json")

    first = post(name="quiet")
    assert first.status_code == 201, first.content
    assert_error(post(name="quiet"), 409, "NAME_TAKEN")
    assert_error(post(name="gpu"), 409, "NAME_TAKEN")
    error = assert_error(post(name="hot", cpu_threshold=150), 400, "VALIDATION_ERROR")
    assert "cpu_threshold" in error["fields"]
    assert_error(post(name="never", idle_threshold_minutes=0), 400, "VALIDATION_ERROR")
    assert_error(post(name="words", cpu_threshold="5"), 400, "VALIDATION_ERROR")
    assert IdleProfile.objects.count() == 1


# --- A workspace's idle state ----------------------------------------------------------------------------------


def test_it_shows_settings_verdict_and_the_latest_usage_per_core(box, member):
    quiet_for(box, 20, cpu_percent=[1.0] * 15 + [3.5], gpu_percent=[0.0, 2.0], sessions=0)
    response = bearer_client(member).get(f"/api/v1/idle/instances/{box.name}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["settings"]["profile"] == "standard" and body["settings"]["enabled"] is True
    assert body["settings"]["idle_threshold_minutes"] == 60 and body["settings"]["warning_minutes"] == 10
    verdict = body["verdict"]
    assert verdict["idle"] is False and verdict["why_not"] == "quiet for less than the window"
    assert 20 * 60 - 5 <= verdict["idle_for_seconds"] <= 20 * 60 + 5
    assert verdict["action"] == "hibernate" and verdict["warned_at"] is None
    # Quiet for 20 of 60 minutes: warned at 50, acted on at 60.
    action_at = datetime.fromisoformat(verdict["action_at"])
    assert abs((action_at - timezone.now()).total_seconds() - 40 * 60) < 10
    usage = body["usage"]
    assert usage["source"] == "agent" and len(usage["cpu_percent"]) == 16 and max(usage["cpu_percent"]) == 3.5
    assert usage["gpu_percent"] == [0.0, 2.0] and usage["sessions"] == 0 and usage["busy"] is False


def test_it_says_why_a_workspace_without_data_is_not_idle(box, member):
    body = bearer_client(member).get(f"/api/v1/idle/instances/{box.pk}").json()
    assert body["verdict"]["why_not"] == "no data" and body["verdict"]["idle_for_seconds"] is None
    assert body["usage"] is None


def test_sysinfo_gains_the_latest_usage_and_the_idle_verdict(box, member):
    quiet_for(box, 5, cpu_percent=[90.0, 1.0], sessions=2, busy=True, busy_reasons=["keep-alive: python train.py"])
    WorkspaceIdle.objects.filter(workspace=box).update(
        last_active_at=timezone.now(), active_reasons=["cpu", "sessions", "busy"]
    )
    response = bearer_client(member).get(f"/api/v1/instances/{box.name}/sysinfo")
    assert response.status_code == 200
    body = response.json()
    assert body["cpu"]["cores"] == 2  # t3.medium: the instance type's figures are still there
    assert body["usage"]["cpu_percent"] == [90.0, 1.0] and body["usage"]["sessions"] == 2
    assert body["usage"]["busy_reasons"] == ["keep-alive: python train.py"] and body["usage"]["measured_at"]
    assert body["idle"]["settings"]["profile"] == "standard"
    assert body["idle"]["verdict"]["active_reasons"] == ["cpu", "sessions", "busy"]
    assert body["idle"]["verdict"]["idle"] is False


def test_an_outsider_gets_404_on_every_workspace_route(box, outsider_client):
    for method, suffix in (("get", ""), ("post", "/configure"), ("post", "/snooze")):
        response = getattr(outsider_client, method)(f"/api/v1/idle/instances/{box.pk}{suffix}", {}, format="json")
        assert_error(response, 404, "INSTANCE_NOT_FOUND")


# --- Configure -------------------------------------------------------------------------------------------------


def test_it_configures_a_workspace_and_restarts_its_window(box, member):
    quiet_for(box, 55)
    warned(box)
    before = WorkspaceIdle.objects.get(workspace=box)
    response = bearer_client(member).post(
        f"/api/v1/idle/instances/{box.name}/configure",
        {"profile": "batch", "idle_threshold_minutes": 120, "disk_threshold": 2048},
        format="json",
    )
    assert response.status_code == 200, response.content
    state = WorkspaceIdle.objects.get(workspace=box)
    assert state.profile == "batch" and state.idle_threshold_minutes == 120
    assert state.memory_threshold == 10.0 and state.network_threshold == 1024  # batch's
    assert state.disk_threshold == 2048
    assert state.warned_at is None and state.configured_at > before.configured_at
    body = response.json()
    assert body["verdict"]["warned_at"] is None and body["verdict"]["idle_for_seconds"] < 5
    event = AuditEvent.objects.get(action="workspace.idle_configure", target_id=box.pk)
    assert event.metadata["changed"]["profile"] == ["standard", "batch"]


def test_a_null_threshold_is_no_longer_judged_and_what_is_left_out_stays(box, member):
    client = bearer_client(member)
    response = client.post(f"/api/v1/idle/instances/{box.pk}/configure", {"cpu_threshold": None}, format="json")
    assert response.status_code == 200
    state = WorkspaceIdle.objects.get(workspace=box)
    assert state.cpu_threshold is None and state.gpu_threshold == 5.0 and state.profile == "standard"
    response = client.post(f"/api/v1/idle/instances/{box.pk}/configure", {"enabled": False}, format="json")
    assert response.json()["settings"]["enabled"] is False
    assert response.json()["verdict"]["why_not"] == "disabled"


def test_it_refuses_configure_to_people_who_do_not_manage_the_workspace(box, org, project, viewer):
    other_member = _person(org, project, "other@lab-a.example", ProjectRole.MEMBER)
    for person in (viewer, other_member):
        response = bearer_client(person).post(
            f"/api/v1/idle/instances/{box.pk}/configure", {"enabled": False}, format="json"
        )
        assert_error(response, 403, "PERMISSION_DENIED")
    assert WorkspaceIdle.objects.get(workspace=box).enabled is True


def test_it_refuses_an_unknown_profile_and_a_terminated_workspace(box, member, project):
    client = bearer_client(member)
    error = assert_error(
        client.post(f"/api/v1/idle/instances/{box.pk}/configure", {"profile": "turbo"}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert "profile" in error["fields"]
    gone = idle_workspace(project, member, "gone", state="terminated")
    assert_error(
        client.post(f"/api/v1/idle/instances/{gone.pk}/configure", {"enabled": False}, format="json"),
        409,
        "INVALID_STATE",
    )


def test_another_organizations_profile_cannot_be_used(box, member, outsider_client):
    created = outsider_client.post(
        "/api/v1/idle/profiles", {"name": "theirs", "idle_threshold_minutes": 5}, format="json"
    )
    assert created.status_code == 201
    response = bearer_client(member).post(
        f"/api/v1/idle/instances/{box.pk}/configure", {"profile": "theirs"}, format="json"
    )
    assert_error(response, 400, "VALIDATION_ERROR")


# --- Snooze, warnings --------------------------------------------------------------------------------------------


def test_it_snoozes_a_warned_workspace_for_an_hour(box, member):
    quiet_for(box, 55)
    warned(box)
    response = bearer_client(member).post(f"/api/v1/idle/instances/{box.pk}/snooze")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["verdict"]["why_not"] == "snoozed" and body["verdict"]["warned_at"] is None
    state = WorkspaceIdle.objects.get(workspace=box)
    assert state.warned_at is None
    assert abs((state.snoozed_until - timezone.now()).total_seconds() - 3600) < 10
    assert IdleEvent.objects.filter(workspace=box, kind="snoozed").count() == 1


def test_a_viewer_cannot_snooze(box, viewer):
    warned(box)
    assert_error(bearer_client(viewer).post(f"/api/v1/idle/instances/{box.pk}/snooze"), 403, "PERMISSION_DENIED")
    assert WorkspaceIdle.objects.get(workspace=box).warned_at is not None


def test_warnings_list_only_warnings_in_force_on_workspaces_the_caller_sees(box, member, project, outsider_client):
    quiet_for(box, 55)
    warned(box)
    busy_again = idle_workspace(project, member, "busy-again")
    quiet_for(busy_again, 55)
    warned(busy_again, minutes_ago=3)
    WorkspaceIdle.objects.filter(workspace=busy_again).update(last_active_at=timezone.now())  # after the warning
    idle_workspace(project, member, "never-warned")
    response = bearer_client(member).get("/api/v1/idle/warnings")
    assert response.status_code == 200
    body = response.json()
    assert [row["instance_name"] for row in body] == ["box"]
    assert body[0]["action"] == "hibernate" and body[0]["snooze"] == f"/api/v1/idle/instances/{box.pk}/snooze"
    assert body[0]["action_at"] is not None
    assert outsider_client.get("/api/v1/idle/warnings").json() == []


# --- History -------------------------------------------------------------------------------------------------------


def _hibernated(workspace, *, hours_ago: float, rate: str = "0.5000", idle_seconds: int = 25 * 60) -> IdleEvent:
    at = timezone.now() - timedelta(hours=hours_ago)
    StateTransition.objects.create(
        workspace=workspace, from_state="hibernating", to_state="hibernated", hourly_rate=0, created_at=at
    )
    return IdleEvent.objects.create(
        workspace=workspace,
        organization=workspace.organization,
        project=workspace.project,
        kind="hibernate",
        profile="gpu",
        idle_seconds=idle_seconds,
        hourly_rate=Decimal(rate),
        created_at=at,
    )


def test_history_records_each_action_with_idle_duration_and_savings(box, member, project, outsider_client):
    _hibernated(box, hours_ago=2)
    IdleEvent.objects.create(
        workspace=box, organization=box.organization, project=project, kind="warned", idle_seconds=50 * 60
    )
    response = bearer_client(member).get("/api/v1/idle/history")
    assert response.status_code == 200
    rows = response.json()
    assert [row["action"] for row in rows] == ["warned", "hibernate"]
    action = rows[1]
    assert action["instance_name"] == "box" and action["profile"] == "gpu"
    assert action["idle_duration"] == "25 minutes" and action["idle_seconds"] == 1500
    assert action["estimated_savings"] == pytest.approx(1.0, abs=0.01)  # 2 hours at $0.50
    assert rows[0]["estimated_savings"] is None
    assert [r["action"] for r in bearer_client(member).get("/api/v1/idle/history?action=hibernate").json()] == [
        "hibernate"
    ]
    assert bearer_client(member).get(f"/api/v1/idle/history?instance={box.pk}").json()[0]["workspace_id"] == box.pk
    assert outsider_client.get("/api/v1/idle/history").json() == []
    assert_error(outsider_client.get(f"/api/v1/idle/history?project={project.pk}"), 404, "PROJECT_NOT_FOUND")
    assert_error(bearer_client(member).get("/api/v1/idle/history?action=nap"), 400, "VALIDATION_ERROR")


def test_history_answers_in_constant_queries(box, member, project):
    client = bearer_client(member)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/idle/history").status_code == 200
        return len(queries)

    _hibernated(box, hours_ago=1)
    count()  # the token's first use is recorded once
    few = count()
    for index in range(30):
        workspace = idle_workspace(project, member, f"crowd-{index}")
        _hibernated(workspace, hours_ago=1 + index / 10)
    assert count() == few


# --- The project's default ---------------------------------------------------------------------------------------


def test_project_owners_set_the_idle_default_and_others_only_read_it(owner_client, project, member, outsider_client):
    assert owner_client.get(f"/api/v1/projects/{project.pk}/idle-policy").json()["set"] is False
    body = {"enabled": False, "profile": "gpu", "idle_threshold_minutes": 30, "action": "hibernate"}
    response = owner_client.put(f"/api/v1/projects/{project.pk}/idle-policy", body, format="json")
    assert response.status_code == 200, response.content
    shown = response.json()
    assert shown | body == shown and shown["set"] is True and shown["updated_by"] == "owner@lab-a.example"
    assert bearer_client(member).get(f"/api/v1/projects/{project.pk}/idle-policy").json()["profile"] == "gpu"
    refused = bearer_client(member).put(
        f"/api/v1/projects/{project.pk}/idle-policy", {"profile": "batch"}, format="json"
    )
    assert_error(refused, 403, "PERMISSION_DENIED")
    assert_error(outsider_client.get(f"/api/v1/projects/{project.pk}/idle-policy"), 404, "PROJECT_NOT_FOUND")
    assert_error(
        owner_client.put(f"/api/v1/projects/{project.pk}/idle-policy", {"profile": "turbo"}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert ProjectIdlePolicy.objects.get(project=project).profile == "gpu"
    # New workspaces start from it; those already launched keep theirs.
    assert idle_workspace(project, member, "after").idle.profile == "gpu"
    assert AuditEvent.objects.filter(action="project.idle_policy_set", target_id=project.pk).count() == 1
