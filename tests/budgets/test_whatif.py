"""POST /api/v1/costs/what-if and the launch's dry run: exact prices from the price book, the share of the
allocation, runway before and after at the 7-day burn, the launch limit; nothing is created."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
import time_machine

from audit.models import AuditEvent
from budgets import ledger as budget_ledger
from budgets.models import Allocation, BudgetPool, Reservation
from budgets.selectors import money
from projects.models import ProjectMember, ProjectRole
from templates.services import template_catalog_load
from tests.conftest import add_org_member, assert_error, bearer_client, make_user
from tests.support import record_cost
from workspaces.models import CloudAccount, ProvisionJob, Workspace

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
D = Decimal
T3_MEDIUM = D("0.0416")  # us-east-1, workspaces/instance_types.yaml
T3_LARGE = D("0.0832")
GP3 = D("0.08")  # USD per GB-month, budgets/storage_prices.yaml


def body_of(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content, parse_float=Decimal)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def allocation(org, project):
    pool = BudgetPool.objects.create(
        organization=org,
        name="NSF",
        total_amount=D("1000"),
        start_date=datetime(2026, 6, 1, tzinfo=UTC),
        end_date=datetime(2027, 6, 1, tzinfo=UTC),
    )
    return Allocation.objects.create(
        pool=pool,
        project=project,
        amount=D("500"),
        prevent_launch_threshold=D("0.95"),
        end_date=datetime(2027, 6, 15, 12, tzinfo=UTC),
    )


@pytest.fixture
def spent(project, allocation, owner):
    """17.50 in the last 7 days (June 9 to now: 6.5 days), 18.75 in the period."""
    ws = Workspace.objects.create(
        organization=project.organization, project=project, owner=owner, name="old", state="stopped"
    )
    for day, amount in ((14, "12.50"), (10, "5.00"), (1, "1.25")):
        start = datetime(2026, 6, day, tzinfo=UTC)
        record_cost(
            organization=project.organization,
            workspace=ws,
            project=project,
            allocation=allocation,
            member=owner,
            kind="compute",
            item="t3.medium",
            start=start,
            end=start + timedelta(hours=1),
            day=date(2026, 6, day),
            quantity=D("3600"),
            unit="seconds",
            rate=D("1"),
            amount=D(amount),
        )
    return ws


def what_if(client, **body):
    return client.post("/api/v1/costs/what-if", body, format="json")


def test_it_prices_an_instance_type_for_some_hours_a_day(owner_client, project, allocation, spent):
    body = body_of(
        what_if(owner_client, project=project.pk, instance_type="t3.medium", hours_per_day=8, days=10, storage_gb=100)
    )
    compute = T3_MEDIUM * 8 * 10
    storage = 100 * GP3 * D(10) / D(30)  # ten days of June's thirty
    total = compute + storage
    assert body["instance_type"] == "t3.medium" and body["region"] == "us-east-1"
    assert body["hourly_rate"] == D("0.0416")
    assert body["storage_monthly_rate"] == D("8.0000")
    assert body["compute_cost"] == money(compute) == D("3.3280")
    assert body["storage_cost"] == money(storage) == D("2.6667")
    assert body["total_cost"] == money(total) == D("5.9947")
    assert body["daily_cost"] == money(total / 10)
    assert body["share_of_allocation"] == (total / 500).quantize(D("0.0001"), rounding=ROUND_HALF_UP)
    assert body["allocation"] == {
        "id": allocation.pk,
        "amount": D("500.0000"),
        "spent": D("18.7500"),
        "reserved": D("0.0000"),
        "remaining": D("481.2500"),
        "limit": D("475.0000"),
    }
    burn = D("17.5") / D("6.5")
    assert body["burn_rate_daily"] == money(burn)
    assert body["runway_days_before"] == (D("481.25") / burn).quantize(D("0.1"), rounding=ROUND_HALF_UP)
    assert body["runway_days_after"] == (D("481.25") / (burn + total / 10)).quantize(D("0.1"), rounding=ROUND_HALF_UP)
    assert body["within_budget"] is True


def test_it_takes_the_template_defaults_and_the_organizations_discount(owner_client, org, project, allocation):
    template_catalog_load()
    org.discount_percent = D("10")
    org.save()
    body = body_of(what_if(owner_client, project=project.name, template="Ubuntu 24.04 Base", hours_per_day=24, days=1))
    # General workload, size M: t3.large; the template's 30 GB root volume holds its 8 GiB of memory.
    assert (body["instance_type"], body["storage_gb"]) == ("t3.large", 30)
    assert body["hourly_rate"] == money(T3_LARGE * D("0.9"))
    storage = 30 * GP3 * D("0.9") / 30  # one day of June
    assert body["total_cost"] == money(T3_LARGE * D("0.9") * 24 + storage)


def test_it_says_when_a_workspace_would_not_fit_the_launch_limit(owner_client, project, allocation, spent):
    Reservation.objects.create(
        allocation=allocation, workspace=spent, amount=D("100"), remaining=D("100"), reason="launch"
    )
    body = body_of(what_if(owner_client, project=project.pk, instance_type="t3.medium", hours_per_day=24, days=3660))
    assert body["allocation"]["reserved"] == D("100.0000")
    assert body["within_budget"] is False
    small = body_of(what_if(owner_client, project=project.pk, instance_type="t3.medium", hours_per_day=1, days=1))
    assert small["within_budget"] is True  # 18.75 + 100 + 0.31 <= 475


def test_it_prices_for_an_unfunded_project_without_limits(owner_client, project):
    body = body_of(what_if(owner_client, project=project.pk, instance_type="t3.medium", hours_per_day=8, days=10))
    assert body["allocation"] is None and body["share_of_allocation"] is None
    assert body["runway_days_before"] is None and body["runway_days_after"] is None
    assert body["within_budget"] is True
    assert body["storage_gb"] == 30  # the default volume


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"instance_type": None}, "template"),
        ({"hours_per_day": 25}, "hours_per_day"),
        ({"days": 0}, "days"),
        ({"days": "10"}, "days"),
        ({"spot": "yes"}, "spot"),
        ({"storage_gb": 0}, "storage_gb"),
    ],
)
def test_it_refuses_invalid_what_ifs(owner_client, project, change, field):
    body = {"project": project.pk, "instance_type": "t3.medium", "hours_per_day": 8, "days": 10, **change}
    error = assert_error(what_if(owner_client, **{k: v for k, v in body.items() if v is not None}), 400)
    assert field in error["fields"]


def test_it_refuses_an_unknown_instance_type_and_a_foreign_project(owner_client, project, outsider):
    assert_error(
        what_if(owner_client, project=project.pk, instance_type="z9.huge", hours_per_day=8, days=1),
        400,
        "UNKNOWN_INSTANCE_TYPE",
    )
    assert_error(
        what_if(bearer_client(outsider), project=project.pk, instance_type="t3.medium", hours_per_day=8, days=1),
        404,
        "PROJECT_NOT_FOUND",
    )


def test_it_answers_a_read_only_token(owner, project):
    client = bearer_client(owner, scopes=("read",))
    assert what_if(client, project=project.pk, instance_type="t3.medium", hours_per_day=8, days=1).status_code == 200


# --- The launch's dry run --------------------------------------------------------------------------------------------


@pytest.fixture
def launchable(org, project):
    template_catalog_load()
    CloudAccount.objects.create(organization=org, name="sandbox", region="us-east-1", is_default=True)
    member = make_user("member@lab-a.example")
    add_org_member(org, member)
    ProjectMember.objects.create(project=project, user=member, role=ProjectRole.MEMBER)
    return bearer_client(member)


LAUNCH = {"name": "dry-box", "template": "Ubuntu 24.04 Base", "dry_run": True}


def test_it_plans_and_prices_a_launch_without_creating_anything(
    launchable, project, allocation, django_capture_on_commit_callbacks
):
    audits = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks() as callbacks:
        response = launchable.post("/api/v1/instances/launch", {**LAUNCH, "project": project.pk}, format="json")
    body = body_of(response)
    assert body["dry_run"] is True
    assert (body["instance_type"], body["region"], body["storage_gb"]) == ("t3.large", "us-east-1", 30)
    assert body["hourly_rate"] == T3_LARGE
    month = budget_ledger.month_fraction(NOW, NOW + timedelta(days=30))
    assert body["what_if"]["hours_per_day"] == 24 and body["what_if"]["days"] == 30
    assert body["what_if"]["total_cost"] == money(T3_LARGE * 24 * 30 + 30 * GP3 * month)
    assert body["what_if"]["allocation"]["id"] == allocation.pk
    assert not callbacks
    assert Workspace.objects.count() == 0 and ProvisionJob.objects.count() == 0
    assert Reservation.objects.count() == 0 and AuditEvent.objects.count() == audits


def test_it_checks_a_dry_run_as_a_launch(launchable, project, org, owner):
    viewer = make_user("viewer@lab-a.example")
    add_org_member(org, viewer)
    ProjectMember.objects.create(project=project, user=viewer, role=ProjectRole.VIEWER)
    assert_error(
        bearer_client(viewer).post("/api/v1/instances/launch", {**LAUNCH, "project": project.pk}, format="json"),
        403,
    )
    Workspace.objects.create(organization=org, project=project, owner=owner, name="dry-box", state="running")
    assert_error(
        launchable.post("/api/v1/instances/launch", {**LAUNCH, "project": project.pk}, format="json"), 409, "NAME_TAKEN"
    )
    assert_error(
        launchable.post(
            "/api/v1/instances/launch", {**LAUNCH, "name": "other", "project": project.pk, "size": "XXL"}, format="json"
        ),
        400,
    )
