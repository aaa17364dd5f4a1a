"""An allocation never shrinks below a member cap inside it."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from budgets.models import Allocation, BudgetPool, MemberCap

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(datetime(2026, 6, 15, tzinfo=UTC), tick=False):
        yield


def test_an_allocation_cannot_shrink_below_its_member_caps(owner_client, owner, org, project):
    """PUT caps refuses a cap above the allocation's amount; PUT allocation then shrinks the amount under it."""
    pool = BudgetPool.objects.create(
        organization=org,
        name="G",
        total_amount=Decimal(1000),
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        end_date=datetime(2027, 1, 1, tzinfo=UTC),
    )
    allocation = Allocation.objects.create(pool=pool, project=project, amount=Decimal(100))
    r = owner_client.put(
        f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}/caps", {"caps": {owner.email: 100}}, format="json"
    )
    assert r.status_code == 200
    shrink = owner_client.put(
        f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}", {"allocated_amount": 10}, format="json"
    )
    assert shrink.status_code == 400 and "allocated_amount" in shrink.json()["error"]["fields"]
    allocation.refresh_from_db()
    assert MemberCap.objects.get().amount <= allocation.amount
