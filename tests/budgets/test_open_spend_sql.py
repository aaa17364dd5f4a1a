"""The open intervals summed in SQL (budgets.selectors.open_spend_by_project) and the budget read without
loading every workspace (budgets.reports.budget_money) answer what pricing each workspace in Python answers."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import Q

from budgets import ledger, reports
from budgets.models import Allocation, BudgetPool, CostEntry
from budgets.selectors import money, open_spend, open_spend_by_project, open_workspaces
from tests.support import record_cost
from workspaces.models import StateTransition, Workspace, WorkspaceState

S = WorkspaceState
pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL path is PostgreSQL's")
NOW = datetime(2026, 12, 1, 0, 0, 30, 123456, tzinfo=UTC)  # just past a month boundary


def _workspaces(org, project, owner) -> list[Workspace]:
    shapes = [
        # state, ledger_through, run_billed_seconds, volume_billed
        (S.RUNNING, NOW - timedelta(hours=5, microseconds=7), Decimal(3600), True),
        (S.RUNNING, NOW - timedelta(seconds=20), Decimal(0), True),  # the 60-second minimum
        (S.RUNNING, NOW - timedelta(seconds=20), Decimal("45.5"), False),
        (S.STOPPED, NOW - timedelta(days=40), Decimal(0), True),  # across two month boundaries
        (S.HIBERNATING, NOW - timedelta(minutes=3), Decimal(0), True),
        (S.LAUNCHING, NOW - timedelta(minutes=1), Decimal(0), True),
        (S.PENDING, NOW - timedelta(minutes=1), Decimal(0), True),  # never open
        (S.TERMINATED, NOW - timedelta(minutes=1), Decimal(0), False),
        (S.RUNNING, None, Decimal(0), False),
        (S.RUNNING, NOW + timedelta(seconds=5), Decimal(0), True),  # closed past now: nothing open
    ]
    made = []
    for i, (state, through, billed, volume) in enumerate(shapes):
        made.append(
            Workspace.objects.create(
                organization=org,
                project=project,
                owner=owner,
                name=f"ws-{i}",
                state=state,
                ledger_through=through,
                run_billed_seconds=billed,
                volume_billed=volume,
                hourly_rate=Decimal("0.0416") * (i + 1),
                storage_monthly_rate=Decimal("2.40000001") + i,
                created_at=NOW - timedelta(days=50),
            )
        )
    return made


def _python(project_id: str, since):
    compute = storage = Decimal(0)
    for workspace in open_workspaces(Q(project_id=project_id)):
        cost = ledger.open_cost(workspace, now=NOW, since=since)
        compute += cost.compute
        storage += cost.storage
    return compute, storage


@pytest.mark.parametrize(
    "since", [None, NOW - timedelta(hours=1), NOW - timedelta(seconds=10), NOW - timedelta(days=35), NOW]
)
def test_it_sums_open_intervals_as_open_cost_does(owner, org, project, since):
    org.discount_percent = Decimal("12.5")
    org.save()
    _workspaces(org, project, owner)
    got = open_spend_by_project({project.pk: since}, now=NOW)[project.pk]
    compute, storage = _python(project.pk, since)
    assert abs(got.compute - compute) < Decimal("1e-18")
    assert abs(got.storage - storage) < Decimal("1e-18")
    assert money(got.total) == money(compute + storage)


def test_it_sums_several_windows_in_one_query_as_each_alone(owner, org, project, django_assert_num_queries):
    org.discount_percent = Decimal("12.5")
    org.save()
    _workspaces(org, project, owner)
    starts = {
        "whole": None,
        "hour": NOW - timedelta(hours=1),
        "seconds": NOW - timedelta(seconds=10),
        "month": NOW - timedelta(days=35),
        "now": NOW,
        "later": NOW + timedelta(days=1),
    }
    with django_assert_num_queries(1):
        got = open_spend({name: (project.pk, start) for name, start in starts.items()}, now=NOW)
    for name, start in starts.items():
        compute, storage = _python(project.pk, start)
        assert abs(got[name].compute - compute) < Decimal("1e-18"), name
        assert abs(got[name].storage - storage) < Decimal("1e-18"), name


def test_it_answers_zero_for_a_project_without_workspaces(project):
    assert open_spend_by_project({project.pk: None}, now=NOW)[project.pk].total == 0


def _pool_around(org, now: datetime) -> BudgetPool:
    """A pool whose term runs from ten days before `now` to ten days after."""
    return BudgetPool.objects.create(
        organization=org,
        name="Grant",
        total_amount=Decimal("1000"),
        start_date=now - timedelta(days=10),
        end_date=now + timedelta(days=10),
    )


def test_it_answers_the_budget_the_python_path_answers(owner, org, project, monkeypatch):
    now = datetime.now(UTC)
    pool = _pool_around(org, now)
    Allocation.objects.create(pool=pool, project=project, amount=Decimal("100"), alert_thresholds=["0.5"])
    spenders = []
    for i in range(8):
        workspace = Workspace.objects.create(
            organization=org,
            project=project,
            owner=owner,
            name=f"w{i}",
            state=S.STOPPED if i == 3 else S.RUNNING,
            ledger_through=now - timedelta(hours=i + 1),
            hourly_rate=Decimal("0.5") + i,
            volume_billed=True,
            storage_monthly_rate=Decimal(3),
            created_at=now - timedelta(days=2),
        )
        spenders.append(workspace)
        record_cost(
            organization=org,
            workspace=workspace,
            project=project,
            member=owner,
            kind=CostEntry.Kind.COMPUTE,
            item="t3.medium",
            start=now - timedelta(days=1, hours=i),
            end=now - timedelta(days=1),
            day=(now - timedelta(days=1)).date(),
            quantity=Decimal(3600 * i),
            unit="seconds",
            rate=Decimal(1),
            amount=Decimal(i) * Decimal("0.75"),
        )
    StateTransition.objects.create(
        workspace=spenders[3],
        from_state=S.RUNNING,
        to_state=S.STOPPED,
        created_at=now - timedelta(hours=4),
        hourly_rate=Decimal("3.5"),
    )
    project.refresh_from_db()
    fast = reports.project_budget(project, now=now)
    monkeypatch.setattr(reports, "connection", SimpleNamespace(vendor="sqlite"))
    slow = reports.project_budget(project, now=now)
    assert fast == slow
    assert len(fast["top_spending_instances"]) == reports.TOP
    assert fast["hibernation_savings"] > 0


def test_it_ranks_workspaces_older_than_the_period_by_their_cost_in_it(owner, org, project, monkeypatch):
    """The ranking reads a workspace created in the period from its kept total (cost_closed) and an older one
    from its rows since the period began: what an older one cost before the period never lifts it, and a
    workspace terminated in the period still counts while one terminated before it does not."""
    now = datetime.now(UTC)
    pool = _pool_around(org, now)
    Allocation.objects.create(pool=pool, project=project, amount=Decimal("100"))
    project.refresh_from_db()
    period_start, _ = reports.period_of(project.allocation, now, ledger.zone_of(org.time_zone))

    def workspace(name: str, *, state: str, created: datetime, changed: datetime, rate: str = "0") -> Workspace:
        return Workspace.objects.create(
            organization=org,
            project=project,
            owner=owner,
            name=name,
            state=state,
            hourly_rate=Decimal(rate),
            ledger_through=changed,
            state_changed_at=changed,
            created_at=created,
        )

    def cost(target: Workspace, *, day_start: datetime, amount: str) -> None:
        record_cost(
            organization=org,
            workspace=target,
            project=project,
            member=owner,
            kind=CostEntry.Kind.COMPUTE,
            item="t3.medium",
            start=day_start,
            end=day_start + timedelta(hours=1),
            day=day_start.date(),
            quantity=Decimal(3600),
            unit="seconds",
            rate=Decimal(1),
            amount=Decimal(amount),
        )

    before, during = period_start - timedelta(days=5), period_start + timedelta(days=1)
    # Rich before the period, modest in it: ranked by the modest part.
    veteran = workspace("veteran", state=S.STOPPED, created=now - timedelta(days=30), changed=during)
    cost(veteran, day_start=before, amount="500")
    cost(veteran, day_start=during, amount="2")
    # Created in the period: its whole closed cost counts.
    newcomer = workspace("newcomer", state=S.STOPPED, created=period_start + timedelta(hours=1), changed=during)
    cost(newcomer, day_start=during, amount="3")
    # Terminated in the period: counts; terminated before it: its cost is all before the period.
    gone = workspace("gone", state=S.TERMINATED, created=now - timedelta(days=30), changed=during)
    cost(gone, day_start=during, amount="4")
    long_gone = workspace("long-gone", state=S.TERMINATED, created=now - timedelta(days=30), changed=before)
    cost(long_gone, day_start=before - timedelta(days=1), amount="900")
    # Running since the period began, nothing closed yet: its open interval.
    runner = workspace(
        "runner",
        state=S.RUNNING,
        created=now - timedelta(days=30),
        changed=period_start - timedelta(days=1),
        rate="0.1",
    )
    Workspace.objects.filter(pk=runner.pk).update(run_billed_seconds=Decimal(3600))

    fast = reports.project_budget(project, now=now)
    monkeypatch.setattr(reports, "connection", SimpleNamespace(vendor="sqlite"))
    slow = reports.project_budget(project, now=now)
    assert fast == slow
    ranked = [(row["name"], row["cost"]) for row in fast["top_spending_instances"]]
    assert [name for name, _ in ranked] == ["runner", "gone", "newcomer", "veteran"]
    assert dict(ranked)["veteran"] == money(Decimal(2))


def test_it_sums_the_closed_windows_as_the_querysets_do(owner, org, project, monkeypatch):
    """closed_since's hand-written SQL and its querysets: the same sums by kind for windows that start on a day
    with rows, between rows, before every row, and for the whole history (None)."""
    workspace = _workspaces(org, project, owner)[0]
    zone = ledger.zone_of("Europe/Berlin")
    for day in range(6):
        for kind, hour in ((CostEntry.Kind.COMPUTE, 1), (CostEntry.Kind.STORAGE, 13), (CostEntry.Kind.COMPUTE, 22)):
            start = datetime(2026, 11, 20 + day, hour, 0, tzinfo=zone)
            record_cost(
                organization=org,
                workspace=workspace,
                project=project,
                member=owner,
                kind=kind,
                item=f"{kind}-{hour}",
                start=start,
                end=start + timedelta(minutes=30),
                day=start.date(),
                quantity=Decimal(1800),
                unit="seconds",
                rate=Decimal(1),
                amount=Decimal("1.25") * (day + 1) + Decimal(hour) / 100,
            )
    windows = {
        "none": None,
        "mid-day": datetime(2026, 11, 22, 12, 0, tzinfo=zone),
        "late": datetime(2026, 11, 25, 23, 0, tzinfo=zone),
        "before": datetime(2026, 11, 1, tzinfo=zone),
    }
    for chosen in (windows, {k: v for k, v in windows.items() if v is not None}, {"none": None}):
        sql = reports.closed_since(project.pk, chosen, zone)
        monkeypatch.setattr(reports, "connection", SimpleNamespace(vendor="sqlite"))
        querysets = reports.closed_since(project.pk, chosen, zone)
        monkeypatch.undo()
        assert sql == querysets, chosen
        assert sql[next(iter(chosen))]  # something was summed


def test_it_reads_the_rested_workspaces_as_the_queryset_does(owner, org, project, monkeypatch):
    """rested_workspaces' hand-written select and its queryset: the same workspaces, each field the savings and
    open_cost read loaded alike, the organization's included."""
    from tests.conftest import make_project

    made = _workspaces(org, project, owner)
    since = NOW - timedelta(days=2)
    other = make_project(org, "Other", owner)
    elsewhere = Workspace.objects.create(organization=org, project=other, owner=owner, name="far", state=S.STOPPED)
    for workspace, from_state, to_state, at in (
        (made[0], S.RUNNING, S.HIBERNATED, NOW - timedelta(hours=3)),  # running again? its rows say it rested
        (made[2], S.STOPPED, S.STARTING, NOW - timedelta(days=1)),
        (made[7], S.STOPPED, S.TERMINATED, NOW - timedelta(days=3)),  # before the window
        (elsewhere, S.RUNNING, S.STOPPED, NOW - timedelta(hours=1)),
    ):
        StateTransition.objects.create(
            workspace=workspace, from_state=from_state, to_state=to_state, created_at=at, hourly_rate=Decimal(1)
        )
    Workspace.objects.filter(pk=made[7].pk).update(state_changed_at=NOW - timedelta(days=3))
    org.discount_percent = Decimal("12.5")
    org.save()
    project.refresh_from_db()

    def loaded(workspaces):
        return [
            (
                tuple(getattr(w, name) for name in reports.WORKSPACE_FIELDS if "__" not in name),
                (w.organization.pk, w.organization.discount_percent, w.organization.time_zone),
            )
            for w in workspaces
        ]

    sql = reports.rested_workspaces(project, since_=since)
    monkeypatch.setattr(reports, "connection", SimpleNamespace(vendor="sqlite"))
    querysets = reports.rested_workspaces(project, since_=since)
    assert loaded(sql) == loaded(querysets)
    assert {w.name for w in sql} == {"ws-0", "ws-2", "ws-3"}
