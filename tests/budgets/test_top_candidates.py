"""The budget report keeps which workspaces are the candidates for its top spenders for TOP_CANDIDATES_SECONDS
per project and period (the ranking is a pass over every workspace), and prices them anew on every request: the
amounts shown are always exact, a newcomer shows once the candidates are ranked again, a candidate that moved to
another project is never shown in the old one, and one project's candidates are never another's."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection

from budgets import reports
from budgets.models import Allocation, BudgetPool, CostEntry
from tests.conftest import make_org, make_project, make_user
from tests.support import record_cost
from workspaces.models import Workspace, WorkspaceState

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the ranking in SQL is PostgreSQL's")


def _funded(org, project, now: datetime) -> None:
    pool = BudgetPool.objects.create(
        organization=org,
        name=f"Grant {project.name}",
        total_amount=Decimal("100000"),
        start_date=now - timedelta(days=10),
        end_date=now + timedelta(days=10),
    )
    Allocation.objects.create(pool=pool, project=project, amount=Decimal("1000"))
    project.refresh_from_db()


def _spender(project, owner, name: str, amount: str, now: datetime) -> Workspace:
    workspace = Workspace.objects.create(
        organization=project.organization,
        project=project,
        owner=owner,
        name=name,
        state=WorkspaceState.STOPPED,
        ledger_through=now - timedelta(hours=1),
        created_at=now - timedelta(days=2),
    )
    _cost(workspace, owner, amount, now)
    return workspace


def _cost(workspace: Workspace, owner, amount: str, now: datetime, *, hours_ago: int = 3) -> None:
    start = now - timedelta(hours=hours_ago)
    record_cost(
        organization=workspace.organization,
        workspace=workspace,
        project=workspace.project,
        member=owner,
        kind=CostEntry.Kind.COMPUTE,
        item="t3.medium",
        start=start,
        end=start + timedelta(minutes=1),
        day=start.date(),
        quantity=Decimal(60),
        unit="seconds",
        rate=Decimal(1),
        amount=Decimal(amount),
    )


def _top(project, now: datetime) -> list[tuple[str, Decimal]]:
    shown = reports.project_budget(project, now=now)["top_spending_instances"]
    return [(row["name"], row["cost"]) for row in shown]


def test_it_prices_the_kept_candidates_anew_and_ranks_again_when_they_run_out(owner, org, project):
    now = datetime.now(UTC)
    _funded(org, project, now)
    first = [_spender(project, owner, f"w{i}", str(10 + i), now) for i in range(reports._TOP_CANDIDATES + 3)]
    assert _top(project, now) == [(f"w{i}", Decimal(10 + i)) for i in range(22, 17, -1)]

    # A candidate's new cost shows at once; a newcomer outside the candidates waits for the next ranking.
    _cost(first[20], owner, "100", now, hours_ago=2)
    newcomer = _spender(project, owner, "newcomer", "500", now)
    assert _top(project, now)[0] == ("w20", Decimal(130))
    assert "newcomer" not in dict(_top(project, now))

    cache.clear()  # the kept candidates run out
    assert _top(project, now)[:2] == [("newcomer", Decimal(500)), ("w20", Decimal(130))]

    # A candidate moved to another project is no longer this project's spender.
    elsewhere = make_project(org, "Elsewhere", owner)
    Workspace.objects.filter(pk=newcomer.pk).update(project=elsewhere)
    assert "newcomer" not in dict(_top(project, now))


def test_it_keeps_each_projects_candidates_apart(owner, org, project):
    now = datetime.now(UTC)
    stranger = make_user("stranger@example.com")
    theirs = make_project(make_org("Theirs", stranger), "Theirs", stranger)
    for funded in (project, theirs):
        _funded(funded.organization, funded, now)
    _spender(project, owner, "ours", "7", now)
    _spender(theirs, stranger, "their-big-one", "900", now)

    assert _top(project, now) == [("ours", Decimal(7))]
    assert _top(theirs, now) == [("their-big-one", Decimal(900))]
    assert _top(project, now) == [("ours", Decimal(7))]
