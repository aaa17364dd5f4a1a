"""The plans PostgreSQL makes for GET /api/v1/projects/{id}/budget on a project of a few thousand workspaces (two
tenants, realistic statistics after VACUUM ANALYZE, the planner left to choose): no query reads the workspace or
transition tables sequentially; the open spend reads the kept sums and the last minute's cursors, not every open
workspace; the workspaces that rested come from the partial index of resting transitions."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from budgets import open_sums
from tests.conftest import bearer_client, make_org, make_project, make_user
from workspaces.models import StateTransition, Workspace, WorkspaceState

S = WorkspaceState
pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner"),
    pytest.mark.django_db(transaction=True),
]
SEQUENTIAL = re.compile(r"Seq Scan on (workspaces_workspace|workspaces_statetransition)\b")


def load(project, owner, count: int, *, prefix: str) -> None:
    now = timezone.now()
    made = Workspace.objects.bulk_create(
        Workspace(
            organization=project.organization,
            project=project,
            owner=owner,
            name=f"{prefix}-{index}",
            state=S.RUNNING,
            instance_type="t3.medium",
            hourly_rate=Decimal("0.0416"),
            storage_monthly_rate=Decimal("2.4"),
            volume_billed=True,
            ledger_through=now - timedelta(minutes=5 + index % 600),
            created_at=now - timedelta(days=1, seconds=index),
            template_snapshot={"packages": ["numpy"] * 50},
        )
        for index in range(count)
    )
    StateTransition.objects.bulk_create(
        StateTransition(
            workspace=w, from_state=old, to_state=new, created_at=now - timedelta(hours=3), hourly_rate=Decimal(0)
        )
        for w in made
        for old, new in ((S.PENDING, S.LAUNCHING), (S.LAUNCHING, S.RUNNING))
    )


def test_it_reads_the_budget_without_scanning_workspaces_or_transitions():
    owner = make_user("owner@lab-a.example")
    org = make_org("Lab A", owner)
    project = make_project(org, "Big", owner)
    load(project, owner, 3000, prefix="a")
    other_owner = make_user("owner@lab-b.example")
    other = make_project(make_org("Lab B", other_owner), "Theirs", other_owner)
    load(other, other_owner, 2000, prefix="b")
    open_sums.compact()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    queries: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        queries.append((sql, params))
        return execute(sql, params, many, context)

    client = bearer_client(owner)
    with connection.execute_wrapper(record):
        response = client.get(f"/api/v1/projects/{project.pk}/budget")
    assert response.status_code == 200, response.content
    assert Decimal(str(response.json()["current_spend"])) > 0
    plans = {}
    for sql, params in queries:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE) " + sql, params)
            plans[sql] = "\n".join(row[0] for row in cursor.fetchall())
    for sql, text in plans.items():
        assert not SEQUENTIAL.search(text), f"{sql}\n{text}"
    open_spend = [text for sql, text in plans.items() if "budgets_openspendsum" in sql]
    assert open_spend
    for text in open_spend:
        # Index reads of the open workspaces return only the last minute's cursors (none here), not 3,000.
        for rows in re.findall(r"workspace_open_cost on workspaces_workspace.*actual time=\S+ rows=(\d+)", text):
            assert int(rows) == 0, text
