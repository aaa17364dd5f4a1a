"""Ledger edge cases found in review: period starts, open intervals before the midnight close, cloud times, spot."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import time_machine
from django.db.models import Sum

from budgets import ledger, reports
from budgets.models import Allocation, BudgetPool, CostEntry
from budgets.selectors_pools import allocation_figures
from budgets.services import enforcement, reservations
from workspaces import cloud
from workspaces.models import Workspace
from workspaces.services import record_transition

RATE = Decimal("0.3600")  # $0.0001 a second


def running(org, project, owner, *, since, name="box", state="running") -> Workspace:
    return Workspace.objects.create(
        organization=org,
        project=project,
        owner=owner,
        name=name,
        state=state,
        instance_type="t3.large",
        hourly_rate=RATE,
        provider_instance_id="i-0123456789abcdef0",
        storage_lines=[],
        storage_monthly_rate=Decimal("0"),
        volume_billed=False,
        ledger_through=since,
        run_started_at=since,
        state_changed_at=since or datetime(2026, 1, 1, tzinfo=UTC),
    )


def fund(project, *, period, start, end=datetime(2040, 1, 1, tzinfo=UTC), amount="1000") -> Allocation:
    pool = BudgetPool.objects.create(
        organization=project.organization,
        name="Grant",
        total_amount=Decimal("100000"),
        period=period,
        start_date=start,
        end_date=end,
    )
    return Allocation.objects.create(pool=pool, project=project, amount=Decimal(amount))


def compute_seconds(workspace) -> Decimal:
    return CostEntry.objects.filter(workspace=workspace, kind="compute").aggregate(s=Sum("quantity"))["s"] or Decimal(0)


# --- 1. The month's first minutes (before the 15-minute close task runs): last month's open day counts ---------

NOV30 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # the last close (midnight before the 30th)
DEC1_0005 = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)  # the new month, the close has not run yet
FIVE_MINUTES = Decimal(300) * RATE / Decimal(3600)  # $0.03: what December has really cost


def test_it_counts_only_this_month_in_the_launch_check_before_the_close_runs(org, project, owner):
    allocation = fund(project, period=BudgetPool.Period.MONTHLY, start=datetime(2020, 1, 1, tzinfo=UTC))
    running(org, project, owner, since=NOV30)
    with time_machine.travel(DEC1_0005, tick=False):
        committed = reservations.committed(allocation=allocation, member_id=owner.pk, now=DEC1_0005)
    # Actual: $8.67 (24 h 5 min of November 30 and December 1 counted as December's spend).
    assert committed.spent == FIVE_MINUTES


def test_it_counts_only_this_month_in_the_thresholds_before_the_close_runs(org, project, owner):
    allocation = fund(project, period=BudgetPool.Period.MONTHLY, start=datetime(2020, 1, 1, tzinfo=UTC))
    running(org, project, owner, since=NOV30)
    with time_machine.travel(DEC1_0005, tick=False):
        spending = enforcement.period_spending([allocation], DEC1_0005)
    assert spending.by_project[project.pk] == FIVE_MINUTES


def test_it_counts_only_this_month_in_the_project_report_before_the_close_runs(org, project, owner):
    fund(project, period=BudgetPool.Period.MONTHLY, start=datetime(2020, 1, 1, tzinfo=UTC))
    running(org, project, owner, since=NOV30)
    with time_machine.travel(DEC1_0005, tick=False):
        money_ = reports.project_money(project, now=DEC1_0005)
    assert money_.month_to_date == FIVE_MINUTES
    assert money_.spent == FIVE_MINUTES


def test_the_pool_figures_agree_and_do_not_drop_after_the_close(org, project, owner):
    # spent_by_project clamps the open interval, so the API is right; after the close it must stay the same.
    allocation = fund(project, period=BudgetPool.Period.MONTHLY, start=datetime(2020, 1, 1, tzinfo=UTC))
    workspace = running(org, project, owner, since=NOV30)
    with time_machine.travel(DEC1_0005, tick=False):
        before = allocation_figures([allocation], now=DEC1_0005)[allocation.pk].spent
        ledger.close_day(workspace_id=workspace.pk, now=DEC1_0005)
        allocation = Allocation.objects.select_related("pool__organization").get(pk=allocation.pk)
        after = allocation_figures([allocation], now=DEC1_0005)[allocation.pk].spent
    assert before == after == FIVE_MINUTES.quantize(Decimal("0.0001"))


# --- 2. A budget period that starts in the middle of a day: a row straddling the start is dropped ---------------


def test_spend_since_a_mid_day_period_start_does_not_go_down_when_the_interval_closes(org, project, owner):
    start = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)  # the pool (a grant) starts at 14:00
    allocation = fund(project, period=BudgetPool.Period.PROJECT, start=start)
    workspace = running(org, project, owner, since=datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 12, 3, 16, 0, tzinfo=UTC), tick=False):
        # Budget periods are whole days in the organization's time zone: the 14:00 start counts from midnight,
        # so the 09:00–16:00 run counts whole (7 h: $2.52), before and after the row is written.
        seen = allocation_figures([allocation])[allocation.pk].spent
        record_transition(workspace=workspace, to_state="stopping", expected_from=["running"])
        allocation = Allocation.objects.select_related("pool__organization").get(pk=allocation.pk)
        after = allocation_figures([allocation])[allocation.pk].spent
    assert seen == Decimal("2.5200")
    assert after == seen


def test_the_launch_check_counts_a_mid_day_period_start_from_the_start(org, project, owner):
    start = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    allocation = fund(project, period=BudgetPool.Period.PROJECT, start=start)
    running(org, project, owner, since=datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    now = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        committed = reservations.committed(allocation=allocation, member_id=owner.pk, now=now)
    # Whole days: the period starts at that day's midnight, as the pool figures count it.
    assert committed.spent == Decimal("2.52")


# --- 3. A stop the cloud dates before the midnight close is billed until Carrel noticed it -------------------


def test_a_stop_dated_before_the_midnight_close_is_not_billed_after_midnight(org, project, owner):
    workspace = running(org, project, owner, since=datetime(2026, 12, 4, 12, 0, tzinfo=UTC))
    midnight = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
    ledger.close_day(workspace_id=workspace.pk, now=midnight + timedelta(minutes=1))  # the close ran at 00:01
    workspace.refresh_from_db()
    assert workspace.ledger_through == midnight
    # Stopped in the AWS console at 23:50; the reconciler notices at 00:10 with that time.
    with time_machine.travel(midnight + timedelta(minutes=10), tick=False):
        record_transition(
            workspace=workspace,
            to_state="stopped",
            expected_from=["running"],
            cloud_at=midnight - timedelta(minutes=10),
        )
    after_midnight = CostEntry.objects.filter(workspace=workspace, kind="compute", start__gte=midnight)
    # Actual: a 600-second row on 5 December (the cloud's time is refused as "before the interval began").
    assert sum((row.quantity for row in after_midnight), Decimal(0)) == 0


# --- 4. A launch that fails after RunInstances is billed from the request, not from LaunchTime ----------------


class _FakeProvider:
    def __init__(self, info):
        self.info = info

    def find_workspace_instances(self, workspace_id, account_id):
        return [self.info]

    def terminate(self, instance_id):
        pass

    def delete_security_group(self, group_id):
        pass


# --- 5. History puts the not-yet-closed part of yesterday on today --------------------------------------------


def test_history_puts_yesterdays_open_hours_on_yesterday(org, project, owner):
    from budgets.history import cost_history

    running(org, project, owner, since=datetime(2026, 12, 4, 0, 0, tzinfo=UTC))
    now = datetime(2026, 12, 5, 0, 5, tzinfo=UTC)  # the 15-minute close has not run yet
    with time_machine.travel(now, tick=False):
        history = cost_history(user=owner, start=now.date() - timedelta(days=1), end=now.date(), now=now)
    costs = {str(bucket["date"]): bucket["cost"] for bucket in history["daily_costs"]}
    # Actual: {"2026-12-04": 0, "2026-12-05": 8.67}; after the close runs, 8.64 moves back to the 4th.
    assert costs == {"2026-12-04": Decimal("8.6400"), "2026-12-05": Decimal("0.0300")}


# --- 6. Changing the organization's time zone: rows keep the old zone's `day`, readers use the new one --------


# --- 7. A discount change applies to time already elapsed in the open interval ----------------------------------


# --- 8. A failed launch whose instance survived (cleanup failed) and the reconciler adopts: no storage ever -------


def test_storage_is_billed_for_an_errored_launch_that_the_reconciler_finds_running(org, project, owner):
    requested = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    workspace = running(org, project, owner, since=requested, state="launching")
    Workspace.objects.filter(pk=workspace.pk).update(
        storage_lines=[{"item": "gp3 storage", "units": "50", "unit": "GB-month", "rate": "0.08"}],
        storage_monthly_rate=Decimal("4"),
    )
    workspace.refresh_from_db()
    with time_machine.travel(requested + timedelta(minutes=2), tick=False):
        # workspace_launch_failed: the terminate call failed (a CloudError is only logged), the state is error.
        record_transition(workspace=workspace, to_state="error", expected_from=["launching"])
    with time_machine.travel(requested + timedelta(minutes=7), tick=False):
        # reconcile.implied_state: error + the provider says running -> running (with the LaunchTime).
        record_transition(workspace=workspace, to_state="running", expected_from=["error"], cloud_launch_time=requested)
    with time_machine.travel(requested + timedelta(days=1, minutes=7), tick=False):
        record_transition(workspace=workspace, to_state="stopping", expected_from=["running"])
    workspace.refresh_from_db()
    storage = CostEntry.objects.filter(workspace=workspace, kind="storage", start__gte=requested + timedelta(minutes=7))
    # The 50 GB volume existed the whole day. Actual: no storage row after the error, volume_billed stays False.
    assert storage.exists()
    assert workspace.volume_billed


# --- 9. A spot workspace's next run, when EC2 quotes no spot price, keeps the LAST run's spot price ---------------


def test_a_spot_run_without_a_quote_is_billed_at_the_on_demand_upper_bound(org, project, owner):
    from unittest import mock

    from workspaces import sizing
    from workspaces.services.provisioning import spot_rate

    workspace = running(org, project, owner, since=datetime(2026, 12, 4, 8, 0, tzinfo=UTC), state="stopped")
    Workspace.objects.filter(pk=workspace.pk).update(spot=True, hourly_rate=Decimal("0.0200"), region="us-east-1")
    workspace.refresh_from_db()
    provider = mock.Mock(spec=cloud.AwsProvider)
    provider.spot_price.return_value = None  # EC2 quoted nothing for this type and zone
    info = mock.Mock(availability_zone="us-east-1a")
    # Not the previous run's $0.02: the on-demand rate, which spot never bills above.
    assert spot_rate(provider, workspace, info) == {"hourly_rate": sizing.hourly_rate("t3.large", "us-east-1")}
