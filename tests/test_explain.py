"""The page queries of the big lists read an index in the list's order, not the whole table (PostgreSQL only:
its planner decides, with enough rows loaded and ANALYZEd for it to choose as production would)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent

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
