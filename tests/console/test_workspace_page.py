"""The workspace page: state, history, actions, connect panel, firewall, console log, usage and cost, and the live
region that follows a launch. Actions go through the same services as the API (moto server, eager tasks)."""

import re
from decimal import Decimal

import pytest
from django.utils import timezone

from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, make_user
from tests.console.conftest import add_crowd, csrf_post, signed_in
from workspaces.models import FirewallRule, ProvisionJob, StateTransition, Workspace


def page(workspace) -> str:
    return f"/workspaces/{workspace.pk}/"


def live(workspace) -> str:
    return f"/workspaces/{workspace.pk}/live"


def action_urls(workspace) -> dict[str, tuple[str, dict]]:
    base = f"/workspaces/{workspace.pk}"
    return {
        "act": (f"{base}/act", {"action": "stop"}),
        "extend": (f"{base}/extend", {"hours": "2"}),
        "resize": (f"{base}/resize", {"size": "L"}),
        "terminate": (f"{base}/terminate", {"confirm_name": workspace.name}),
        "firewall-add": (f"{base}/firewall/add", {"from_port": "9999", "cidr": "10.0.0.0/24"}),
        "firewall-remove": (f"{base}/firewall/remove", {"position": "1"}),
    }


def text_of(response) -> str:
    return response.content.decode()


