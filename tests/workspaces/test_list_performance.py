"""GET /api/v1/instances at scale: the fast path renders exactly what WorkspaceSerializer renders, in at most
four queries for the whole request (the bearer token's included) however many workspaces, with keyset pages
(cursors in the Link header) and page numbers that agree, and indexes that serve every page and count."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from accounts.models import OrgRole
from platform_site.api.renderers import ExactJSONRenderer
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, bearer_client, make_org, make_project, make_user
from workspaces.models import ProvisionJob, Workspace, WorkspaceState
from workspaces.selectors import workspaces_for
from workspaces.serializers import WorkspaceSerializer

LIST = "/api/v1/instances"
NOW = timezone.now().replace(microsecond=123456)


def workspace(project, owner, name: str, *, minutes_ago: int = 0, **fields) -> Workspace:
    return Workspace.objects.create(
        organization=project.organization,
        project=project,
        owner=owner,
        name=name,
        created_at=NOW - timedelta(minutes=minutes_ago),
        **fields,
    )


def bulk(project, owner, count: int, *, prefix: str, same_time: bool = False) -> list[Workspace]:
    """`count` running workspaces, each a minute older than the one before (or all created at one instant)."""
    return Workspace.objects.bulk_create(
        Workspace(
            organization=project.organization,
            project=project,
            owner=owner,
            name=f"{prefix}-{index}",
            state=WorkspaceState.RUNNING,
            instance_type="t3.medium",
            hourly_rate=Decimal("0.0416"),
            created_at=NOW - timedelta(minutes=0 if same_time else index),
        )
        for index in range(count)
    )


def links(response) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.get("Link", ""))}


def walk(client, url: str, rel: str = "next") -> list[str]:
    """Every name reached by following the Link header from `url`."""
    names: list[str] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        names += [row["name"] for row in response.json()]
        url = links(response).get(rel, "")
    return names


def expected_names(user) -> list[str]:
    return list(Workspace.objects.visible_to(user).order_by("-created_at", "id").values_list("name", flat=True))


# --- The same JSON as the serializer -------------------------------------------------------------------------


@pytest.fixture
def varied(org, project, owner):
    """Workspaces in different states, with and without spot, TTL, addresses, jobs, ledger and a discount."""
    org.discount_percent = Decimal("12.5")
    org.save()
    running = workspace(
        project,
        owner,
        "running-box",
        minutes_ago=1,
        state=WorkspaceState.RUNNING,
        provider_instance_id="i-0123456789abcdef0",
        public_ip="54.1.2.3",
        private_ip="10.0.0.7",
        instance_type="g5.xlarge",
        size="L",
        region="eu-west-1",
        spot=True,
        template_name="python-ml",
        hourly_rate=Decimal("1.0060"),
        hibernation_capable=True,
        root_volume_gb=120,
        launch_time=NOW - timedelta(hours=5, seconds=7),
        expires_at=NOW + timedelta(hours=3, microseconds=5),
        ledger_through=NOW - timedelta(minutes=42, seconds=13),
        run_billed_seconds=Decimal("3600"),
        cost_closed=Decimal("4.12345678"),
        volume_billed=True,
        storage_monthly_rate=Decimal("9.60"),
    )
    ProvisionJob.objects.create(
        workspace=running, progress=100, status="succeeded", created_at=NOW - timedelta(hours=5)
    )
    ProvisionJob.objects.create(workspace=running, kind="resize", progress=40, created_at=NOW - timedelta(minutes=3))
    stopped = workspace(
        project,
        owner,
        "stopped-box",
        minutes_ago=2,
        state=WorkspaceState.STOPPED,
        provider_instance_id="i-00000000000000001",
        private_ip="10.0.0.8",
        hourly_rate=Decimal("0.0416"),
        ledger_through=NOW - timedelta(days=3),
        cost_closed=Decimal("0.5"),
        volume_billed=True,
        storage_monthly_rate=Decimal("2.4"),
    )
    ProvisionJob.objects.create(workspace=stopped, progress=100, status="succeeded")
    workspace(project, owner, "pending-box", minutes_ago=3)  # no job, no instance, no ledger yet
    workspace(
        project,
        owner,
        "failed-box",
        minutes_ago=4,
        state=WorkspaceState.ERROR,
        error_message="InsufficientInstanceCapacity: « no g5 » in us-east-1a",
        expires_at=None,
    )
    workspace(project, owner, "gone-box", minutes_ago=5, state=WorkspaceState.TERMINATED, cost_closed=Decimal("7"))
    return project


def test_it_renders_the_list_exactly_as_the_serializer_does(varied, owner):
    client = bearer_client(owner)
    with time_machine.travel(NOW + timedelta(seconds=1), tick=False):
        response = client.get(LIST)
        reference = WorkspaceSerializer(list(workspaces_for(user=owner).order_by("-created_at", "id")), many=True).data
    assert response.status_code == 200
    fast = response.json()
    assert [row["name"] for row in fast] == ["running-box", "stopped-box", "pending-box", "failed-box", "gone-box"]
    renderer = ExactJSONRenderer()
    for row, expected in zip(response.data, reference, strict=True):
        assert list(row) == list(expected)  # the same keys in the same order
        assert row == dict(expected), row["name"]
        assert {key: type(value) for key, value in row.items()} == {key: type(v) for key, v in expected.items()}
    assert response.content == renderer.render(reference)  # byte for byte
    running = fast[0]
    assert running["launch_progress"] == 40  # the newest job's
    assert running["current_spend"] > 4.1235
    assert fast[2]["launch_progress"] == 0 and fast[2]["id"] == "" and fast[2]["public_ip"] is None


def test_it_keeps_the_documented_shape_of_the_list(db):
    from rest_framework.test import APIClient

    schema = json.loads(APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    operation = schema["paths"]["/api/v1/instances"]["get"]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PaginatedWorkspaceList"}
    assert schema["components"]["schemas"]["PaginatedWorkspaceList"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Workspace"},
    }
    parameters = {parameter["name"] for parameter in operation["parameters"]}
    assert {"page", "page_size", "cursor", "state", "project", "template", "owner"} <= parameters


# --- Queries ----------------------------------------------------------------------------------------------------


def test_it_lists_in_at_most_four_queries_for_one_or_300_workspaces(org, project, owner, django_assert_max_num_queries):
    bulk(project, owner, 1, prefix="first")
    client = bearer_client(owner)
    # The token's first use is recorded (one UPDATE a minute): the whole request, that included, is 4 queries.
    with django_assert_max_num_queries(4):
        assert len(client.get(LIST).json()) == 1
    # Then three: the token, the count and the page, however many workspaces and however deep the page.
    with django_assert_max_num_queries(3):
        client.get(LIST)
    extra = bulk(project, owner, 299, prefix="more")
    ProvisionJob.objects.bulk_create(ProvisionJob(workspace=w, progress=100) for w in extra)
    for url in (LIST, f"{LIST}?page=2", f"{LIST}?page=3&state=running", f"{LIST}?owner={owner.email}"):
        with django_assert_max_num_queries(3):
            response = client.get(url)
        assert response.status_code == 200 and response["X-Total-Count"] == "300"
    following = links(client.get(LIST))["next"]
    with django_assert_max_num_queries(3):
        response = client.get(following)
    assert len(response.json()) == 100


# --- Pages: cursors and numbers ----------------------------------------------------------------------------------


@pytest.fixture
def many(org, project, owner):
    bulk(project, owner, 23, prefix="a")
    bulk(project, owner, 9, prefix="tie", same_time=True)  # created at one instant: the id breaks the tie
    return project


def test_it_pages_by_cursor_through_every_workspace_once_in_order(many, owner):
    client = bearer_client(owner)
    everything = expected_names(owner)
    assert len(everything) == 32
    first = client.get(LIST, {"page_size": 5})
    assert first["X-Total-Count"] == "32" and "prev" not in links(first)
    assert "cursor=" in links(first)["next"] and "page=" not in links(first)["next"]
    assert links(first)["last"] == "http://testserver/api/v1/instances?page=7&page_size=5"
    assert walk(client, f"{LIST}?page_size=5") == everything
    # Back from the last page by the prev links.
    last = client.get(LIST, {"page_size": 5, "page": 7})
    assert [row["name"] for row in last.json()] == everything[30:]
    assert "next" not in links(last) and "last" not in links(last)
    backwards = walk(client, links(last)["prev"], rel="prev")
    assert backwards == [name for start in range(25, -5, -5) for name in everything[max(start, 0) : start + 5]]


@pytest.mark.parametrize("size", [1, 5, 7, 32, 100])
def test_it_answers_every_page_number_as_before(many, owner, size):
    client = bearer_client(owner)
    everything = expected_names(owner)
    pages = -(-len(everything) // size)
    for number in range(1, pages + 1):
        response = client.get(LIST, {"page_size": size, "page": number})
        assert [row["name"] for row in response.json()] == everything[(number - 1) * size : number * size]
        assert response["X-Total-Count"] == "32"
        assert ("next" in links(response)) == (number < pages)
        assert ("prev" in links(response)) == (number > 1)
        if number < pages:  # the cursor continues exactly where the page ends
            following = client.get(links(response)["next"]).json()
            assert [row["name"] for row in following] == everything[number * size : (number + 1) * size]
    from tests.conftest import assert_error

    assert_error(client.get(LIST, {"page_size": size, "page": pages + 1}), 404, "PAGE_NOT_FOUND")


def test_it_refuses_a_bad_cursor(many, owner):
    from tests.conftest import assert_error

    client = bearer_client(owner)
    cursor = links(client.get(LIST, {"page_size": 5}))["next"].split("cursor=")[1]
    for bad in ("x", "e30", "WyJuIiwxXQ", "WyJxIixbIjIwMjYtMDEtMDEiLCJ3cyJdXQ", cursor[:-3]):
        assert_error(client.get(LIST, {"cursor": bad}), 400, "VALIDATION_ERROR")
    assert_error(client.get(LIST, {"cursor": cursor, "page": 2}), 400, "VALIDATION_ERROR")
    assert_error(client.get(f"{LIST}?cursor={cursor}&cursor={cursor}"), 400, "VALIDATION_ERROR")


def test_it_keeps_the_filters_in_the_links(many, project, owner):
    client = bearer_client(owner)
    Workspace.objects.filter(name__startswith="tie").update(state=WorkspaceState.STOPPED)
    names = walk(client, f"{LIST}?page_size=4&state=running&project={project.name}")
    assert names == [name for name in expected_names(owner) if name.startswith("a-")]


def test_other_lists_page_by_number_as_before(db):
    from rest_framework.generics import ListAPIView
    from rest_framework.test import APIRequestFactory

    from platform_site.api.pagination import HeaderPagination

    class Plain(ListAPIView):
        pagination_class = HeaderPagination
        authentication_classes: list = []
        permission_classes: list = []

        def get_queryset(self):
            return list(range(12))

        def list(self, request):
            page = self.paginate_queryset(self.get_queryset())
            return self.get_paginated_response(page)

    response = Plain.as_view()(APIRequestFactory().get("/things", {"page_size": 5, "page": 2, "cursor": "ignored"}))
    assert response.data == [5, 6, 7, 8, 9] and response["X-Total-Count"] == "12"
    assert response["Link"] == (
        '<http://testserver/things?cursor=ignored&page=3&page_size=5>; rel="next", '
        '<http://testserver/things?cursor=ignored&page_size=5>; rel="prev"'
    )


# --- Tenants ----------------------------------------------------------------------------------------------------


def test_it_lists_exactly_what_each_caller_may_see(org, project, owner):
    other_owner = make_user("owner@lab-b.example")
    other_org = make_org("Lab B", other_owner)
    other_project = make_project(other_org, "Genomics", other_owner)  # the same project name, another tenant
    bulk(project, owner, 12, prefix="a")
    bulk(other_project, other_owner, 15, prefix="b")
    hidden = make_project(org, "Private", owner)
    bulk(hidden, owner, 4, prefix="hidden")
    member = make_user("member@lab-a.example")
    add_org_member(org, member, OrgRole.MEMBER)
    ProjectMember.objects.create(project=project, user=member, role=ProjectRole.MEMBER)
    # (caller, all they see, what ?project=Genomics shows them: their own tenant's project of that name only)
    for user, total, genomics in ((owner, 16, 12), (other_owner, 15, 15), (member, 12, 12)):
        client = bearer_client(user)
        response = client.get(LIST, {"page_size": 5})
        assert response["X-Total-Count"] == str(total)
        assert walk(client, f"{LIST}?page_size=5") == expected_names(user)
        assert client.get(LIST, {"project": "Genomics"})["X-Total-Count"] == str(genomics)
    # A cursor is a position, not a grant: another tenant's cursor shows the caller's own rows only.
    foreign = links(bearer_client(other_owner).get(LIST, {"page_size": 5}))["next"]
    names = [row["name"] for row in bearer_client(member).get(foreign).json()]
    assert names and set(names) <= set(expected_names(member))
    assert bearer_client(make_user("nobody@lab-c.example")).get(LIST)["X-Total-Count"] == "0"
