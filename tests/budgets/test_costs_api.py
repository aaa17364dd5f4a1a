"""Project money and cost endpoints: exact figures from ledger rows built by hand, who may see them, validation,
and a constant number of queries whatever the number of workspaces."""

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from accounts.models import OrgRole
from budgets.models import Allocation, BudgetAlert, BudgetPool
from budgets.selectors import money
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_user
from tests.support import record_cost
from workspaces.models import StateTransition, Workspace

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
D = Decimal


def body_of(response) -> dict:
    """The JSON body with numbers as Decimal: money is compared exactly."""
    assert response.status_code == 200, response.content
    return json.loads(response.content, parse_float=Decimal)


def at(day: int, hour: int = 0, month: int = 6) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def member(org, project):
    user = make_user("member@lab-a.example")
    add_org_member(org, user, OrgRole.MEMBER)
    ProjectMember.objects.create(project=project, user=user, role=ProjectRole.MEMBER)
    return user


@pytest.fixture
def allocation(org, project, owner):
    pool = BudgetPool.objects.create(
        organization=org, name="NSF", total_amount=D("1000"), start_date=at(1), end_date=at(1, month=7)
    )
    return Allocation.objects.create(
        pool=pool, project=project, amount=D("500"), alert_thresholds=["0.5", "0.8"], prevent_launch_threshold=D("0.95")
    )


def workspace(project, name: str, **fields) -> Workspace:
    """As the ledger leaves one: created before its first row, with a cursor (here at its last change, so
    nothing is open unless a test says so)."""
    fields.setdefault("state", "stopped")
    fields.setdefault("created_at", at(1, month=5))
    fields.setdefault("ledger_through", fields.get("state_changed_at", NOW))
    return Workspace.objects.create(
        organization=project.organization, project=project, owner=project.created_by, name=name, **fields
    )


def entry(ws: Workspace, kind: str, day: date, amount: str, *, hour: int = 0, item: str = "t3.medium", **fields):
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return record_cost(
        organization=ws.organization,
        workspace=ws,
        project=ws.project,
        allocation=getattr(ws.project, "allocation", None),
        member=ws.owner,
        kind=kind,
        item=item if kind == "compute" else "gp3 storage",
        start=start,
        end=start + timedelta(hours=1),
        day=day,
        quantity=fields.pop("quantity", D("3600")),
        unit="seconds" if kind == "compute" else "GB-month",
        rate=D("1"),
        amount=D(amount),
        **fields,
    )


@pytest.fixture
def ledger(project, allocation):
    """Two stopped workspaces with closed rows only (no open interval): every figure is a sum of these."""
    big = workspace(project, "big", state="terminated", state_changed_at=at(15, 1), hourly_rate=D("2"))
    small = workspace(project, "small", state="hibernated", hourly_rate=D("0.5"))
    entry(big, "compute", date(2026, 6, 14), "10.00")
    entry(big, "storage", date(2026, 6, 14), "2.50")
    entry(big, "compute", date(2026, 6, 10), "5.00")
    entry(small, "compute", date(2026, 6, 1), "1.25")
    entry(small, "compute", date(2026, 5, 31), "99.00")  # before the budget period (and the month)
    # small was hibernated at 09:00 today: 3 hours at 0.5/h not paid.
    StateTransition.objects.create(
        workspace=small, from_state="running", to_state="hibernating", hourly_rate=D("0.5"), created_at=at(15, 8)
    )
    StateTransition.objects.create(
        workspace=small,
        from_state="hibernating",
        to_state="hibernated",
        hourly_rate=D("0"),
        created_at=at(15, 9, month=6) + timedelta(seconds=20),
        effective_at=at(15, 9),
    )
    return big, small


def test_it_reports_the_project_budget_from_the_ledger(owner_client, project, allocation, ledger):
    big, small = ledger
    BudgetAlert.objects.create(
        allocation=allocation,
        pool=allocation.pool,
        project=project,
        kind="threshold",
        threshold=D("0.5"),
        period_start=at(1),
        spent=D("250"),
        limit=D("500"),
        message="Half spent.",
    )
    body = body_of(owner_client.get(f"/api/v1/projects/{project.pk}/budget"))
    assert body["total_allocated"] == D("500.0000")
    assert body["current_spend"] == D("18.7500")
    assert body["remaining"] == D("481.2500")
    assert body["cost_breakdown"] == {"compute": D("16.2500"), "storage": D("2.5000"), "snapshot": D("0.0000")}
    assert "data_transfer" in body["not_included"]
    assert body["hibernation_savings"] == D("1.5000")
    assert body["top_spending_instances"] == [
        {"name": "big", "workspace_id": big.pk, "cost": D("17.5000"), "percentage": D("93.3")},
        {"name": "small", "workspace_id": small.pk, "cost": D("1.2500"), "percentage": D("6.7")},
    ]
    assert body["budget_alerts"] == {
        "threshold_50_percent": False,
        "threshold_80_percent": False,
        "overspend_risk": "low",
    }
    assert [alert["message"] for alert in body["alerts"]] == ["Half spent."]