def element(html: str, element_id: str) -> str:
    """The opening tag and what follows it up to the next closing of the same tag name (good enough here)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>', html)
    assert match, f"#{element_id} not in the page"
    tag = match.group(1)
    if tag in ("input", "img", "br"):
        return match.group(0)
    end = html.find(f"</{tag}>", match.end())
    return html[match.start() : end + len(tag) + 3]


@pytest.fixture
def launched(owner_client, project, account, eager_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/api/v1/instances/launch",
            {"name": "ml-box", "template": "Python Machine Learning", "size": "S", "project": project.id},
            format="json",
        )
    assert response.status_code == 202, response.content
    workspace = Workspace.objects.get(name="ml-box")
    assert workspace.state == "running"
    return workspace


@pytest.fixture
def member(org, project):
    """A member of the project who does not own the workspace: may see it, may not manage it."""
    user = make_user("member@lab-a.example")
    add_org_member(org, user)
    ProjectMember.objects.create(project=project, user=user, role=ProjectRole.MEMBER)
    return user


@pytest.fixture
def quiet(org, project, owner):
    """A workspace written as a launch leaves it, without a cloud (for query counts and page details)."""
    workspace = Workspace.objects.create(
        organization=org,
        project=project,
        owner=owner,
        name="quiet-box",
        state="running",
        template_name="Python Machine Learning",
        size="S",
        instance_type="t3.medium",
        region="us-east-1",
        hourly_rate=Decimal("0.0416"),
        public_ip="198.51.100.7",
    )
    StateTransition.objects.create(workspace=workspace, from_state="pending", to_state="launching", hourly_rate=0)
    StateTransition.objects.create(
        workspace=workspace, from_state="launching", to_state="running", hourly_rate=Decimal("0.0416"), actor=owner
    )
    ProvisionJob.objects.create(workspace=workspace, status="succeeded", progress=100)
    FirewallRule.objects.create(workspace=workspace, position=1, cidr="10.0.0.0/24", from_port=22, to_port=22)
    return workspace


def cloud_state(ec2, workspace) -> str:
    reservations = ec2.describe_instances(InstanceIds=[workspace.provider_instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


# --- What the owner sees -------------------------------------------------------------------------


def test_it_shows_the_owner_state_connect_panel_and_cost(launched, owner):
    response = signed_in(owner).get(page(launched))
    assert response.status_code == 200
    html = text_of(response)
    assert 'data-state="running"' in element(html, "workspace-state")
    ssh = element(html, "ssh-command")
    assert f"@{launched.public_ip}" in ssh and ssh.count("ssh ") == 1
    assert "connect-panel" in html and 'data-copy="#ssh-command"' in html
    assert "$" in element(html, "workspace-cost")
    actions = element(html, "workspace-actions")
    assert 'name="action" value="stop"' in actions and 'name="action" value="hibernate"' in actions
    assert 'value="start"' not in actions
    assert "Genomics" in html and "owner@lab-a.example" in html and "Python Machine Learning" in html
    assert "c5.xlarge" in html
    history = element(html, "transitions")
    assert "launching → " in history and "<strong>running</strong>" in history
    assert 'id="terminate-form"' in html and 'id="extend-form"' in html and 'id="firewall-form"' in html
    assert 'id="resize-form"' not in html  # only while stopped
    assert 'id="console-log"' in html
    # Settled: the live region does not poll.
    assert "data-live=" not in element(html, "workspace-live")
    assert "{&#x27;" not in html and "Decimal(" not in html


def test_it_stops_and_starts_the_instance_through_the_form(launched, owner, ec2, django_capture_on_commit_callbacks):
    client = signed_in(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = csrf_post(client, f"/workspaces/{launched.pk}/act", {"action": "stop"}, from_page=page(launched))
    assert response.status_code == 302 and response["Location"] == page(launched)
    assert cloud_state(ec2, launched) == "stopped"
    assert Workspace.objects.get(pk=launched.pk).state == "stopped"
    html = text_of(client.get(page(launched)))
    assert "Stopping ml-box" in html
    assert 'data-state="stopped"' in element(html, "workspace-state")
    assert 'value="start"' in element(html, "workspace-actions")
    assert 'id="connect-panel"' not in html and 'id="resize-form"' in html
    assert "running → " in element(html, "transitions")

    with django_capture_on_commit_callbacks(execute=True):
        csrf_post(client, f"/workspaces/{launched.pk}/act", {"action": "start"}, from_page=page(launched))
    assert cloud_state(ec2, launched) == "running"
    assert Workspace.objects.get(pk=launched.pk).state == "running"


def test_it_refuses_an_action_the_state_does_not_allow_with_a_message(quiet, owner):
    client = signed_in(owner)
    response = csrf_post(client, f"/workspaces/{quiet.pk}/act", {"action": "resume"}, from_page=page(quiet))
    assert response.status_code == 302
    html = text_of(client.get(page(quiet)))
    assert "Cannot resume a workspace that is running." in html
    assert Workspace.objects.get(pk=quiet.pk).state == "running"


def test_it_terminates_only_with_the_exact_name(launched, owner, ec2, django_capture_on_commit_callbacks):
    client = signed_in(owner)
    url = f"/workspaces/{launched.pk}/terminate"
    html = text_of(client.get(page(launched)))
    confirm = element(html, "id_confirm_name")
    assert 'data-confirm-text="ml-box"' in confirm and 'data-confirm-for="#terminate-submit"' in confirm
    assert 'id="terminate-submit"' in html

    for wrong in ("", "ML-BOX", "ml-box-2", "DELETE"):
        response = csrf_post(client, url, {"confirm_name": wrong}, from_page=page(launched))
        assert response.status_code == 400
        form = element(text_of(response), "terminate-form")
        assert "Type the workspace&#x27;s name, ml-box, to confirm." in form
        assert 'aria-invalid="true"' in form and 'aria-describedby="confirm_name-error"' in form
    assert Workspace.objects.get(pk=launched.pk).state == "running"
    assert cloud_state(ec2, launched) == "running"

    with django_capture_on_commit_callbacks(execute=True):
        response = csrf_post(client, url, {"confirm_name": "ml-box"}, from_page=page(launched))
    assert response.status_code == 302
    assert Workspace.objects.get(pk=launched.pk).state == "terminated"
    assert cloud_state(ec2, launched) == "terminated"
    html = text_of(client.get(page(launched)))
    assert 'data-state="terminated"' in html and 'id="workspace-actions"' not in html
    assert 'id="terminate-form"' not in html


def test_it_extends_the_ttl_and_shows_errors_on_the_form(quiet, owner, settings):
    client = signed_in(owner)
    before = timezone.now()
    response = csrf_post(client, f"/workspaces/{quiet.pk}/extend", {"hours": "3"}, from_page=page(quiet))
    assert response.status_code == 302
    expires = Workspace.objects.get(pk=quiet.pk).expires_at
    assert expires is not None and 2.9 * 3600 < (expires - before).total_seconds() < 3.1 * 3600

    response = csrf_post(client, f"/workspaces/{quiet.pk}/extend", {"hours": "100000"}, from_page=page(quiet))
    assert response.status_code == 400
    assert 'aria-invalid="true"' in element(text_of(response), "id_hours")
    response = csrf_post(
        client, f"/workspaces/{quiet.pk}/extend", {"hours": str(settings.CARREL_MAX_TTL_HOURS)}, from_page=page(quiet)
    )
    assert response.status_code == 400
    form = element(text_of(response), "extend-form")
    assert f"At most {settings.CARREL_MAX_TTL_HOURS} hours from now" in form
    assert Workspace.objects.get(pk=quiet.pk).expires_at == expires


def test_it_resizes_a_stopped_workspace(launched, owner, ec2, django_capture_on_commit_callbacks):
    client = signed_in(owner)
    with django_capture_on_commit_callbacks(execute=True):
        csrf_post(client, f"/workspaces/{launched.pk}/act", {"action": "stop"}, from_page=page(launched))
    html = text_of(client.get(page(launched)))
    assert "(current)" in element(html, "id_size")
    with django_capture_on_commit_callbacks(execute=True):
        response = csrf_post(client, f"/workspaces/{launched.pk}/resize", {"size": "M"}, from_page=page(launched))
    assert response.status_code == 302
    workspace = Workspace.objects.get(pk=launched.pk)
    assert workspace.state == "stopped" and workspace.instance_type != "c5.xlarge"
    instance = ec2.describe_instances(InstanceIds=[workspace.provider_instance_id])["Reservations"][0]["Instances"][0]
    assert instance["InstanceType"] == workspace.instance_type

    response = csrf_post(
        client, f"/workspaces/{launched.pk}/resize", {"instance_type": "no.such"}, from_page=page(launched)
    )
    assert response.status_code == 400
    assert "field-error" in element(text_of(response), "resize-form") or "form-error" in text_of(response)


def test_it_refuses_a_resize_while_running_with_a_message(quiet, owner):
    client = signed_in(owner)
    response = csrf_post(client, f"/workspaces/{quiet.pk}/resize", {"size": "L"}, from_page=page(quiet))
    assert response.status_code == 302
    assert "only change while the workspace is stopped" in text_of(client.get(page(quiet)))
    assert Workspace.objects.get(pk=quiet.pk).instance_type == "t3.medium"


# --- Firewall --------------------------------------------------------------------------------------


def test_it_adds_and_removes_firewall_rules(launched, owner, ec2, django_capture_on_commit_callbacks):
    client = signed_in(owner)
    before = FirewallRule.objects.filter(workspace=launched).count()
    with django_capture_on_commit_callbacks(execute=True):
        response = csrf_post(
            client,
            f"/workspaces/{launched.pk}/firewall/add",
            {"from_port": "9999", "protocol": "tcp", "cidr": "10.1.0.0/16", "description": "notebook"},
            from_page=page(launched),
        )
    assert response.status_code == 302
    rule = FirewallRule.objects.get(workspace=launched, from_port=9999)
    assert (rule.cidr, rule.to_port, rule.description) == ("10.1.0.0/16", 9999, "notebook")
    group = ec2.describe_security_groups(GroupIds=[launched.security_group_id])["SecurityGroups"][0]
    assert any(p.get("FromPort") == 9999 for p in group["IpPermissions"])
    rules = element(text_of(client.get(page(launched))), "firewall-rules")
    assert "10.1.0.0/16" in rules and "notebook" in rules

    with django_capture_on_commit_callbacks(execute=True):
        response = csrf_post(
            client,
            f"/workspaces/{launched.pk}/firewall/remove",
            {"position": str(rule.position)},
            from_page=page(launched),
        )
    assert response.status_code == 302
    assert not FirewallRule.objects.filter(pk=rule.pk).exists()
    assert FirewallRule.objects.filter(workspace=launched).count() == before
    group = ec2.describe_security_groups(GroupIds=[launched.security_group_id])["SecurityGroups"][0]
    assert not any(p.get("FromPort") == 9999 for p in group["IpPermissions"])


def test_it_shows_firewall_errors_next_to_the_fields(quiet, owner):
    client = signed_in(owner)
    url = f"/workspaces/{quiet.pk}/firewall/add"
    response = csrf_post(client, url, {"from_port": "22", "cidr": "0.0.0.0/0"}, from_page=page(quiet))
    assert response.status_code == 400
    form = element(text_of(response), "firewall-form")
    assert 'id="allow_world_ssh-error"' in form and 'value="0.0.0.0/0"' in form
    response = csrf_post(client, url, {"from_port": "70000", "cidr": "not-a-network"}, from_page=page(quiet))
    form = element(text_of(response), "firewall-form")
    assert 'id="cidr-error"' in form
    assert FirewallRule.objects.filter(workspace=quiet).count() == 1

    response = csrf_post(client, url, {"from_port": "22", "cidr": "0.0.0.0/0", "allow_world_ssh": "on"})
    assert response.status_code == 302
    assert FirewallRule.objects.filter(workspace=quiet, cidr="0.0.0.0/0").exists()

    response = csrf_post(client, f"/workspaces/{quiet.pk}/firewall/remove", {"position": "99"}, from_page=page(quiet))
    assert response.status_code == 302
    assert "no firewall rule at position 99" in text_of(client.get(page(quiet)))


# --- Who may do what -------------------------------------------------------------------------------


def test_it_shows_a_member_who_cannot_manage_no_actions_and_refuses_their_posts(quiet, member):
    client = signed_in(member)
    html = text_of(client.get(page(quiet)))
    assert 'data-state="running"' in html
    assert 'name="action"' not in html
    for form in ("workspace-actions", "extend-form", "resize-form", "terminate-form", "firewall-form"):
        assert f'id="{form}"' not in html
    assert "Only the workspace" in element(html, "actions-title") or "Only the workspace's owner (" in html

    for name, (url, data) in action_urls(quiet).items():
        response = csrf_post(client, url, data, from_page=page(quiet))
        # A request the page offers no button for is refused outright: the 403 page, with the service's reason.
        assert response.status_code == 403, name
        assert "Only the workspace&#x27;s owner and the project&#x27;s owners and admins" in text_of(response), name
    quiet.refresh_from_db()
    assert quiet.state == "running" and quiet.expires_at is None
    assert list(FirewallRule.objects.filter(workspace=quiet).values_list("cidr", flat=True)) == ["10.0.0.0/24"]


def test_it_answers_404_to_an_outsider_on_every_route(quiet, outsider):
    client = signed_in(outsider)
    for url in (page(quiet), live(quiet)):
        response = client.get(url)
        assert response.status_code == 404 and "Not found" in text_of(response)
        assert "quiet-box" not in text_of(response)
    for name, (url, data) in action_urls(quiet).items():
        response = csrf_post(client, url, data, from_page="/")
        assert response.status_code == 404, name
        assert "quiet-box" not in text_of(response)
        response = client.get(url)
        assert response.status_code == 404, name
        assert "quiet-box" not in text_of(response)
    assert client.get("/workspaces/ws_doesnotexist/").status_code == 404
    quiet.refresh_from_db()
    assert quiet.state == "running" and quiet.expires_at is None
    assert FirewallRule.objects.filter(workspace=quiet).count() == 1


def test_it_lets_a_project_admin_manage_a_members_workspace(quiet, org, project):
    admin = make_user("admin@lab-a.example")
    add_org_member(org, admin)
    ProjectMember.objects.create(project=project, user=admin, role=ProjectRole.ADMIN)
    client = signed_in(admin)
    html = text_of(client.get(page(quiet)))
    assert 'value="stop"' in element(html, "workspace-actions") and 'id="terminate-form"' in html
    response = csrf_post(client, f"/workspaces/{quiet.pk}/extend", {"hours": "1"}, from_page=page(quiet))
    assert response.status_code == 302
    assert Workspace.objects.get(pk=quiet.pk).expires_at is not None
    # An action's address opened in the browser leads to the page.
    assert client.get(f"/workspaces/{quiet.pk}/act")["Location"] == page(quiet)


def test_it_sends_anonymous_visitors_to_sign_in(quiet, client):
    response = client.get(page(quiet))
    assert response.status_code == 302 and "login" in response["Location"]


def test_it_requires_csrf_on_every_post(quiet, owner):
    client = signed_in(owner)
    client.get(page(quiet))
    for name, (url, data) in action_urls(quiet).items():
        assert client.post(url, data).status_code == 403, name
    quiet.refresh_from_db()
    assert quiet.state == "running" and quiet.expires_at is None


# --- Live ------------------------------------------------------------------------------------------


def test_it_follows_a_launch_in_the_live_fragment(owner_client, owner, project, account):
    response = owner_client.post(
        "/api/v1/instances/launch",
        {"name": "gpu-box", "template": "Python Machine Learning", "project": project.id},
        format="json",
    )
    assert response.status_code == 202  # the provisioning task is never run: the launch stays under way
    workspace = Workspace.objects.get(name="gpu-box")
    client = signed_in(owner)

    html = text_of(client.get(page(workspace)))
    region = element(html, "workspace-live")
    assert f'data-live="/workspaces/{workspace.pk}/live"' in region and 'data-interval="2000"' in region
    assert 'id="launch-progress"' in html and 'id="connect-panel"' not in html

    fragment = client.get(live(workspace))
    assert fragment.status_code == 200
    html = text_of(fragment)
    assert html.lstrip().startswith('<div id="workspace-live"') and "<html" not in html
    assert 'data-live="' in html and "data-reload-when-done" not in html
    assert 'class="steps"' in html and "Security group ready" in html and "Instance running" in html
    assert f'data-state="{workspace.state}"' in element(html, "workspace-state")

    # The job moves on: a step runs, another is done.
    job = ProvisionJob.objects.get(workspace=workspace)
    job.steps[0]["status"] = "done"
    job.steps[1]["status"] = "running"
    job.progress = 25
    job.status = "running"
    job.save()
    html = text_of(client.get(live(workspace)))
    assert 'class="step-done"' in html and 'class="step-running"' in html and "25%" in html

    # Settled: no more polling, and the page reloads to show the connect panel.
    Workspace.objects.filter(pk=workspace.pk).update(state="running", public_ip="198.51.100.9")
    ProvisionJob.objects.filter(pk=job.pk).update(status="succeeded", progress=100)
    html = text_of(client.get(live(workspace)))
    assert "data-live=" not in html and "data-reload-when-done" in html and 'data-state="running"' in html
    assert 'id="launch-progress"' not in html


def test_it_shows_a_failed_launch_in_words(quiet, owner):
    Workspace.objects.filter(pk=quiet.pk).update(state="error", public_ip=None)
    ProvisionJob.objects.filter(workspace=quiet).update(
        status="failed",
        progress=25,
        error_code="InsufficientInstanceCapacity",
        error_message="AWS has no capacity for c5.xlarge in us-east-1a right now.",
        steps=[
            {"name": "queued", "description": "Queued", "status": "done", "at": None},
            {"name": "instance", "description": "Instance requested", "status": "failed", "at": None},
        ],
    )
    html = text_of(signed_in(owner).get(live(quiet)))
    assert "The launch failed: AWS has no capacity for c5.xlarge in us-east-1a right now." in html
    assert 'class="step-failed"' in html and "data-live=" not in html


def test_it_shows_a_sentence_when_the_provider_has_no_log(launched, owner, monkeypatch):
    from workspaces import cloud, services

    html = text_of(signed_in(owner).get(page(launched)))
    assert 'id="console-log"' in html

    def broken(workspace):
        class Provider:
            def console_output(self, instance_id):
                raise cloud.TransientCloudError("RequestLimitExceeded", "slow down", "GetConsoleOutput")

        return Provider()

    monkeypatch.setattr(services, "provider_for", broken)
    response = signed_in(owner).get(page(launched))
    assert response.status_code == 200
    assert "did not return the console output" in element(text_of(response), "console-log")


# --- Constant queries ------------------------------------------------------------------------------


def test_it_answers_in_constant_queries_with_a_thousand_workspaces(
    quiet, owner, project, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in(owner)
    measured = {}
    for url in (page(quiet), live(quiet)):
        client.get(url)  # warm the session
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        measured[url] = len(queries)

    add_crowd(project, owner)
    StateTransition.objects.bulk_create(
        StateTransition(workspace=quiet, from_state="running", to_state="stopped", hourly_rate=0) for _ in range(80)
    )
    FirewallRule.objects.bulk_create(
        FirewallRule(workspace=quiet, position=position, cidr=f"10.0.{position}.0/24", from_port=443, to_port=443)
        for position in range(2, 30)
    )
    for url, count in measured.items():
        with django_assert_max_num_queries(count):
            assert client.get(url).status_code == 200


# --- In a browser ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_fits_a_phone_and_enables_terminate_only_on_the_name(
    quiet, owner, browser, live_server, tmp_path, monkeypatch
):
    from django.conf import settings as django_settings

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

    session = signed_in(owner).cookies[django_settings.SESSION_COOKIE_NAME].value
    for width, height in ((1280, 800), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
        tab = context.new_page()
        tab.goto(live_server.url + page(quiet))
        assert tab.locator("#workspace-state [data-state=running]").count() == 1
        assert tab.evaluate("document.documentElement.scrollWidth") <= width, f"overflows at {width}px"
        assert tab.locator("#terminate-submit").is_disabled()
        tab.fill("#id_confirm_name", "quiet-box")
        assert tab.locator("#terminate-submit").is_enabled()
        assert tab.locator("button[data-copy='#ssh-command']").is_visible()
        tab.screenshot(path=str(tmp_path / f"workspace-{width}.png"), full_page=True)
        context.close()
