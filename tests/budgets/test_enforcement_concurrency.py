"""Concurrent launches cannot overspend: 50 real threads against an allocation with room for 10 (PostgreSQL)."""

import threading
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection

from budgets.models import Allocation, BudgetPool, Reservation
from budgets.services import reservations
from platform_site.celery import app as celery_app
from tests.conftest import bearer_client, make_project
from workspaces import services
from workspaces.models import Workspace

pytestmark = [pytest.mark.django_db(transaction=True)]

LAUNCH = {"template": "Python Machine Learning", "size": "S"}
THREADS = 50


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip(
            "Needs PostgreSQL (set DATABASE_URL; CI does): the row locks that serialise launches are PostgreSQL's, "
            "and SQLite cannot serve 50 threads writing at once."
        )


def test_50_concurrent_launches_against_room_for_10_launch_exactly_10(postgresql, owner, org, project, account):
    # One launch's reservation, priced from a probe launched in an unfunded project with the same template.
    probe = services.workspace_launch(
        actor=owner, project=make_project(org, "Probe", owner), name="probe", **LAUNCH
    ).workspace
    one = reservations.estimate_cost(
        hourly_rate=probe.hourly_rate,
        storage_monthly_rate=probe.storage_monthly_rate,
        hours=reservations.horizon_hours(expires_at=None, now=datetime.now(UTC)),
        discount=Decimal(0),
        now=datetime.now(UTC),
    )
    # Room for 10.5 launches: the 10th fits, the 11th does not, whatever rounding or the month's length does.
    pool = BudgetPool.objects.create(
        organization=org,
        name="Grant",
        total_amount=Decimal(1000),
        start_date=datetime(2020, 1, 1, tzinfo=UTC),
        end_date=datetime(2040, 1, 1, tzinfo=UTC),
    )
    amount = (one * Decimal("10.5")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    Allocation.objects.create(pool=pool, project=project, amount=amount, prevent_launch_threshold=Decimal("1"))
    clients = [bearer_client(owner) for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def launch(index: int) -> None:
        try:
            start.wait()
            response = clients[index].post(
                "/api/v1/instances/launch", {**LAUNCH, "name": f"race-{index}", "project": project.pk}, format="json"
            )
            code = response.json().get("error", {}).get("code", "") if response.status_code != 202 else ""
            with lock:
                results.append((response.status_code, code))
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=launch, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert len(results) == THREADS
        assert sorted(results).count((202, "")) == 10, sorted(results)
        assert sorted(results).count((403, "BUDGET_EXCEEDED")) == 40, sorted(results)
        assert Workspace.objects.filter(project=project).count() == 10
        held = list(Reservation.objects.filter(allocation__project=project).values_list("amount", flat=True))
        assert len(held) == 10 and sum(held) <= amount
    finally:
        celery_app.control.purge()  # the launches' provisioning messages: no worker takes them in this test