def test_it_renders_money_as_exact_numbers(owner_client, project, ledger):
    raw = owner_client.get(f"/api/v1/projects/{project.pk}/budget").content.decode()
    assert '"current_spend":18.7500' in raw


def test_it_flags_thresholds_and_risk_when_spend_passes_them(owner_client, project, allocation, ledger):
    entry(ledger[0], "compute", date(2026, 6, 15), "400.00")
    body = body_of(owner_client.get(f"/api/v1/projects/{project.pk}/budget"))
    assert body["current_spend"] == D("418.7500")
    assert body["budget_alerts"] == {
        "threshold_50_percent": True,
        "threshold_80_percent": True,
        "overspend_risk": "high",  # 418.75 + 7-day burn (417.5 / 6.5 days) × 15.5 days > 500
    }


def test_it_reports_an_unfunded_project_with_its_whole_history(owner_client, project):
    ws = workspace(project, "box")
    entry(ws, "compute", date(2026, 1, 3), "7.00")
    body = body_of(owner_client.get(f"/api/v1/projects/{project.pk}/budget"))
    assert body["total_allocated"] is None
    assert body["remaining"] is None
    assert body["current_spend"] == D("7.0000")
    assert body["budget_alerts"] == {"overspend_risk": "low"}


def test_it_analyses_the_month_burn_and_runway(owner_client, project, ledger):
    body = body_of(owner_client.get(f"/api/v1/projects/{project.pk}/cost-analysis"))
    burn = D("17.5") / D("6.5")  # rows of the last 7 days (June 9 to now) over 6.5 days
    assert body["month_to_date"] == D("18.7500")
    assert body["burn_rate_daily"] == money(burn)
    assert body["projected_month"] == money(D("18.75") + burn * D("15.5"))
    assert body["current_monthly_burn"] == money(burn * 30)
    # 481.25 left would last 178 days at this burn: capped at the pool's end, July 1.
    assert body["runway_days"] == D("15.5")
    assert datetime.fromisoformat(body["runway_end"]) == at(1, month=7)
    assert body["optimization_recommendations"] == []


def test_it_recommends_hibernation_and_dropping_old_volumes(owner_client, project, allocation):
    always_on = workspace(
        project,
        "always-on",
        state="running",
        hourly_rate=D("0.4"),
        ledger_through=at(15),
        run_billed_seconds=D("518400"),
    )
    for day in range(9, 15):
        entry(always_on, "compute", date(2026, 6, day), "9.60", quantity=D("86400"))
    parked = workspace(
        project,
        "parked",
        state="stopped",
        state_changed_at=at(1),
        volume_billed=True,
        storage_monthly_rate=D("8"),
        ledger_through=at(15),
        root_volume_gb=100,
    )
    body = body_of(owner_client.get(f"/api/v1/projects/{project.pk}/cost-analysis"))
    hibernate, storage = body["optimization_recommendations"]
    # 6 × 24 h closed + 12 h open over 6.5 days = 24 h a day; 16 of them at 0.4/h for the 30 days of June.
    assert hibernate["type"] == "hibernation" and hibernate["workspace_id"] == always_on.pk
    assert hibernate["potential_savings"] == D("192.0000")
    assert storage["type"] == "storage" and storage["workspace_id"] == parked.pk
    assert storage["potential_savings"] == D("8.0000")
    assert body["hibernation_potential_savings"] == D("192.0000")
    # The open intervals count: 12 h of compute at 0.4 and 12 h of an 8/month volume (1/60 of June).
    assert body["month_to_date"] == money(D("57.6") + D("4.8") + D("8") / 60)


