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
