"""Review: odd numbers in pool, allocation, caps and reallocation bodies answer 4xx (never 500, never saved)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from budgets.models import Allocation, BudgetPool, MemberCap
from tests.conftest import make_project

pytestmark = pytest.mark.django_db

ODD = [
    "1e309",
    '"1e309"',
    '"NaN"',
    '"Infinity"',
    '"-Infinity"',
    "-0",
    "1e20",
    '"0.001"',
    "true",
    "[]",
    "{}",
    '"  5 "',
    '"5e-1"',
    '"0x10"',
    "null",
    '"1_000"',
    '"٣"',
]


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(datetime(2026, 6, 15, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def setup(org, owner, project):
    pool = BudgetPool.objects.create(
        organization=org,
        name="G",
        total_amount=Decimal(1000),
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        end_date=datetime(2027, 1, 1, tzinfo=UTC),
    )
    other = make_project(org, "Other", owner)
    a = Allocation.objects.create(pool=pool, project=project, amount=Decimal(100))
    b = Allocation.objects.create(pool=pool, project=other, amount=Decimal(100))
    return pool, a, b


def put(client, path, raw):
    return client.put(path, raw, content_type="application/json")


@pytest.mark.parametrize("value", ODD)
def test_odd_allocation_amounts(owner_client, setup, value):
    pool, a, _ = setup
    r = put(owner_client, f"/api/v1/budgets/{pool.pk}/allocations/{a.pk}", f'{{"allocated_amount": {value}}}')
    assert r.status_code in (200, 400, 409), r.status_code


@pytest.mark.parametrize("value", ODD)
def test_odd_thresholds(owner_client, setup, value):
    pool, a, _ = setup
    for body in (f'{{"alert_thresholds": [{value}]}}', f'{{"auto_hibernate_threshold": {value}}}'):
        r = put(owner_client, f"/api/v1/budgets/{pool.pk}/allocations/{a.pk}", body)
        assert r.status_code in (200, 400), (body, r.status_code)


@pytest.mark.parametrize("value", ODD)
def test_odd_caps(owner_client, owner, setup, value):
    pool, a, _ = setup
    r = put(
        owner_client, f"/api/v1/budgets/{pool.pk}/allocations/{a.pk}/caps", f'{{"caps": {{"{owner.email}": {value}}}}}'
    )
    assert r.status_code in (200, 400), r.status_code
    if r.status_code == 400:
        assert not MemberCap.objects.exists()


@pytest.mark.parametrize("value", ODD)
def test_odd_reallocations(owner_client, setup, value):
    pool, a, b = setup
    r = owner_client.post(
        f"/api/v1/budgets/{pool.pk}/reallocate",
        f'{{"from_allocation": "{a.pk}", "to_allocation": "{b.pk}", "amount": {value}, "reason": "x"}}',
        content_type="application/json",
    )
    assert r.status_code in (200, 400, 409), r.status_code
    total = sum(x.amount for x in Allocation.objects.all())
    assert total == Decimal(200)


@pytest.mark.parametrize("value", ODD)
def test_odd_pool_updates(owner_client, setup, value):
    pool, _, _ = setup
    for field in ("total_amount", "alert_threshold", "end_date", "name"):
        r = put(owner_client, f"/api/v1/budgets/{pool.pk}", f'{{"{field}": {value}}}')
        assert r.status_code in (200, 400, 409), (field, r.status_code)
