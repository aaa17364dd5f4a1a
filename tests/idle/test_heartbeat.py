"""POST /api/v1/agent/heartbeat: an agent token moves its own workspace's idle row, and nothing else does."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from idle.models import AgentToken, WorkspaceIdle
from idle.services.heartbeat import heartbeat_record
from idle.tokens import agent_token_revoke
from tests.conftest import add_org_member, assert_error, bearer_client, make_org, make_project, make_user
from tests.idle.agent_support import QUIET, agent_client, agent_workspace, heartbeat, idle_row
from workspaces import services as workspace_services
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace(project, owner) -> Workspace:
    return agent_workspace(project, owner)


@pytest.fixture
def other(db) -> Workspace:
    """Another organization's running workspace, with its own agent."""
    them = make_user("them@lab-b.example")
    return agent_workspace(make_project(make_org("Lab B", them), "Climate", them), them, name="their-box")


def test_it_records_a_heartbeat_as_the_workspaces_latest_usage(workspace):
    before = timezone.now()
    response = heartbeat(agent_client(workspace), cpu_percent=[0.5] * 15 + [97.0], sessions=0)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["interval_seconds"] == 60 and body["active_reasons"] == ["cpu"]
    state = WorkspaceIdle.objects.get(pk=workspace.pk)
    assert state.signal_source == "agent"
    assert state.observed_since == state.last_observed_at == state.last_active_at >= before
    assert state.active_reasons == ["cpu"]
    sample = state.last_sample
    assert sample["cpu_percent"][-1] == 97.0 and len(sample["cpu_percent"]) == 16
    assert sample["measured_at"] == body["received_at"]
    assert {key: sample[key] for key in QUIET if key != "cpu_percent"} == {
        key: value for key, value in QUIET.items() if key != "cpu_percent"
    }
    assert AgentToken.objects.get(pk=workspace.pk).last_used_at >= before


def test_it_keeps_coverage_across_heartbeats_and_restarts_it_after_a_gap(workspace):
    token = AgentToken.objects.select_related("workspace").get(pk=workspace.pk)
    start = timezone.now()
    heartbeat_record(token=token, payload=QUIET, now=start)
    state = heartbeat_record(token=token, payload=QUIET, now=start + timedelta(minutes=1))
    assert state.observed_since == start and state.last_observed_at == start + timedelta(minutes=1)
    assert state.last_active_at is None and state.active_reasons == []
    later = start + timedelta(minutes=10)  # the agent was away longer than a heartbeat's staleness
    state = heartbeat_record(token=token, payload=QUIET, now=later)
    assert state.observed_since == later
    assert WorkspaceIdle.objects.get(pk=workspace.pk).observed_since == later


def test_it_counts_recent_input_as_activity_but_never_from_the_future(workspace):
    token = AgentToken.objects.select_related("workspace").get(pk=workspace.pk)
    now = timezone.now()
    state = heartbeat_record(token=token, payload={**QUIET, "last_input_at": now - timedelta(minutes=2)}, now=now)
    assert state.last_active_at == now - timedelta(minutes=2) and state.active_reasons == []
    state = heartbeat_record(token=token, payload={**QUIET, "last_input_at": now + timedelta(days=3)}, now=now)
    assert state.last_active_at == now
    assert state.last_sample["last_input_at"] == now.isoformat().replace("+00:00", "Z")


def test_it_marks_a_registered_job_as_busy_with_nobody_logged_in(workspace):
    response = heartbeat(agent_client(workspace), busy=True, busy_reasons=["keep-alive: python train.py"])
    assert response.json()["active_reasons"] == ["busy"]
    assert WorkspaceIdle.objects.get(pk=workspace.pk).last_sample["busy_reasons"] == ["keep-alive: python train.py"]


def test_it_accepts_a_heartbeat_with_signals_left_out(workspace):
    response = agent_client(workspace).post("/api/v1/agent/heartbeat", {"cpu_percent": [3.0]}, format="json")
    assert response.status_code == 200, response.content
    sample = WorkspaceIdle.objects.get(pk=workspace.pk).last_sample
    assert sample["memory_percent"] is None and sample["gpu_percent"] == [] and sample["busy"] is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu_percent", [1.0] * 1025),
        ("cpu_percent", [100.5]),
        ("cpu_percent", [-1.0]),
        ("cpu_percent", ["50"]),
        ("cpu_percent", 50.0),
        ("gpu_percent", [1.0] * 65),
        ("gpu_percent", [101.0]),
        ("memory_percent", 100.1),
        ("memory_percent", True),
        ("network_bytes_per_s", -1.0),
        ("network_bytes_per_s", 2e12),
        ("disk_bytes_per_s", -0.5),
        ("sessions", 10_001),
        ("sessions", -1),
        ("sessions", 1.5),
        ("busy", "yes"),
        ("busy_reasons", ["x" * 201]),
        ("busy_reasons", ["job"] * 17),
        ("last_input_at", 1700000000),
        ("last_input_at", "yesterday"),
        ("agent_version", "v" * 33),
    ],
)
def test_it_refuses_values_out_of_bounds_and_changes_nothing(workspace, field, value):
    before = idle_row(workspace)
    response = heartbeat(agent_client(workspace), **{field: value})
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert any(name.startswith(field) for name in error["fields"]), error
    assert idle_row(workspace) == before


