"""Idle detection in the console: the warning banner with its snooze button (home and workspace pages, a plain
form that works without JavaScript), the workspace page's activity, idle settings and history, and the launch
form's idle settings; every page in constant queries with a thousand workspaces."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from idle.models import IdleEvent, WorkspaceIdle
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, make_user
from tests.console.conftest import add_crowd, csrf_post, signed_in
from tests.idle.policy_support import idle_workspace, quiet_for, warned
from tests.workspaces.conftest import account, catalog, cloud, moto, moto_image  # noqa: F401 (fixtures)
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(org, project):
    user = make_user("viewer@lab-a.example")
    add_org_member(org, user)
    ProjectMember.objects.create(project=project, user=user, role=ProjectRole.VIEWER)
    return user


@pytest.fixture
def box(project, owner):
    workspace = idle_workspace(project, owner, "box")
    quiet_for(workspace, 55, cpu_percent=[0.5] * 15 + [4.0], gpu_percent=[1.0, 80.0], sessions=0)
    return workspace


def page_of(workspace) -> str:
    return f"/workspaces/{workspace.pk}/"


def body_of(response) -> str:
    return response.content.decode()


# --- The workspace page ------------------------------------------------------------------------------------------


def test_it_shows_usage_per_core_gpu_and_sessions_with_the_idle_settings(box, owner):
    body = body_of(signed_in(owner).get(page_of(box)))
    assert 'id="activity"' in body and "the workspace's agent" in body
    assert body.count("core ") >= 16 and "core 15" in body and "4.0%" in body
    assert "GPU 1" in body and "80.0%" in body
    assert "0 logged in" in body
    assert 'id="idle-settings"' in body and "standard" in body and "60 minutes" in body
    assert "Quiet for 55 min of 60 minutes" in body
    assert 'id="idle-form"' in body and '<option value="gpu"' in body
    assert "None" not in body.split('id="activity"')[1].split("</section>")[0]


def test_it_shows_the_idle_history_with_savings(box, owner):
    IdleEvent.objects.create(
        workspace=box,
        organization=box.organization,
        project=box.project,
        kind="hibernate",
        profile="standard",
        idle_seconds=65 * 60,
        hourly_rate=Decimal("1.0"),
        created_at=timezone.now() - timedelta(hours=3),
        detail="hibernated after 65 minutes idle",
    )
    history = body_of(signed_in(owner).get(page_of(box))).split('id="idle-history"')[1].split("</section>")[0]
    assert "Hibernated" in history and "1 hour 5 minutes" in history and "$3.00" in history


def test_a_warned_workspace_shows_a_banner_whose_button_snoozes_it(box, owner):
    warned(box)
    client = signed_in(owner)
    body = body_of(client.get(page_of(box)))
    assert 'data-idle-warning="' in body and "will be <strong>hibernated</strong>" in body
    assert f'action="/workspaces/{box.pk}/snooze"' in body
    response = csrf_post(client, f"/workspaces/{box.pk}/snooze", {"next": page_of(box)}, from_page=page_of(box))
    assert response.status_code == 302 and response["Location"] == page_of(box)
    state = WorkspaceIdle.objects.get(workspace=box)
    assert state.warned_at is None and state.snoozed_until > timezone.now() + timedelta(minutes=59)
    after = body_of(client.get(page_of(box)))
    assert "data-idle-warning" not in after and "Snoozed: box is left alone until" in after
    assert "Snoozed until" in after


def test_the_home_page_shows_my_warned_workspaces_and_snoozes_from_there(box, owner, project):
    warned(box)
    other = idle_workspace(project, owner, "not-warned")
    quiet_for(other, 5)
    client = signed_in(owner)
    body = body_of(client.get("/"))
    assert 'id="idle-warnings"' in body and f'data-idle-warning="{box.pk}"' in body
    assert f'data-idle-warning="{other.pk}"' not in body
    response = csrf_post(client, f"/workspaces/{box.pk}/snooze", {"next": "/"}, from_page="/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert 'id="idle-warnings"' not in body_of(client.get("/"))


def test_a_snooze_never_redirects_off_site(box, owner):
    warned(box)
    response = csrf_post(
        signed_in(owner), f"/workspaces/{box.pk}/snooze", {"next": "https://evil.example/"}, from_page=page_of(box)
    )
    assert response["Location"] == page_of(box)


def test_a_viewer_sees_the_warning_but_no_button_and_no_form_and_is_refused(box, viewer):
    warned(box)
    client = signed_in(viewer)
    body = body_of(client.get(page_of(box)))
    assert "data-idle-warning" in body and "/snooze" not in body and 'id="idle-form"' not in body
    assert csrf_post(client, f"/workspaces/{box.pk}/snooze", {}, from_page=page_of(box)).status_code == 403
    assert WorkspaceIdle.objects.get(workspace=box).warned_at is not None
    # Someone else's home page shows no banner for it.
    assert "idle-warnings" not in body_of(client.get("/"))


def test_snoozing_a_stopped_workspace_is_refused_with_a_message(project, owner):
    stopped = idle_workspace(project, owner, "parked", state="stopped")
    client = signed_in(owner)
    response = csrf_post(client, f"/workspaces/{stopped.pk}/snooze", {}, from_page=page_of(stopped))
    assert response.status_code == 302
    assert "only a running workspace can be snoozed" in body_of(client.get(page_of(stopped)))


def test_the_settings_form_changes_the_profile_and_window(box, owner):
    client = signed_in(owner)
    data = {"enabled": "on", "profile": "gpu", "idle_threshold_minutes": "20", "action": "hibernate"}
    response = csrf_post(client, f"/workspaces/{box.pk}/idle", data, from_page=page_of(box))
    assert response.status_code == 302 and response["Location"].endswith("#idle")
    state = WorkspaceIdle.objects.get(workspace=box)
    assert (state.profile, state.idle_threshold_minutes, state.action, state.enabled) == ("gpu", 20, "hibernate", True)
    assert state.cpu_threshold == 10.0  # gpu's
    # The same profile again keeps custom thresholds; an unticked box turns it off.
    WorkspaceIdle.objects.filter(workspace=box).update(cpu_threshold=33.0)
    data = {"profile": "gpu", "idle_threshold_minutes": "20", "action": "stop"}
    assert csrf_post(client, f"/workspaces/{box.pk}/idle", data, from_page=page_of(box)).status_code == 302
    state = WorkspaceIdle.objects.get(workspace=box)
    assert (state.enabled, state.cpu_threshold, state.action) == (False, 33.0, "stop")
    assert "Off: this workspace is never hibernated" in body_of(client.get(page_of(box)))


def test_the_settings_form_shows_errors_next_to_the_fields(box, owner):
    client = signed_in(owner)
    response = csrf_post(
        client,
        f"/workspaces/{box.pk}/idle",
        {"enabled": "on", "profile": "gpu", "idle_threshold_minutes": "soon"},
        from_page=page_of(box),
    )
    assert response.status_code == 400
    assert 'id="idle-minutes-error"' in body_of(response)
    data = {"profile": "turbo", "idle_threshold_minutes": "5"}
    response = csrf_post(client, f"/workspaces/{box.pk}/idle", data, from_page=page_of(box))
    assert response.status_code == 400 and 'id="idle-profile-error"' in body_of(response)
    assert WorkspaceIdle.objects.get(workspace=box).profile == "standard"


# --- The launch form ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("account")
def test_the_launch_form_offers_profiles_and_passes_the_choice_to_the_launch(owner, project):
    client = signed_in(owner)
    body = body_of(client.get("/launch/?template=gpu-deep-learning"))
    assert '<option value="gpu">' in body and 'name="idle_enabled" data-refresh checked' in body
    assert "Stop after 15 minutes" in body  # the GPU template's idle defaults
    preview = {"project": str(project.pk), "template": "ubuntu-24-04-base", "size": "S", "idle_form": "1"}
    body = body_of(csrf_post(client, "/launch/", {**preview, "idle_enabled": "on", "idle_profile": "gpu"}))
    assert "Stop after 15 minutes" in body and '<option value="gpu" selected>' in body
    launch = {**preview, "name": "quiet-one", "ttl_hours": "4", "idle_profile": "gpu", "launch": "1"}
    response = csrf_post(client, "/launch/", launch)
    assert response.status_code == 302, body_of(response)[:2000]
    state = WorkspaceIdle.objects.get(workspace__name="quiet-one")
    assert (state.profile, state.enabled) == ("gpu", False)  # the box was left unticked


@pytest.mark.usefixtures("account")
def test_the_launch_form_refuses_an_unknown_profile_next_to_the_field(owner, project):
    data = {
        "project": str(project.pk),
        "template": "ubuntu-24-04-base",
        "size": "S",
        "name": "quiet-two",
        "idle_form": "1",
        "idle_enabled": "on",
        "idle_profile": "turbo",
        "launch": "1",
    }
    response = csrf_post(signed_in(owner), "/launch/", data)
    assert response.status_code == 400 and 'id="error-idle_profile"' in body_of(response)
    assert not Workspace.objects.filter(name="quiet-two").exists()


# --- Constant queries ----------------------------------------------------------------------------------------


def test_home_and_workspace_pages_keep_their_query_counts_with_1000_warned_workspaces(
    box, owner, project, django_assert_max_num_queries
):
    warned(box)
    client = signed_in(owner)
    measured = {}
    for url in ("/", page_of(box)):
        client.get(url)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        measured[url] = len(queries)
    crowd = add_crowd(project, owner, count=1000)
    now = timezone.now()
    WorkspaceIdle.objects.bulk_create(
        WorkspaceIdle(
            workspace=workspace,
            idle_threshold_minutes=60,
            configured_at=now - timedelta(hours=2),
            signal_source="agent",
            observed_since=now - timedelta(hours=1),
            last_observed_at=now,
            warned_at=now - timedelta(minutes=5),
        )
        for workspace in crowd
    )
    IdleEvent.objects.bulk_create(
        IdleEvent(workspace=box, organization=box.organization, project=project, kind="warned") for _ in range(50)
    )
    for url, count in measured.items():
        with django_assert_max_num_queries(count):
            body = body_of(client.get(url))
    assert body.count("data-idle-warning") == 1  # the workspace page: its own banner only