def test_it_reports_current_costs_across_visible_projects(owner_client, project, outsider):
    workspace(project, "runner", state="running", hourly_rate=D("0.4"), ledger_through=at(15))
    workspace(project, "parked", volume_billed=True, storage_monthly_rate=D("8"), ledger_through=at(15))
    workspace(project, "gone", state="terminated", hourly_rate=D("9"), state_changed_at=at(2))
    hourly = D("0.4") + D("8") / 720  # June has 720 hours
    body = body_of(owner_client.get("/api/v1/costs/current"))
    assert body["total_current_hourly"] == money(hourly)
    assert body["total_daily_projection"] == money(hourly * 24)
    assert body["total_monthly_projection"] == money(hourly * 720)
    assert body["cost_breakdown"] == {"instances": D("0.4000"), "ebs_storage": D("0.0111"), "efs_storage": D("0.0000")}
    assert [driver["resource"] for driver in body["top_cost_drivers"]] == ["runner", "parked"]
    assert body["top_cost_drivers"][0]["percentage"] == D("97.3")
    # "parked" has been stopped all month: 14.5 days at a 0 rate saves nothing; nothing else rested.
    assert body["hibernation_savings"] == {"current_month": D("0.0000"), "projected_monthly": D("0.0000")}
    outsider_body = body_of(bearer_client(outsider).get("/api/v1/costs/current"))
    assert outsider_body["total_current_hourly"] == D("0.0000")
    assert outsider_body["top_cost_drivers"] == []


def test_it_projects_hibernation_savings_for_the_month(owner_client, project, ledger):
    body = body_of(owner_client.get("/api/v1/costs/current"))
    # small: 3 h hibernated so far, and 15.5 days × 24 h more until July 1 if it stays hibernated.
    assert body["hibernation_savings"]["current_month"] == D("1.5000")
    assert body["hibernation_savings"]["projected_monthly"] == money(D("1.5") + D("0.5") * D("372"))


def test_it_groups_history_by_day_week_month_and_member(owner_client, project, ledger, owner):
    big, small = ledger
    url = "/api/v1/costs/history?start_date=2026-06-01&end_date=2026-06-14"
    daily = body_of(owner_client.get(url))
    assert daily["total_cost"] == D("18.7500")
    assert len(daily["daily_costs"]) == 14
    june_14 = daily["daily_costs"][13]
    assert june_14["date"] == "2026-06-14" and june_14["cost"] == D("12.5000") and june_14["instances"] == 1
    assert june_14["breakdown"] == [{"id": project.pk, "name": "Genomics", "cost": D("12.5000")}]
    weekly = body_of(owner_client.get(url + "&granularity=weekly&group_by=workspace"))
    assert [(week["date"], week["cost"]) for week in weekly["daily_costs"]] == [
        ("2026-06-01", D("1.2500")),  # ISO weeks begin on Monday; June 1, 2026 is one
        ("2026-06-08", D("17.5000")),
    ]
    assert weekly["cost_trends"]["trend_direction"] == "increasing"
    assert weekly["cost_trends"]["percentage_change"] == D("1300.0")
    assert weekly["cost_trends"]["primary_driver"] == "big (+17.5000)"
    monthly = body_of(
        owner_client.get(
            "/api/v1/costs/history?start_date=2026-05-01&end_date=2026-06-30&granularity=monthly&group_by=member"
        )
    )
    assert [(month["date"], month["cost"]) for month in monthly["daily_costs"]] == [
        ("2026-05-01", D("99.0000")),
        ("2026-06-01", D("18.7500")),
    ]
    assert monthly["daily_costs"][1]["breakdown"] == [{"id": str(owner.pk), "name": owner.email, "cost": D("18.75")}]


def test_it_adds_the_open_interval_to_todays_bucket(owner_client, project):
    workspace(project, "runner", state="running", hourly_rate=D("0.4"), ledger_through=at(15))
    body = body_of(owner_client.get("/api/v1/costs/history?start_date=2026-06-14&end_date=2026-06-15"))
    assert [day["cost"] for day in body["daily_costs"]] == [D("0.0000"), D("4.8000")]


def test_it_defaults_history_to_the_last_30_days_in_the_organizations_time_zone(owner_client, org, project):
    org.time_zone = "Pacific/Kiritimati"  # UTC+14: June 16 there at noon UTC
    org.save()
    body = body_of(owner_client.get("/api/v1/costs/history"))
    assert (body["start_date"], body["end_date"], body["period"]) == ("2026-05-18", "2026-06-16", "30_days")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("start_date=2026-06-10&end_date=2026-06-01", "start_date"),
        ("start_date=yesterday", "start_date"),
        ("start_date=2025-01-01&end_date=2026-06-01", "start_date"),
        ("granularity=hourly", "granularity"),
        ("group_by=template", "group_by"),
        ("start_date=", "start_date"),
        ("granularity=", "granularity"),
    ],
)
def test_it_refuses_invalid_history_queries(owner_client, query, field):
    error = assert_error(owner_client.get(f"/api/v1/costs/history?{query}"), 400)
    assert field in error["fields"]