def test_it_accepts_the_bounds_themselves(workspace):
    response = heartbeat(
        agent_client(workspace),
        cpu_percent=[0.0] * 1023 + [100.0],
        gpu_percent=[100.0] * 64,
        sessions=10_000,
        network_bytes_per_s=0.0,
        busy_reasons=["r" * 200] * 16,
    )
    assert response.status_code == 200, response.content


def test_it_refuses_anyone_but_an_agent_and_changes_nothing(workspace, owner, owner_client):
    before = idle_row(workspace)
    assert_error(APIClient().post("/api/v1/agent/heartbeat", QUIET, format="json"), 401, "AUTHENTICATION_REQUIRED")
    # The workspace's owner, with an API token or logged in, is not its agent.
    assert_error(owner_client.post("/api/v1/agent/heartbeat", QUIET, format="json"), 401, "TOKEN_INVALID")
    session = APIClient()
    session.force_login(owner)
    assert_error(session.post("/api/v1/agent/heartbeat", QUIET, format="json"), 401, "AUTHENTICATION_REQUIRED")
    for secret in ("carrel_agent_" + "0" * 64, "carrel_agent_", "not-a-token", "carrel_agent_" + "f" * 200):
        assert_error(heartbeat(agent_client(secret=secret)), 401, "TOKEN_INVALID")
    malformed = APIClient()
    malformed.credentials(HTTP_AUTHORIZATION="Bearer two words")
    assert_error(heartbeat(malformed), 401, "TOKEN_INVALID")
    assert idle_row(workspace) == before
    assert AgentToken.objects.get(pk=workspace.pk).last_used_at is None


def test_it_refuses_a_revoked_token(workspace):
    client = agent_client(workspace)
    assert heartbeat(client).status_code == 200
    agent_token_revoke(workspace_id=workspace.pk)
    before = idle_row(workspace)
    assert_error(heartbeat(client), 401, "TOKEN_REVOKED")
    assert idle_row(workspace) == before


def test_terminating_a_workspace_revokes_its_agent_token(workspace, owner):
    client = agent_client(workspace)
    workspace_services.workspace_act(actor=owner, workspace=workspace, action="terminate")
    assert AgentToken.objects.get(pk=workspace.pk).revoked_at is not None
    assert_error(heartbeat(client), 401, "TOKEN_REVOKED")


def test_a_terminated_workspaces_token_is_refused_even_unrevoked(project, owner):
    workspace = agent_workspace(project, owner, name="gone", state="terminated")
    assert AgentToken.objects.get(pk=workspace.pk).revoked_at is None  # written directly, not through a transition
    assert_error(heartbeat(agent_client(workspace)), 401, "TOKEN_REVOKED")


def test_one_workspaces_token_never_moves_another_workspaces_row(workspace, other, project, owner):
    sibling = agent_workspace(project, owner, name="sibling")  # same project, same owner
    untouched = {ws.pk: idle_row(ws) for ws in (other, sibling)}
    response = heartbeat(agent_client(workspace), sessions=3, busy=True)
    assert response.status_code == 200
    assert {ws.pk: idle_row(ws) for ws in (other, sibling)} == untouched
    assert WorkspaceIdle.objects.get(pk=workspace.pk).last_sample["sessions"] == 3
    # Whatever the body says: there is no field naming a workspace, and unknown fields are ignored.
    response = heartbeat(agent_client(workspace), workspace=other.pk, workspace_id=other.pk, name=other.name)
    assert response.status_code == 200
    assert {ws.pk: idle_row(ws) for ws in (other, sibling)} == untouched


def test_a_member_of_the_organization_cannot_use_the_route_either(workspace, org):
    member = make_user("member@lab-a.example")
    add_org_member(org, member)
    assert_error(heartbeat(bearer_client(member)), 401, "TOKEN_INVALID")


def test_it_throttles_per_token(workspace, other, settings):
    settings.CARREL_AGENT_HEARTBEAT_RATE = "2/minute"
    client = agent_client(workspace)
    assert heartbeat(client).status_code == 200
    assert heartbeat(client).status_code == 200
    before = idle_row(workspace)
    response = heartbeat(client)
    assert_error(response, 429, "RATE_LIMITED")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert idle_row(workspace) == before
    assert heartbeat(agent_client(other)).status_code == 200  # another workspace's agent has its own count


def test_rejected_agent_tokens_count_as_failed_authentications(workspace, settings):
    settings.CARREL_FAILED_AUTH_LIMIT = "3/15min"
    bad = agent_client(secret="carrel_agent_" + "1" * 64)
    for _ in range(3):
        assert_error(heartbeat(bad), 401, "TOKEN_INVALID")
    assert_error(heartbeat(bad), 429, "AUTH_THROTTLED")
    # A valid token from another address is never refused for what others did.
    good = agent_client(workspace)
    response = good.post("/api/v1/agent/heartbeat", QUIET, format="json", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200, response.content


def test_the_script_is_served_to_anyone_as_python(workspace):
    from tests.idle.agent_support import AGENT_SCRIPT

    for client in (APIClient(), agent_client(workspace), agent_client(secret="garbage")):
        response = client.get("/api/v1/agent/script")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/x-python")
        assert response.content == AGENT_SCRIPT.read_bytes()
    assert APIClient().post("/api/v1/agent/script").status_code == 405
