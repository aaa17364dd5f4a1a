"""Every list endpoint runs a constant number of queries, however many rows it returns.

Each test measures one request with a single row, adds 30 rows (with related rows of their own:
members, workspaces, memberships), and asserts the same request runs no more queries.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import OrgRole
from accounts.services import token_create
from audit.services import audit_record
from budgets.models import Allocation, BudgetPool
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, bearer_client, make_org, make_project, make_user
from tests.support import record_cost
from workspaces.models import Workspace, WorkspaceState

MORE = 30


def measure(client, url: str) -> tuple[int, list]:
    client.get(url)  # warm up: the token's first use is recorded once, then not again for a minute
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(context.captured_queries), response.json()


def get_rows(client, url: str) -> list:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()


def people(org, count: int, prefix: str) -> list:
    users = [make_user(f"{prefix}{i}@lab-a.example") for i in range(count)]
    for user in users:
        add_org_member(org, user)
    return users


def add_workspaces(project, owner) -> None:
    for i, state in enumerate([WorkspaceState.RUNNING, WorkspaceState.STOPPED, WorkspaceState.TERMINATED]):
        Workspace.objects.create(
            organization=project.organization, project=project, owner=owner, name=f"{project.pk}-ws-{i}", state=state
        )


def fund(project, owner, pool=None):
    """An allocation of $100 for the project, with $1.50 of ledger rows already spent."""
    now = timezone.now()
    if pool is None:
        pool = BudgetPool.objects.create(
            organization=project.organization,
            name="Grant",
            total_amount=Decimal("100000"),
            start_date=now - timedelta(days=10),
            end_date=now + timedelta(days=10),
        )
    Allocation.objects.create(pool=pool, project=project, amount=Decimal("100"))
    workspace = Workspace.objects.filter(project=project).first()
    record_cost(
        organization=project.organization,
        workspace=workspace,
        project=project,
        member=owner,
        kind="compute",
        item="t3.medium",
        start=now - timedelta(hours=1),
        end=now,
        day=now.date(),
        quantity=Decimal(3600),
        unit="seconds",
        rate=Decimal("1.5"),
        amount=Decimal("1.5"),
    )
    return pool


@pytest.fixture
def client(owner):
    return bearer_client(owner)


def test_project_list_runs_constant_queries(client, owner, org, project, django_assert_max_num_queries):
    crew = people(org, 3, "crew")
    for user in crew:
        ProjectMember.objects.create(project=project, user=user, role=ProjectRole.MEMBER)
    add_workspaces(project, owner)
    pool = fund(project, owner)
    queries, rows = measure(client, "/api/v1/projects")
    assert len(rows) == 1 and len(rows[0]["members"]) == 4
    assert rows[0]["budget"]["total_allocated"] == 100 and rows[0]["budget"]["current_spend"] == 1.5
    assert (rows[0]["active_instances"], rows[0]["live_instances"], rows[0]["total_instances"]) == (1, 2, 3)

    for i in range(MORE):
        extra = make_project(org, f"Project {i:02}", crew[i % 3])
        for user in crew:
            ProjectMember.objects.get_or_create(project=extra, user=user, defaults={"role": ProjectRole.VIEWER})
        ProjectMember.objects.create(project=extra, user=owner, role=ProjectRole.ADMIN)
        add_workspaces(extra, crew[0])
        fund(extra, owner, pool=pool)

    with django_assert_max_num_queries(queries):
        rows = get_rows(client, "/api/v1/projects")
    assert len(rows) == MORE + 1
    assert all(row["budget"]["current_spend"] == 1.5 for row in rows)
    assert all(len(row["members"]) == 4 and row["total_instances"] == 3 for row in rows)
    assert {row["role"] for row in rows} == {"owner"}  # the org owner owns every project


def test_project_list_runs_constant_queries_for_a_plain_member(org, project, django_assert_max_num_queries):
    member = make_user("plain@lab-a.example")
    add_org_member(org, member)
    ProjectMember.objects.create(project=project, user=member, role=ProjectRole.VIEWER)
    client = bearer_client(member)
    queries, rows = measure(client, "/api/v1/projects")
    assert [row["role"] for row in rows] == ["viewer"]

    others = people(org, 2, "other")
    for i in range(MORE):
        extra = make_project(org, f"Project {i:02}", others[0])
        ProjectMember.objects.create(project=extra, user=others[1], role=ProjectRole.ADMIN)
        ProjectMember.objects.create(project=extra, user=member, role=ProjectRole.MEMBER)
        add_workspaces(extra, others[0])
        make_project(org, f"Hidden {i:02}", others[0])

    with django_assert_max_num_queries(queries):
        rows = get_rows(client, "/api/v1/projects")
    assert len(rows) == MORE + 1


def test_project_member_list_runs_constant_queries(client, org, project, django_assert_max_num_queries):
    url = f"/api/v1/projects/{project.pk}/members"
    queries, rows = measure(client, url)
    assert len(rows) == 1

    for user in people(org, MORE, "member"):
        ProjectMember.objects.create(project=project, user=user, role=ProjectRole.MEMBER)

    with django_assert_max_num_queries(queries):
        rows = get_rows(client, url)
    assert len(rows) == MORE + 1


def test_organization_list_runs_constant_queries(client, owner, org, django_assert_max_num_queries):
    queries, rows = measure(client, "/api/v1/organizations")
    assert len(rows) == 1

    for i in range(MORE):
        founder = make_user(f"founder{i}@lab-{i}.example")
        extra = make_org(f"Lab {i:02}", founder)
        add_org_member(extra, owner, [OrgRole.ADMIN, OrgRole.MEMBER][i % 2])
        add_org_member(extra, make_user(f"postdoc{i}@lab-{i}.example"))

    with django_assert_max_num_queries(queries):
        rows = get_rows(client, "/api/v1/organizations")
    assert len(rows) == MORE + 1
    assert all(row["member_count"] == 3 for row in rows if row["id"] != org.pk)


def test_organization_member_list_runs_constant_queries(client, org, django_assert_max_num_queries):
    url = f"/api/v1/organizations/{org.pk}/members"
    queries, rows = measure(client, url)
    assert len(rows) == 1

    people(org, MORE, "member")

    with django_assert_max_num_queries(queries):
        rows = get_rows(client, url)
    assert len(rows) == MORE + 1


def test_user_list_runs_constant_queries(client, owner, org, django_assert_max_num_queries):
    queries, rows = measure(client, "/api/v1/users")
    assert len(rows) == 1

    second = make_org("Lab Two", owner)
    for i, user in enumerate(people(org, MORE, "user")):
        if i % 2:
            add_org_member(second, user, OrgRole.ADMIN)

    with django_assert_max_num_queries(queries):
        rows = get_rows(client, "/api/v1/users")
    assert len(rows) == MORE + 1
    assert sorted({len(row["organizations"]) for row in rows}) == [1, 2]


def test_token_list_runs_constant_queries(client, owner, django_assert_max_num_queries):
    queries, rows = measure(client, "/api/v1/tokens")
    assert len(rows) == 1

    for i in range(MORE):
        token_create(actor=owner, name=f"token {i}", scopes=["read"])

    with django_assert_max_num_queries(queries):
        rows = get_rows(client, "/api/v1/tokens")
    assert len(rows) == MORE + 1


def test_audit_list_runs_constant_queries(client, owner, org, project, django_assert_max_num_queries):
    queries, rows = measure(client, "/api/v1/audit")
    assert len(rows) == 1  # the token's creation

    crew = people(org, 3, "crew")
    for i in range(MORE):
        actor = [owner, *crew][i % 4]
        audit_record(actor=actor, action="project.update", target=project, organization=org, metadata={"i": i})

    with django_assert_max_num_queries(queries):
        rows = get_rows(client, "/api/v1/audit")
    assert len(rows) == MORE + 1
