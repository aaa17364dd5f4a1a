"""An organization's time zone (its days end at midnight there) and its negotiated discount."""

from tests.conftest import add_org_member, assert_error, bearer_client, make_user


def test_it_shows_the_time_zone_and_discount_and_lets_an_admin_set_the_time_zone(owner_client, org):
    shown = owner_client.get(f"/api/v1/organizations/{org.pk}").json()
    assert (shown["time_zone"], shown["discount_percent"]) == ("UTC", 0.0)
    changed = owner_client.patch(f"/api/v1/organizations/{org.pk}", {"time_zone": "Europe/Berlin"}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["time_zone"] == "Europe/Berlin"
    error = assert_error(
        owner_client.patch(f"/api/v1/organizations/{org.pk}", {"time_zone": "Mars/Olympus"}, format="json"), 400
    )
    assert "time_zone" in error["fields"]


def test_the_discount_is_not_the_organizations_to_set(owner_client, org):
    owner_client.patch(f"/api/v1/organizations/{org.pk}", {"discount_percent": 90}, format="json")
    org.refresh_from_db()
    assert org.discount_percent == 0


def test_a_plain_member_cannot_change_the_time_zone(org):
    member = make_user("plain@lab-a.example")
    add_org_member(org, member)
    response = bearer_client(member).patch(
        f"/api/v1/organizations/{org.pk}", {"time_zone": "Asia/Tokyo"}, format="json"
    )
    assert response.status_code == 403
    org.refresh_from_db()
    assert org.time_zone == "UTC"


def test_the_time_zone_is_fixed_once_there_is_cost_history(owner_client, org, project, owner):
    from datetime import UTC, datetime
    from decimal import Decimal

    from tests.support import record_cost
    from workspaces.models import Workspace

    workspace = Workspace.objects.create(organization=org, project=project, owner=owner, name="w")
    at = datetime(2026, 6, 1, tzinfo=UTC)
    record_cost(
        organization=org,
        workspace=workspace,
        project=project,
        kind="compute",
        item="t3.medium",
        start=at,
        end=at,
        day=at.date(),
        quantity=Decimal(1),
        unit="seconds",
        rate=Decimal(1),
        amount=Decimal(1),
    )
    error = assert_error(
        owner_client.patch(f"/api/v1/organizations/{org.pk}", {"time_zone": "Asia/Tokyo"}, format="json"), 409
    )
    assert "time_zone" in error["fields"]
