"""Review: figures that outgrow their serializer field answer 500 instead of a number."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from budgets.models import Allocation, BudgetPool
from tests.support import record_cost
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def cost(project, day: date, amount: str, name="w1"):
    ws, _ = Workspace.objects.get_or_create(
        organization=project.organization,
        project=project,
        name=name,
        defaults={"owner": project.created_by, "state": "stopped"},
    )
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return record_cost(
        organization=ws.organization,
        workspace=ws,
        project=project,
        member=ws.owner,
        kind="storage",
        item="gp3 storage",
        start=start,
        end=start + timedelta(seconds=1),
        day=day,
        quantity=Decimal("0.0000001"),
        unit="GB-month",
        rate=Decimal("0.08"),
        amount=Decimal(amount),
        allocation=getattr(project, "allocation", None),
    )


def test_it_answers_history_when_a_tiny_first_half_grows(owner_client, project):
    """A new project: one second of storage (0.00000001 USD) early on, then a real day: the trend's percentage
    (about 1e12 %) does not fit Percentage(max_digits=8) and the whole history answers 500."""
    cost(project, date(2026, 6, 2), "0.00000001")
    cost(project, date(2026, 6, 29), "100.00")
    response = owner_client.get("/api/v1/costs/history?start_date=2026-06-01&end_date=2026-06-30")
    assert response.status_code == 200, response.status_code


def test_it_answers_the_pool_summary_when_an_allocation_was_cut_below_its_spend(owner_client, org, project, owner):
    """An admin cuts an allocation to 0.01 after the project spent 10,000: utilization 1,000,000 does not fit
    Fraction(max_digits=10, decimal_places=4) and every view of the allocation answers 500."""
    pool = BudgetPool.objects.create(
        organization=org,
        name="G",
        total_amount=Decimal("20000"),
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        end_date=datetime(2027, 1, 1, tzinfo=UTC),
    )
    allocation = Allocation.objects.create(pool=pool, project=project, amount=Decimal("10000"))
    project.refresh_from_db()
    cost(project, date(2026, 6, 10), "10000.00")
    r = owner_client.put(
        f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}", {"allocated_amount": "0.01"}, format="json"
    )
    allocation.refresh_from_db()
    # The PUT answered 500 yet the change is saved (and audited): the client cannot tell.
    assert not (r.status_code == 500 and allocation.amount == Decimal("0.01")), "500 but committed"
    assert r.status_code == 200, (r.status_code, r.content[:200])
    for path in (
        f"/api/v1/budgets/{pool.pk}/summary",
        f"/api/v1/budgets/{pool.pk}/allocations",
        f"/api/v1/projects/{project.pk}/budget",
    ):
        response = owner_client.get(path)
        assert response.status_code == 200, (path, response.status_code)
