"""The page queries of the big lists read an index in the list's order, not the whole table (PostgreSQL only:
its planner decides, with enough rows loaded and ANALYZEd for it to choose as production would)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from tests.conftest import bearer_client

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN plans are PostgreSQL's")
ROWS = 5000


def plan_of(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_it_reads_the_audit_page_from_an_index(owner, org):
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        AuditEvent(
            organization=org,
            actor=owner,
            actor_label=owner.email,
            action="workspace.launch",
            target_type="workspace",
            target_id=f"ws{i}",
            created_at=now - timedelta(seconds=i),
        )
        for i in range(ROWS)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
    page = AuditEvent.objects.visible_to(owner).order_by("-created_at", "-id")
    for queryset in (page[:100], page.filter(organization_id=org.pk)[:100], page.filter(action="x")[:100]):
        plan = plan_of(queryset)
        assert "Seq Scan on audit_auditevent" not in plan, plan


@pytest.mark.django_db(transaction=True)
def test_it_counts_the_audit_trail_from_an_index(owner, org, outsider):
    """X-Total-Count: each part of the scope from its index, not every event scanned for their OR (with the
    visibility map autovacuum keeps, which index-only scans need)."""
    now = timezone.now()
    theirs = outsider.memberships.get().organization
    AuditEvent.objects.bulk_create(
        AuditEvent(
            organization=org if i % 2 else theirs,
            actor=owner,
            actor_label=owner.email,
            action="workspace.launch",
            target_type="workspace",
            target_id=f"ws{i}",
            created_at=now - timedelta(seconds=i),
        )
        for i in range(ROWS * 2)
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    client = bearer_client(owner)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/audit")
    assert response.headers["X-Total-Count"] == str(ROWS + 1)  # and the token's own event
    (count,) = [query["sql"] for query in queries.captured_queries if "COUNT(*)" in query["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + count)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan on audit_auditevent" not in plan, plan
