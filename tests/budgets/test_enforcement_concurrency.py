"""Concurrent launches cannot overspend: 50 real threads against an allocation with room for 10 (PostgreSQL)."""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection

from budgets.models import Allocation, BudgetPool, Reservation
from budgets.services import reservations
from platform_site.celery import app as celery_app
from tests.conftest import bearer_client, make_project
from tests.support import record_cost
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


def test_two_concurrent_threshold_runs_fire_an_alert_once(postgresql, owner, org, project, monkeypatch):
    """Both runs see the threshold crossed and not yet fired; the alert row's unique constraint lets one act."""
    from audit.models import AuditEvent
    from budgets.models import BudgetAlert
    from budgets.services import enforcement

    pool = BudgetPool.objects.create(
        organization=org,
        name="Grant",
        total_amount=Decimal(1000),
        start_date=datetime(2020, 1, 1, tzinfo=UTC),
        end_date=datetime(2040, 1, 1, tzinfo=UTC),
    )
    Allocation.objects.create(pool=pool, project=project, amount=Decimal(100), alert_thresholds=["0.5"])
    workspace = Workspace.objects.create(organization=org, project=project, owner=owner, name="past", state="stopped")
    at = datetime.now(UTC)
    record_cost(
        organization=org,
        workspace=workspace,
        project=project,
        member=owner,
        kind="compute",
        item="c5.xlarge",
        start=at,
        end=at,
        day=at.date(),
        quantity=Decimal(1),
        unit="seconds",
        rate=Decimal(1),
        amount=Decimal(60),
    )
    # Hold the first run's transaction open a moment after it claimed the alert, so the second run's claim waits.
    record = enforcement.audit_record

    def slow_record(**kwargs):
        time.sleep(0.5)
        return record(**kwargs)

    monkeypatch.setattr(enforcement, "audit_record", slow_record)
    attempts: list[bool] = []
    fire = enforcement.fire

    def counted_fire(candidate, *, now):
        alert = fire(candidate, now=now)
        attempts.append(alert is not None)
        return alert

    monkeypatch.setattr(enforcement, "fire", counted_fire)
    start = threading.Barrier(2)
    fired: list[int] = []

    def run() -> None:
        try:
            start.wait()
            found = enforcement.apply_thresholds()
            fired.append(len(found))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert sorted(attempts) == [False, True]  # both runs tried to fire it: a real race, one winner
        assert sorted(fired) == [0, 1]
        assert BudgetAlert.objects.count() == 1
        assert AuditEvent.objects.filter(action="budget.alert").count() == 1
    finally:
        celery_app.control.purge()


def test_concurrent_starts_and_launches_share_the_room_without_deadlock(postgresql, owner, org, project, account):
    """Starts and launches of one project race for the same allocation: each start writes ledger rows (which
    reference the project and the allocation) while launches hold the project; none deadlocks, none overspends."""
    probe = services.workspace_launch(
        actor=owner, project=make_project(org, "Probe", owner), name="probe", **LAUNCH
    ).workspace
    now = datetime.now(UTC)
    one = reservations.estimate_cost(
        hourly_rate=probe.hourly_rate,
        storage_monthly_rate=probe.storage_monthly_rate,
        hours=reservations.horizon_hours(expires_at=None, now=now),
        discount=Decimal(0),
        now=now,
    )
    pool = BudgetPool.objects.create(
        organization=org,
        name="Grant",
        total_amount=Decimal(1000),
        start_date=datetime(2020, 1, 1, tzinfo=UTC),
        end_date=datetime(2040, 1, 1, tzinfo=UTC),
    )
    amount = (one * Decimal("15.5")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    Allocation.objects.create(pool=pool, project=project, amount=amount)
    stopped = [
        Workspace.objects.create(
            organization=org,
            project=project,
            owner=owner,
            name=f"stopped-{index}",
            state="stopped",
            instance_type=probe.instance_type,
            region=probe.region,
            hourly_rate=probe.hourly_rate,
            storage_lines=probe.storage_lines,
            storage_monthly_rate=probe.storage_monthly_rate,
            volume_billed=True,
            ledger_through=now - timedelta(seconds=30),
        )
        for index in range(10)
    ]
    clients = [bearer_client(owner) for _ in range(30)]
    start = threading.Barrier(30)
    results: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def call(kind: str, index: int) -> None:
        try:
            start.wait()
            if kind == "start":
                response = clients[index].post(f"/api/v1/instances/{stopped[index].pk}/start", format="json")
            else:
                body = {**LAUNCH, "name": f"race-{index}", "project": project.pk}
                response = clients[index].post("/api/v1/instances/launch", body, format="json")
            code = response.json().get("error", {}).get("code", "") if response.status_code >= 400 else ""
            with lock:
                results.append((kind, response.status_code, code))
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=("start", i)) for i in range(10)]
    threads += [threading.Thread(target=call, args=("launch", i)) for i in range(10, 30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert len(results) == 30, results
        statuses = sorted((status, code) for _, status, code in results)
        assert {status for status, _ in statuses} <= {200, 202, 403}, statuses  # no 500: no deadlock
        succeeded = [r for r in results if r[1] in (200, 202)]
        assert len(succeeded) == 15, sorted(results)
        assert all(code == "BUDGET_EXCEEDED" for _, status, code in results if status == 403)
        held = Reservation.objects.filter(allocation__project=project, released_at__isnull=True)
        assert held.count() == 15
    finally:
        celery_app.control.purge()