def test_it_allows_a_long_range_by_month(owner_client):
    response = owner_client.get("/api/v1/costs/history?start_date=2020-01-01&end_date=2026-06-01&granularity=monthly")
    assert response.status_code == 200
    assert len(response.json()["daily_costs"]) == 78


def test_it_exports_the_ledger_as_csv(owner_client, project, ledger, outsider):
    response = owner_client.get("/api/v1/costs/export?start_date=2026-06-01&end_date=2026-06-30")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(row["workspace_name"], row["kind"], row["amount"]) for row in rows] == [
        ("small", "compute", "1.25000000"),
        ("big", "compute", "5.00000000"),
        ("big", "compute", "10.00000000"),
        ("big", "storage", "2.50000000"),
    ]
    assert rows[0]["member_email"] == "owner@lab-a.example"
    assert rows[0]["day"] == "2026-06-01" and rows[0]["start"] == "2026-06-01T00:00:00+00:00"
    theirs = bearer_client(outsider).get("/api/v1/costs/export?start_date=2026-06-01&end_date=2026-06-30")
    assert b"".join(theirs.streaming_content).decode().count("\n") == 1  # the header only


def test_it_answers_export_errors_as_json_even_to_a_csv_client(owner_client):
    response = owner_client.get("/api/v1/costs/export?start_date=nope", HTTP_ACCEPT="text/csv")
    assert_error(response, 400)
    assert response["Content-Type"].startswith("application/json")


def test_it_lets_members_see_project_money_and_hides_it_from_outsiders(project, ledger, member, outsider):
    for path in ("budget", "cost-analysis"):
        assert bearer_client(member).get(f"/api/v1/projects/{project.pk}/{path}").status_code == 200
        assert_error(bearer_client(outsider).get(f"/api/v1/projects/{project.pk}/{path}"), 404, "PROJECT_NOT_FOUND")
    outsider_client = bearer_client(outsider)
    assert_error(outsider_client.get(f"/api/v1/costs/history?project={project.pk}"), 404, "PROJECT_NOT_FOUND")
    assert_error(outsider_client.get(f"/api/v1/costs/export?project={project.pk}"), 404, "PROJECT_NOT_FOUND")
    assert body_of(outsider_client.get("/api/v1/costs/history"))["total_cost"] == D("0.0000")


def many_workspaces(project, count: int, first: int = 0) -> None:
    for index in range(first, first + count):
        ws = workspace(
            project,
            f"ws-{index}",
            state="running" if index % 2 else "stopped",
            hourly_rate=D("0.1"),
            ledger_through=at(15),
            volume_billed=True,
            storage_monthly_rate=D("3"),
            template_snapshot={},
        )
        entry(ws, "compute", date(2026, 6, 14), "1.00")
        entry(ws, "storage", date(2026, 6, 13), "0.10")
        StateTransition.objects.create(
            workspace=ws, from_state="running", to_state="stopped", hourly_rate=D("0"), created_at=at(14)
        )


PATHS = (
    "/api/v1/projects/{project}/budget",
    "/api/v1/projects/{project}/cost-analysis",
    "/api/v1/costs/current",
    "/api/v1/costs/history?group_by=workspace",
    "/api/v1/costs/history?granularity=weekly&project={project}",
)


@pytest.mark.parametrize("path", PATHS)
def test_it_answers_in_a_constant_number_of_queries(
    owner_client, project, allocation, path, django_assert_max_num_queries
):
    many_workspaces(project, 1)
    url = path.format(project=project.pk)
    owner_client.get(url)  # warm-up (the token's last-used stamp, the rate limiter)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert owner_client.get(url).status_code == 200
    many_workspaces(project, 49, first=1)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert owner_client.get(url).status_code == 200


def test_it_streams_the_export_in_a_constant_number_of_queries(owner_client, project, django_assert_max_num_queries):
    many_workspaces(project, 50)
    with django_assert_max_num_queries(12):
        response = owner_client.get("/api/v1/costs/export?start_date=2026-06-01&end_date=2026-06-30")
        assert b"".join(response.streaming_content).count(b"\n") == 101
