"""A launch's idle settings (`idle`: enabled, profile, idle_threshold_minutes, action) go over the project's idle
default, which goes over the template's `idle_defaults`, which go over the `standard` profile."""

import pytest

from idle.models import AgentToken, IdleProfile, ProjectIdlePolicy, WorkspaceIdle
from tests.conftest import assert_error
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def launch(client, project, **extra):
    body = {"name": "idle-box", "template": "Ubuntu 24.04 Base", "size": "S", "project": project.pk, **extra}
    return client.post("/api/v1/instances/launch", body, format="json")


def settings_of(name: str = "idle-box") -> WorkspaceIdle:
    return WorkspaceIdle.objects.get(workspace__name=name)


def test_it_starts_from_the_templates_idle_defaults(owner_client, project, account):
    assert launch(owner_client, project).status_code == 202
    state = settings_of()
    # Ubuntu 24.04 Base: profile batch, 60 minutes, hibernate.
    assert (state.enabled, state.profile, state.idle_threshold_minutes, state.action) == (
        True,
        "batch",
        60,
        "hibernate",
    )
    assert state.memory_threshold == 10.0  # batch's own thresholds
    assert AgentToken.objects.filter(workspace=state.workspace, revoked_at__isnull=True).exists()


def test_the_launch_goes_over_the_project_default_which_goes_over_the_template(owner_client, project, account):
    put = owner_client.put(
        f"/api/v1/projects/{project.pk}/idle-policy", {"profile": "gpu", "idle_threshold_minutes": 45}, format="json"
    )
    assert put.status_code == 200, put.content
    assert launch(owner_client, project, name="from-project").status_code == 202
    state = settings_of("from-project")
    assert (state.profile, state.idle_threshold_minutes, state.action) == ("gpu", 45, "stop")
    response = launch(
        owner_client, project, idle={"profile": "standard", "idle_threshold_minutes": 90, "action": "hibernate"}
    )
    assert response.status_code == 202, response.content
    state = settings_of()
    assert (state.profile, state.idle_threshold_minutes, state.action) == ("standard", 90, "hibernate")
    assert state.network_threshold == 10240  # standard's


def test_a_launch_may_turn_idle_detection_off(owner_client, project, account):
    assert launch(owner_client, project, idle={"enabled": False}).status_code == 202
    state = settings_of()
    assert state.enabled is False and state.profile == "batch"


def test_a_launch_may_name_an_organization_profile(owner_client, project, account):
    IdleProfile.objects.create(organization=project.organization, name="night-owl", idle_threshold_minutes=240)
    assert launch(owner_client, project, idle={"profile": "night-owl"}).status_code == 202
    assert (settings_of().profile, settings_of().idle_threshold_minutes) == ("night-owl", 240)


def test_it_refuses_an_unknown_profile_and_bad_idle_fields_creating_nothing(owner_client, project, account, outsider):
    error = assert_error(launch(owner_client, project, idle={"profile": "turbo"}), 400, "VALIDATION_ERROR")
    assert "idle.profile" in error["fields"]
    # Another organization's profile is as unknown.
    IdleProfile.objects.create(
        organization=outsider.memberships.get().organization, name="theirs", idle_threshold_minutes=5
    )
    assert_error(launch(owner_client, project, idle={"profile": "theirs"}), 400, "VALIDATION_ERROR")
    assert_error(launch(owner_client, project, idle={"idle_threshold_minutes": 0}), 400, "VALIDATION_ERROR")
    assert_error(launch(owner_client, project, idle={"enabled": "yes"}), 400, "VALIDATION_ERROR")
    assert_error(launch(owner_client, project, idle={"action": "nap"}), 400, "VALIDATION_ERROR")
    assert not Workspace.objects.filter(name="idle-box").exists()
    assert not WorkspaceIdle.objects.exists() and not ProjectIdlePolicy.objects.exists()


def test_a_dry_run_with_idle_settings_keeps_nothing(owner_client, project, account):
    response = launch(owner_client, project, dry_run=True, idle={"profile": "gpu"})
    assert response.status_code == 200, response.content
    assert not Workspace.objects.exists() and not WorkspaceIdle.objects.exists()
