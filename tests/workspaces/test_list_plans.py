"""The plans PostgreSQL makes for GET /api/v1/instances: every query the list runs (counts and pages: first,
next and previous by cursor, a middle and the last page by number, each filter) is served by an index, never by
a sequential scan of the workspace table, and the first and cursor pages never sort the visible workspaces.

Honest plans need realistic statistics: a few thousand workspaces (two tenants, several projects and owners),
then VACUUM ANALYZE, as autovacuum leaves a production table, and the planner left to choose (no enable_*
switches): with a handful of rows PostgreSQL rightly prefers a sequential scan, which proves nothing. VACUUM
cannot run inside a transaction, hence a transactional test. Skipped on SQLite, which has no such planner.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from tests.conftest import bearer_client, make_org, make_project, make_user
from workspaces.models import ProvisionJob, Workspace, WorkspaceState

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner"),
    pytest.mark.django_db(transaction=True),
]

LIST = "/api/v1/instances"
SEQUENTIAL = re.compile(r"Seq Scan on workspaces_workspace\b")


def load(project, owner, count: int, *, prefix: str, states=(WorkspaceState.RUNNING,)) -> None:
    now = timezone.now()
    created = Workspace.objects.bulk_create(
        Workspace(
            organization=project.organization,
            project=project,
            owner=owner,
            name=f"{prefix}-{index}",
            state=states[index % len(states)],
            instance_type="t3.medium",
            hourly_rate=Decimal("0.0416"),
            created_at=now - timedelta(seconds=index),
            template_snapshot={"packages": ["numpy"] * 50},  # rows as wide as real ones
        )
        for index in range(count)
    )
    ProvisionJob.objects.bulk_create(ProvisionJob(workspace=w, progress=100) for w in created)


def list_queries(client, url: str) -> tuple[object, list[tuple[str, object]]]:
    """The response and the SQL (with its parameters) of each query on the workspace table it ran."""
    queries: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        queries.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = client.get(url)
    assert response.status_code == 200, response.content
    return response, [(sql, params) for sql, params in queries if "workspaces_workspace" in sql]


def plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def next_link(response, rel: str) -> str:
    found = dict((rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response["Link"]))
    return found[rel]


def test_it_serves_every_page_and_count_of_the_list_from_an_index():
    owner = make_user("owner@lab-a.example")
    colleague = make_user("colleague@lab-a.example")
    org = make_org("Lab A", owner)
    from tests.conftest import add_org_member

    add_org_member(org, colleague)
    project = make_project(org, "Genomics", owner)
    second = make_project(org, "Imaging", owner)
    stranger = make_user("owner@lab-b.example")
    foreign = make_project(make_org("Lab B", stranger), "Other", stranger)
    load(project, owner, 3000, prefix="a", states=(WorkspaceState.RUNNING, WorkspaceState.STOPPED))
    load(project, colleague, 300, prefix="c")
    load(second, owner, 400, prefix="i")
    load(foreign, stranger, 1500, prefix="f")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # every table: the plan depends on the projects' and members' statistics
    client = bearer_client(owner)

    first, _ = list_queries(client, LIST)
    assert first["X-Total-Count"] == "3700"
    urls = {
        "first page": LIST,
        "next by cursor": next_link(first, "next"),
        "page 2": f"{LIST}?page=2",
        "middle page": f"{LIST}?page=18",
        "last page": f"{LIST}?page=37",
        "project": f"{LIST}?project=Imaging",
        "project by id, deep": f"{LIST}?project={project.pk}&page=30",
        "owner": f"{LIST}?owner={colleague.email}",
        "state": f"{LIST}?state=stopped",
    }
    last, _ = list_queries(client, urls["last page"])
    urls["previous by cursor"] = next_link(last, "prev")
    # Unfiltered, the total is the projects' kept counts (tests/workspaces/test_instance_count_kept.py): the
    # page is then the only query on the workspace table.
    kept = {"first page", "next by cursor", "page 2", "middle page", "last page", "previous by cursor"}
    for name, url in urls.items():
        response, queries = list_queries(client, url)
        if name in kept:
            assert len(queries) == 1, (name, queries)  # the page
        else:
            assert len(queries) == 2, (name, queries)  # the count and the page
            assert "count(" in queries[0][0].lower()
        plans = [plan(sql, params) for sql, params in queries]
        page = plans[-1]
        for text in plans:
            assert not SEQUENTIAL.search(text), f"{name}: a sequential scan of the workspace table\n{text}"
        if name in ("first page", "next by cursor", "previous by cursor", "project", "owner"):
            # The order's index yields the page in order: no sort of every visible workspace.
            assert "Sort" not in page, f"{name}: sorts instead of reading the order's index\n{page}"
