"""GET /api/v1/audit answers from plain rows: the same JSON as AuditEventSerializer, in at most 4 queries."""

from audit.api import AuditEventSerializer
from audit.models import AuditEvent
from audit.services import audit_record
from tests.conftest import bearer_client, make_org, make_user


def test_it_answers_the_same_json_as_the_event_serializer(owner, org, project, django_assert_max_num_queries):
    for i in range(5):
        audit_record(actor=owner, action=f"project.update{i}", target=project, metadata={"i": i, "nested": [1, "a"]})
    stranger = make_user("stranger@lab-b.example")
    make_org("Lab B", stranger)
    client = bearer_client(owner)
    client.get("/api/v1/audit")
    with django_assert_max_num_queries(4):
        response = client.get("/api/v1/audit?page_size=4")
    assert response.status_code == 200
    visible = AuditEvent.objects.visible_to(owner).order_by("-created_at", "-id")
    assert response.json() == [dict(row) for row in AuditEventSerializer(list(visible[:4]), many=True).data]
    assert int(response.headers["X-Total-Count"]) == visible.count()


def test_it_counts_the_trail_and_the_personal_events_exactly_and_nothing_of_others(owner, org, project, outsider):
    """X-Total-Count counts the scope's two parts apart: the trails the caller administers and their personal
    events (no organization), under every filter; another tenant's events never count."""
    for i in range(3):
        audit_record(actor=owner, action="project.update", target=project, metadata={"i": i})
    audit_record(actor=owner, action="token.create", target=owner, organization=None)
    audit_record(actor=outsider, action="token.create", target=outsider, organization=None)
    theirs = outsider.project_memberships.get().project
    audit_record(actor=outsider, action="project.update", target=theirs, organization=theirs.organization)
    client = bearer_client(owner)
    for query in ("", "?action=project.update", "?action=token.create", f"?organization={org.pk}", "?actor=x@y.z"):
        response = client.get(f"/api/v1/audit{query}")
        assert response.status_code == 200
        rows = response.json()
        assert int(response.headers["X-Total-Count"]) == len(rows), query
        assert all(row["actor"] == owner.email for row in rows), query
    # The personal events: the one recorded here and the client's token; the outsider's are theirs.
    assert int(client.get("/api/v1/audit?action=token.create").headers["X-Total-Count"]) == 2
    assert int(bearer_client(outsider).get("/api/v1/audit").headers["X-Total-Count"]) == (
        AuditEvent.objects.visible_to(outsider).count()
    )
