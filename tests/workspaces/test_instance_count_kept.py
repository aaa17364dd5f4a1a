"""GET /api/v1/instances counts an unfiltered list, or one filtered by the states projects count (running; every
state but terminated), from the projects' kept counts (projects.models.ProjectTally) instead of counting every
workspace on every page. X-Total-Count must stay what a count of the visible rows gives: for an owner, a
member of one project only, an outsider, with another tenant's workspaces in the same tables, a deleted project,
and filters the kept counts cannot answer."""

import pytest
from django.db import connection

from accounts.models import OrgRole
from projects import tallies
from projects.models import ProjectMember, ProjectRole
from projects.services import project_delete
from tests.conftest import add_org_member, bearer_client, make_org, make_project, make_user
from workspaces.models import LIVE_STATES, Workspace, WorkspaceState

S = WorkspaceState
pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL keeps the counts")
LIVE = ",".join(sorted(LIVE_STATES))
FILTERS = ["", "?state=running", f"?state={LIVE}", "?state=running,running", "?state=stopped", "?state=running,stopped"]


def _fill(project, owner, states, *, prefix: str = "") -> None:
    for i, state in enumerate(states):
        Workspace.objects.create(
            organization=project.organization,
            project=project,
            owner=owner,
            name=f"{prefix}{project.name}-{i}",
            state=state,
        )


def _total(client, query: str) -> int:
    response = client.get(f"/api/v1/instances{query}")
    assert response.status_code == 200, response.content
    return int(response["X-Total-Count"])


def _visible(user, query: str) -> int:
    rows = Workspace.objects.visible_to(user)
    if "state=" in query:
        rows = rows.filter(state__in=query.split("state=")[1].split(","))
    return rows.count()


def test_it_counts_what_each_caller_sees(owner, org, project, outsider):
    member = make_user("member@example.com")
    add_org_member(org, member, OrgRole.MEMBER)
    ProjectMember.objects.create(project=project, user=member, role=ProjectRole.MEMBER)
    other = make_project(org, "Other", owner)
    gone = make_project(org, "Gone", owner)
    theirs = make_project(make_org("Theirs", outsider), "Theirs", outsider)
    _fill(project, owner, S.values)
    _fill(other, owner, [S.RUNNING, S.RUNNING, S.STOPPED])
    _fill(gone, owner, [S.TERMINATED])  # a project with live workspaces cannot be deleted
    _fill(theirs, outsider, [S.RUNNING, S.TERMINATED, S.HIBERNATED])
    project_delete(actor=owner, project=gone)
    tallies.compact()
    _fill(other, owner, [S.TERMINATED, S.RUNNING], prefix="later-")  # rows appended after the compaction count too

    for user in (owner, member, outsider):
        client = bearer_client(user)
        for query in FILTERS:
            assert _total(client, query) == _visible(user, query), (user.email, query)
    assert _total(bearer_client(owner), "") == len(S.values) + 5
    assert _total(bearer_client(member), "?state=running") == 1
    assert _total(bearer_client(outsider), f"?state={LIVE}") == 2


def test_it_reads_the_kept_counts_and_counts_what_they_cannot_answer(owner, project, django_assert_max_num_queries):
    _fill(project, owner, [S.RUNNING, S.STOPPED])
    client = bearer_client(owner)
    client.get("/api/v1/instances")  # the token's first use is recorded
    kept, counted = 'FROM "projects_projecttally"', 'COUNT(*) AS "__count" FROM "workspaces_workspace"'
    for query, expected, used in (
        ("", 2, kept),
        ("?state=running", 1, kept),
        ("?state=stopped", 1, counted),
        (f"?project={project.pk}", 2, counted),
        ("?owner=nobody@example.com", 0, counted),
        ("?state=running&template=x", 0, counted),
    ):
        with django_assert_max_num_queries(3) as queries:
            assert _total(client, query) == expected, query
        (count_sql,) = [q["sql"] for q in queries.captured_queries if "COUNT(*)" in q["sql"] or "SUM(" in q["sql"]]
        assert used in count_sql, query
