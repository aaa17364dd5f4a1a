"""The ledger's daily close: midnight in the organization's time zone (daylight saving time included),
idempotent, and safe when the worker running it is killed."""

import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.db.models import Sum
from django.utils import timezone

from budgets import ledger
from budgets.models import CostDay, CostEntry
from budgets.tasks import close_ledger_days
from projects.models import Project
from tests.support import celery_worker, wait_until
from workspaces.models import Workspace
from workspaces.services import record_transition

RATE = Decimal("0.1000")
NEW_YORK = "America/New_York"


def running_workspace(org, project, owner, name: str, *, since: datetime | None = None) -> Workspace:
    """A workspace the ledger has billed up to `since` (a running instance with a 50 GB gp3 volume)."""
    return Workspace.objects.create(
        organization=org,
        project=project,
        owner=owner,
        name=name,
        state="running",
        instance_type="t3.large",
        hourly_rate=RATE,
        provider_instance_id="i-0123456789abcdef0",
        storage_lines=[{"item": "gp3 storage", "units": "50", "unit": "GB-month", "rate": "0.08"}],
        storage_monthly_rate=Decimal("4"),
        volume_billed=True,
        ledger_through=since,
        run_started_at=since,
        state_changed_at=since or datetime(2026, 1, 1, tzinfo=UTC),
    )


def compute_rows(workspace: Workspace) -> list[CostEntry]:
    return list(CostEntry.objects.filter(workspace=workspace, kind="compute").order_by("start"))


def test_it_bills_the_25_hour_day_when_daylight_saving_time_ends(org, project, owner):
    org.time_zone = NEW_YORK
    org.save()
    # Saturday 31 October 2026, 22:00 in New York (EDT, UTC-4). Clocks go back at 02:00 on 1 November.
    started = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    workspace = running_workspace(org, project, owner, "dst-box", since=started)
    with time_machine.travel(datetime(2026, 11, 2, 6, 0, tzinfo=UTC), tick=False):  # 2 Nov, 01:00 EST
        assert ledger.close_day(workspace_id=workspace.pk) > 0
        assert ledger.close_day(workspace_id=workspace.pk) == 0  # closed already: nothing new
        workspace.refresh_from_db()
        record_transition(workspace=workspace, to_state="stopping", expected_from=["running"])
    rows = compute_rows(workspace)
    assert [(str(row.day), row.quantity) for row in rows] == [
        ("2026-10-31", Decimal(2 * 3600)),  # 22:00 → midnight EDT
        ("2026-11-01", Decimal(25 * 3600)),  # the day the clocks went back has 25 hours
        ("2026-11-02", Decimal(3600)),  # midnight → 01:00 EST
    ]
    assert sum(row.quantity for row in rows) == Decimal(28 * 3600)  # 02:00Z on the 1st to 06:00Z on the 2nd
    assert [row.start for row in rows[1:]] == [row.end for row in rows[:-1]]  # contiguous, no gap, no overlap


def test_it_bills_the_23_hour_day_when_daylight_saving_time_starts(org, project, owner):
    org.time_zone = NEW_YORK
    org.save()
    # Sunday 8 March 2026: clocks go forward at 02:00 EST. The workspace ran all day.
    workspace = running_workspace(org, project, owner, "spring-box", since=datetime(2026, 3, 8, 5, 0, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 3, 9, 12, 0, tzinfo=UTC), tick=False):
        close_ledger_days()
        close_ledger_days()  # twice: the same rows
    rows = compute_rows(workspace)
    assert [(str(row.day), row.quantity) for row in rows] == [("2026-03-08", Decimal(23 * 3600))]
    assert rows[0].amount == Decimal("2.3")  # 23 h at $0.10
    storage = CostEntry.objects.get(workspace=workspace, kind="storage")
    assert storage.quantity == (Decimal(50) * Decimal(23 * 3600) / Decimal(31 * 86400)).quantize(Decimal("1e-12"))


