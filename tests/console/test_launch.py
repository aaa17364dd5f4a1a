"""The console's launch page: project → template → size → name and TTL → price and what-if → launch, with the
service's errors next to the fields they concern."""

import re
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from playwright.sync_api import expect

from budgets.models import Allocation, BudgetPool, MemberCap
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, make_org, make_project, make_user
from tests.console.conftest import add_crowd, csrf_post, needs_chromium, signed_in
from workspaces.models import ProvisionJob, Workspace, WorkspacePreference

pytestmark = pytest.mark.django_db

URL = "/launch/"


def fund(project, amount: str = "100") -> Allocation:
    now = timezone.now()
    pool = BudgetPool.objects.create(
        organization=project.organization,
        name="Grant",
        total_amount=Decimal("100000"),
        start_date=now - timedelta(days=10),
        end_date=now + timedelta(days=10),
    )
    return Allocation.objects.create(pool=pool, project=project, amount=Decimal(amount))


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; the test's ORM calls stay synchronous."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def member(org, project):
    user = make_user("member@lab-a.example")
    add_org_member(org, user)
    ProjectMember.objects.create(project=project, user=user, role=ProjectRole.MEMBER)
    return user


def launch_data(project, **changes) -> dict:
    data = {
        "project": str(project.pk),
        "template": "ubuntu-24-04-base",
        "size": "S",
        "name": "analysis-1",
        "ttl_hours": "6",
        "launch": "1",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


class _Text(HTMLParser):
    """The text inside the element with an id (its descendants' too)."""

    VOID = {"input", "br", "img", "meta", "link", "hr"}

    def __init__(self, element_id: str):
        super().__init__()
        self.element_id, self.depth, self.parts, self.found = element_id, 0, [], False

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id:
            self.depth, self.found = 1, True

    def handle_endtag(self, tag):
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.parts.append(data)


def element(body: str, element_id: str) -> str:
    """The text of the element with this id, or '' when there is none."""
    parser = _Text(element_id)
    parser.feed(body)
    return " ".join(" ".join(parser.parts).split())


def test_it_renders_templates_sizes_and_prices_for_a_member(member, project, catalog):
    fund(project)
    response = signed_in(member).get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="launch-form"' in body and 'id="launch-submit"' in body
    assert re.search(r'<select id="id_project" name="project"', body)
    assert f'<option value="{project.pk}" selected>Genomics' in body
    # Every catalog template, with its description and the hourly price of its default size.
    assert 'name="template" id="id_template_' in body
    assert 'value="ubuntu-24-04-base"' in body and 'value="gpu-deep-learning"' in body
    assert "Ubuntu 24.04 LTS with build essentials" in body
    assert "<b>$0.0832/h</b>" in body  # t3.large, the base templates' M
    for size in ("XS", "S", "M", "L", "XL"):
        assert f'name="size" id="id_size_{size}" value="{size}"' in body
    # The cheapest template is chosen first, with its default size.
    assert 'value="rocky-linux-9-conda-stack" data-refresh checked' in body
    assert 'id="id_size_M" value="M" data-refresh checked' in body
    assert 'id="id_name" name="name"' in body and 'id="id_ttl_hours" name="ttl_hours"' in body
    assert 'value="8"' in body  # the TTL default: the hours a launch holds against the budget
    price = element(body, "launch-price")
    assert "$0.0832" in price and "Per day" in price and "$2.0" in price  # 24 h of $0.0832, plus its disk
    whatif = element(body, "launch-whatif")
    assert "Share of the allocation" in body and "Runway" in body
    assert whatif is not None
    # The idle settings the workspace would start with (the template's), a profile to choose and a switch.
    idle = element(body, "launch-idle")
    assert "Hibernate after 60 minutes" in idle
    assert 'id="id_idle_enabled" name="idle_enabled" data-refresh checked' in body
    assert '<option value="batch">' in body
    assert "{" not in element(body, "launch-price")  # no raw JSON


def test_it_preselects_from_the_query_and_previews_without_launching(member, project, catalog):
    client = signed_in(member)
    body = client.get(f"{URL}?project={project.pk}&template=python-machine-learning&size=L").content.decode()
    assert 'value="python-machine-learning" data-refresh checked' in body
    assert 'id="id_size_L" value="L" data-refresh checked' in body
    assert "c5.4xlarge" in element(body, "launch-price")  # compute ladder, L
    data = launch_data(project, size="XS", launch=None, preview="1", template="ubuntu-24-04-base")
    response = csrf_post(client, URL, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "t3.small" in element(body, "launch-price")
    assert 'value="analysis-1"' in body and 'value="6"' in body  # the choices come back
    custom = launch_data(project, size="custom", cpu="16", memory="60", launch=None, preview="1")
    body = csrf_post(client, URL, custom).content.decode()
    assert 'id="id_size_custom" value="custom" data-refresh checked' in body
    assert "vCPU" in element(body, "launch-price")
    assert not Workspace.objects.exists()


def test_it_launches_and_redirects_to_the_workspace(member, project, account):
    client = signed_in(member)
    response = csrf_post(client, URL, launch_data(project), REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 302, response.content.decode()[:2000]
    workspace = Workspace.objects.get(name="analysis-1")
    assert response["Location"].endswith(f"/workspaces/{workspace.pk}/")
    assert workspace.owner == member and workspace.project == project and workspace.cloud_account == account
    assert workspace.instance_type == "t3.medium"  # size S on the general ladder
    assert workspace.state == "launching"
    assert ProvisionJob.objects.filter(workspace=workspace, kind="launch").exists()
    assert abs((workspace.expires_at - timezone.now()) - timedelta(hours=6)) < timedelta(minutes=1)


def test_it_shows_a_taken_name_next_to_the_name_and_creates_nothing(member, project, account):
    Workspace.objects.create(
        organization=project.organization, project=project, owner=member, name="analysis-1", state="running"
    )
    response = csrf_post(signed_in(member), URL, launch_data(project))
    assert response.status_code == 409
    body = response.content.decode()
    assert "analysis-1" in element(body, "error-name") and "exists" in element(body, "error-name")
    assert 'aria-invalid="true"' in body
    assert Workspace.objects.count() == 1 and not ProvisionJob.objects.exists()


def test_it_shows_an_invalid_name_and_a_ttl_over_the_cap_next_to_their_fields(member, project, account):
    client = signed_in(member)
    body = csrf_post(client, URL, launch_data(project, name="bad name!")).content.decode()
    assert element(body, "error-name")
    project.max_ttl_hours = 12
    project.save(update_fields=["max_ttl_hours"])
    response = csrf_post(client, URL, launch_data(project, ttl_hours="24"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "12 hours" in element(body, "error-ttl_hours")
    assert 'max="12"' in body
    assert not Workspace.objects.exists() and not ProvisionJob.objects.exists()


def test_it_refuses_a_launch_over_budget_next_to_the_price(member, project, account):
    fund(project, amount="0.01")
    response = csrf_post(signed_in(member), URL, launch_data(project, size="XL"))
    assert response.status_code == 403
    error = element(response.content.decode(), "error-price")
    assert 'href="#error-price"' in response.content.decode()  # the summary at the top links to it
    assert "pass the project's budget" in error and "$0.01" in error and "this launch holds $" in error
    assert "0.0100" not in error
    assert not Workspace.objects.exists() and not ProvisionJob.objects.exists()


def test_it_shows_a_missing_cloud_account_next_to_the_project(member, project, catalog):
    client = signed_in(member)
    response = csrf_post(client, URL, launch_data(project))
    assert response.status_code == 400
    assert "no cloud account" in element(response.content.decode(), "error-project")
    assert not Workspace.objects.exists()


def test_it_refuses_a_launch_over_the_member_cap_next_to_the_price(member, project, account):
    allocation = fund(project, amount="1000")
    MemberCap.objects.create(allocation=allocation, user=member, amount=Decimal("0.05"))
    response = csrf_post(signed_in(member), URL, launch_data(project))
    assert response.status_code == 403
    error = element(response.content.decode(), "error-price")
    assert "Your cap is $0.05" in error
    assert not Workspace.objects.exists()


def test_it_answers_404_to_an_outsider_launching_into_a_foreign_project(outsider, project, account):
    client = signed_in(outsider)
    assert client.get(URL).status_code == 200  # their own project
    assert client.get(f"{URL}?project={project.pk}").status_code == 404
    response = csrf_post(client, URL, launch_data(project))
    assert response.status_code == 404
    assert "launch-form" not in response.content.decode()
    assert not Workspace.objects.filter(project=project).exists()


def test_it_requires_csrf(member, project, account):
    client = signed_in(member)
    assert client.post(URL, launch_data(project)).status_code == 403
    assert not Workspace.objects.exists()


def test_it_asks_a_viewer_to_pick_a_project_they_can_launch_in(org, project, catalog, owner):
    viewer = make_user("viewer@lab-a.example")
    add_org_member(org, viewer)
    ProjectMember.objects.create(project=project, user=viewer, role=ProjectRole.VIEWER)
    body = signed_in(viewer).get(URL).content.decode()
    assert "launch-form" not in body and "not a member of a project you can launch in" in body


def test_it_explains_the_first_step_to_a_person_in_no_project(db, catalog):
    loner = make_user("loner@nowhere.example")
    body = signed_in(loner).get(URL).content.decode()
    assert "launch-form" not in body and "invite" in body and "loner@nowhere.example" in body
    runner = make_user("pi@lab-c.example")
    make_org("Lab C", runner)
    body = signed_in(runner).get(URL).content.decode()
    assert "Lab C" in body and "create a project" in body


def test_it_signs_in_first(client, project):
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]


def test_it_keeps_its_query_count_with_1000_workspaces(member, owner, project, account, django_assert_max_num_queries):
    fund(project)
    client = signed_in(member)
    client.get(URL)
    with CaptureQueriesContext(connection) as small:
        assert client.get(URL).status_code == 200
    add_crowd(project, owner, count=1000, cloud_account=account)
    with django_assert_max_num_queries(len(small)):
        assert client.get(URL).status_code == 200


def test_it_shows_an_unknown_template_next_to_the_template(member, project, account):
    response = csrf_post(signed_in(member), URL, launch_data(project, template="no-such-template"))
    assert response.status_code == 400
    assert "no-such-template" in element(response.content.decode(), "error-template")
    assert not Workspace.objects.exists()


def test_it_tells_a_viewer_who_can_launch_elsewhere_that_the_project_is_read_only(org, project, owner, account):
    person = make_user("both@lab-a.example")
    add_org_member(org, person)
    ProjectMember.objects.create(project=project, user=person, role=ProjectRole.VIEWER)
    other = make_project(org, "Physics", owner)
    ProjectMember.objects.create(project=other, user=person, role=ProjectRole.MEMBER)
    client = signed_in(person)
    body = client.get(URL).content.decode()
    assert f'<option value="{other.pk}" selected>Physics' in body and "Genomics" not in body
    response = csrf_post(client, URL, launch_data(project))
    assert response.status_code == 403
    assert "member" in element(response.content.decode(), "error-project")
    assert not Workspace.objects.exists()


def test_it_launches_into_the_moto_cloud_with_the_provision_task(
    member, project, account, ec2, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = csrf_post(signed_in(member), URL, launch_data(project, name="cloudy"))
    assert response.status_code == 302
    workspace = Workspace.objects.get(name="cloudy")
    assert response["Location"].endswith(f"/workspaces/{workspace.pk}/")
    workspace.refresh_from_db()
    assert workspace.provider_instance_id
    tags = [
        {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
        for reservation in ec2.describe_instances()["Reservations"]
        for instance in reservation["Instances"]
    ]
    assert any(workspace.pk in tag.values() for tag in tags)


def test_it_previews_in_constant_queries_with_1000_workspaces(
    member, owner, project, account, django_assert_max_num_queries
):
    fund(project)
    client = signed_in(member)
    data = launch_data(project, launch=None, preview="1", size="L")
    csrf_post(client, URL, data)
    token = client.cookies["csrftoken"].value
    with CaptureQueriesContext(connection) as small:
        assert client.post(URL, {**data, "csrfmiddlewaretoken": token}).status_code == 200
    add_crowd(project, owner, count=1000, cloud_account=account)
    with django_assert_max_num_queries(len(small)):
        assert client.post(URL, {**data, "csrfmiddlewaretoken": token}).status_code == 200


def test_it_checks_the_custom_hardware_and_the_ttl_by_the_api_rules(member, project, account):
    client = signed_in(member)
    response = csrf_post(client, URL, launch_data(project, size="custom", cpu="", memory="lots", ttl_hours="x"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "required" in element(body, "error-cpu")
    assert element(body, "error-memory") and element(body, "error-ttl_hours")
    response = csrf_post(client, URL, launch_data(project, size="custom", cpu="4", memory="15", name="custom-1"))
    assert response.status_code == 302
    assert Workspace.objects.get(name="custom-1").instance_type == "t3.xlarge"  # the cheapest with 4 vCPU, 16 GiB


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@needs_chromium
def test_it_refreshes_the_price_in_the_browser_and_without_javascript(member, project, catalog, live_server, browser):
    """With JavaScript a new size re-prices the page by itself (focus stays on the choice); without it the
    "Update price" button does; neither launches anything. No horizontal scrolling on a phone."""
    fund(project)
    client = Client()
    client.force_login(member, backend="django.contrib.auth.backends.ModelBackend")
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    with_js = browser.new_context(viewport={"width": 390, "height": 844})
    with_js.add_cookies([cookie])
    page = with_js.new_page()
    page.goto(f"{live_server.url}{URL}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.check("#id_size_L", force=True)
    expect(page.locator("#launch-price")).to_contain_text("t3.xlarge")
    assert page.evaluate("document.activeElement.id") == "id_size_L"
    without_js = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    without_js.add_cookies([cookie])
    page = without_js.new_page()
    page.goto(f"{live_server.url}{URL}")
    page.check("#id_size_XS", force=True)
    page.fill("#id_name", "kept")
    page.click("#launch-preview")
    expect(page.locator("#launch-price")).to_contain_text("t3.small")
    assert page.input_value("#id_name") == "kept"
    with_js.close()
    without_js.close()
    assert not Workspace.objects.exists()


def test_it_starts_from_the_project_of_the_profile(member, org, project, owner, catalog):
    other = make_project(org, "Physics", owner)
    ProjectMember.objects.create(project=other, user=member, role=ProjectRole.MEMBER)
    WorkspacePreference.objects.create(user=member, project=other)
    body = signed_in(member).get(URL).content.decode()
    assert f'<option value="{other.pk}" selected>Physics' in body


def test_it_launches_with_the_ttl_set_and_held_by_the_budget(member, project, account, settings):
    """The TTL goes to the launch service itself: the workspace is created with it, and the budget holds the cost
    of those hours (not the default reservation horizon)."""
    from budgets.models import Reservation

    settings.CARREL_BUDGET_RESERVATION_HOURS = 8
    fund(project, Decimal("1000.00"))
    client = signed_in(member)
    response = csrf_post(
        client,
        "/launch/",
        {
            "project": project.pk,
            "template": "ubuntu-24-04-base",
            "size": "S",
            "name": "ttl-box",
            "ttl_hours": "2",
            "launch": "1",
        },
        from_page="/launch/",
    )
    assert response.status_code == 302, response.content.decode()[:500]
    workspace = Workspace.objects.get(name="ttl-box")
    assert workspace.expires_at is not None
    left = (workspace.expires_at - timezone.now()).total_seconds() / 3600
    assert 1.9 < left <= 2
    reservation = Reservation.objects.get(workspace=workspace)
    two_hours = workspace.hourly_rate * 2
    assert two_hours <= reservation.amount < two_hours + Decimal("0.10")  # plus 2 h of the volume