def test_it_closes_each_organization_at_its_own_midnight(org, project, owner, outsider):
    org.time_zone = "Asia/Tokyo"
    org.save()
    since = datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
    tokyo = running_workspace(org, project, owner, "tokyo-box", since=since)
    project_b = Project.objects.get(created_by=outsider)
    utc = running_workspace(project_b.organization, project_b, outsider, "utc-box", since=since)
    # 16:00 UTC on the 10th is 01:00 on the 11th in Tokyo: Tokyo has passed a midnight, UTC has not.
    with time_machine.travel(datetime(2026, 6, 10, 16, 0, tzinfo=UTC), tick=False):
        close_ledger_days()
    assert [row.end for row in compute_rows(tokyo)] == [datetime(2026, 6, 10, 15, 0, tzinfo=UTC)]
    assert compute_rows(utc) == []


def test_the_close_task_is_idempotent(org, project, owner):
    since = timezone.now() - timedelta(days=3)
    workspaces = [running_workspace(org, project, owner, f"idem-{n}", since=since) for n in range(3)]
    close_ledger_days()
    first = list(CostEntry.objects.order_by("id").values_list("workspace_id", "item", "start", "end", "amount"))
    assert first
    assert close_ledger_days() == 0
    again = list(CostEntry.objects.order_by("id").values_list("workspace_id", "item", "start", "end", "amount"))
    assert again == first
    # The daily rollup holds exactly the ledger's sums.
    sums = CostEntry.objects.values_list("project_id", "day", "kind").annotate(total=Sum("amount")).order_by()
    assert {(p, d, k): t for p, d, k, t in sums} == {
        (row.project_id, row.day, row.kind): row.amount for row in CostDay.objects.all()
    }
    for workspace in workspaces:
        workspace.refresh_from_db()
        assert workspace.ledger_through == ledger.local_midnight_at_or_before(timezone.now(), ledger.zone_of("UTC"))
        assert workspace.cost_closed == sum(row.amount for row in CostEntry.objects.filter(workspace=workspace))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_close_survives_a_worker_killed_in_the_middle(org, project, owner, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("holding a row lock across connections needs PostgreSQL (CI runs it)")
    since = timezone.now() - timedelta(days=2, hours=5)
    workspaces = sorted(
        (running_workspace(org, project, owner, f"kill-{n}", since=since) for n in range(6)), key=lambda w: w.pk
    )
    midnight = ledger.local_midnight_at_or_before(timezone.now(), ledger.zone_of("UTC"))
    # Another transaction holds the fourth workspace's row, so the worker commits three, then waits there.
    blocked, release = threading.Event(), threading.Event()

    def hold_the_fourth() -> None:
        with transaction.atomic():
            Workspace.objects.select_for_update().get(pk=workspaces[3].pk)
            blocked.set()
            release.wait(60)
        connections.close_all()

    holder = threading.Thread(target=hold_the_fourth)
    holder.start()
    blocked.wait(10)
    try:
        with celery_worker(tmp_path) as worker:
            close_ledger_days.delay()
            wait_until(
                lambda: (
                    Workspace.objects.filter(pk__in=[w.pk for w in workspaces[:3]], ledger_through=midnight).count()
                    == 3
                ),
                what="three workspaces closed",
                log_path=tmp_path / "worker.log",
            )
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
    finally:
        release.set()
        holder.join()
    assert Workspace.objects.filter(ledger_through=midnight).count() == 3
    close_ledger_days()  # the next run (or the redelivered message) finishes the rest
    close_ledger_days()
    for workspace in workspaces:
        workspace.refresh_from_db()
        assert workspace.ledger_through == midnight
        rows = compute_rows(workspace)
        assert rows[0].start == since and rows[-1].end == midnight
        assert [row.start for row in rows[1:]] == [row.end for row in rows[:-1]]
        assert sum(row.quantity for row in rows) == ledger.seconds_between(since, midnight)
    assert CostEntry.objects.filter(kind="compute").count() == 6 * len(compute_rows(workspaces[0]))


def test_it_bills_a_launch_from_the_instances_launch_time_when_the_cloud_gives_a_plausible_one(org, project, owner):
    requested = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    workspace = running_workspace(org, project, owner, "lt-box")
    Workspace.objects.filter(pk=workspace.pk).update(state="pending", ledger_through=None, volume_billed=False)
    workspace.refresh_from_db()
    with time_machine.travel(requested, tick=False) as clock:
        record_transition(workspace=workspace, to_state="launching", expected_from=["pending"])
        clock.shift(timedelta(seconds=90))
        # The queue and the security group took 45 s; EC2 says the instance launched then.
        launch_time = requested + timedelta(seconds=45)
        record_transition(
            workspace=workspace, to_state="running", expected_from=["launching"], cloud_launch_time=launch_time
        )
        clock.shift(timedelta(seconds=600))
        record_transition(workspace=workspace, to_state="stopping", expected_from=["running"])
    rows = compute_rows(workspace)
    assert rows[0].start == launch_time
    assert sum(row.quantity for row in rows) == Decimal(45 + 600)
    assert CostEntry.objects.filter(workspace=workspace, kind="storage").order_by("start").first().start == launch_time


def test_it_ends_billing_when_the_cloud_says_an_instance_stopped_outside_carrel(org, project, owner):
    since = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    workspace = running_workspace(org, project, owner, "console-box", since=since)
    stopped_in_the_console = since + timedelta(minutes=30)
    with time_machine.travel(since + timedelta(hours=2), tick=False):  # the reconciler notices 90 minutes later
        record_transition(
            workspace=workspace, to_state="stopped", expected_from=["running"], cloud_at=stopped_in_the_console
        )
    rows = compute_rows(workspace)
    assert sum(row.quantity for row in rows) == Decimal(30 * 60)
    workspace.refresh_from_db()
    assert workspace.ledger_through == stopped_in_the_console


def test_it_keeps_its_own_time_when_the_clouds_is_implausible(org, project, owner):
    since = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    workspace = running_workspace(org, project, owner, "skew-box", since=since)
    with time_machine.travel(since + timedelta(hours=1), tick=False):
        # A cloud clock ahead of ours (or a time before the interval began) is not believed.
        record_transition(
            workspace=workspace, to_state="stopped", expected_from=["running"], cloud_at=since + timedelta(hours=5)
        )
    assert sum(row.quantity for row in compute_rows(workspace)) == Decimal(3600)
    transition = workspace.transitions.get(to_state="stopped")
    assert transition.cloud_at == since + timedelta(hours=5)  # both times are kept
    assert transition.effective_at == transition.created_at == since + timedelta(hours=1)


def test_it_bills_nothing_for_a_launch_that_failed_before_an_instance_existed(org, project, owner):
    workspace = running_workspace(org, project, owner, "failed-box")
    Workspace.objects.filter(pk=workspace.pk).update(
        state="pending", ledger_through=None, volume_billed=False, provider_instance_id=""
    )
    workspace.refresh_from_db()
    record_transition(workspace=workspace, to_state="launching", expected_from=["pending"])
    record_transition(workspace=workspace, to_state="error", expected_from=["launching"])
    assert not CostEntry.objects.filter(workspace=workspace).exists()


def test_it_bills_an_instance_started_outside_carrel_from_the_clouds_launch_time(org, project, owner):
    since = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    workspace = running_workspace(org, project, owner, "outside-box", since=since)
    Workspace.objects.filter(pk=workspace.pk).update(state="stopped", run_started_at=None)
    workspace.refresh_from_db()
    started_in_the_console = since + timedelta(minutes=10)
    with time_machine.travel(since + timedelta(minutes=40), tick=False) as clock:  # noticed 30 minutes later
        record_transition(
            workspace=workspace,
            to_state="running",
            expected_from=["stopped"],
            cloud_launch_time=started_in_the_console,
        )
        clock.shift(timedelta(minutes=20))
        record_transition(workspace=workspace, to_state="stopping", expected_from=["running"])
    rows = compute_rows(workspace)
    assert rows[0].start == started_in_the_console
    assert sum(row.quantity for row in rows) == Decimal(50 * 60)
