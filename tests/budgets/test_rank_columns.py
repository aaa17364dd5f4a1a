"""The float columns the top spenders are ranked by (Workspace.rank_*, written by a PostgreSQL trigger): after
every kind of write — create, save() in every state, bulk updates of the priced fields, a bulk insert — they equal
the numeric columns priced by budgets.ledger's rules (compute billed in COMPUTE_BILLED states, storage while the
volume is billed and the workspace is open), so the ranking never drifts from the exact figures."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from budgets import ledger
from workspaces.models import Workspace, WorkspaceState

S = WorkspaceState
pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL keeps the columns")
NOT_OPEN = ledger.NOT_CLOSED_DAILY - {S.LAUNCHING}


def expected(workspace: Workspace) -> tuple:
    open_ = workspace.state not in NOT_OPEN
    return (
        float(workspace.cost_closed),
        float(workspace.hourly_rate) / 3600 if workspace.state in ledger.COMPUTE_BILLED else 0.0,
        float(workspace.storage_monthly_rate) / 2592000 if workspace.volume_billed and open_ else 0.0,
        workspace.ledger_through.timestamp() if workspace.ledger_through else None,
    )


def kept(workspace: Workspace) -> tuple:
    row = Workspace.objects.values_list(
        "rank_cost_closed", "rank_compute_per_second", "rank_storage_per_second", "rank_cursor_epoch"
    ).get(pk=workspace.pk)
    return row


def assert_kept(workspaces) -> None:
    for workspace in workspaces:
        workspace.refresh_from_db()
        assert kept(workspace) == pytest.approx(expected(workspace), rel=1e-12), (workspace.state, workspace.pk)


def test_it_keeps_the_ranking_floats_equal_to_the_numerics_through_every_write(owner, org, project):
    now = datetime.now(UTC).replace(microsecond=654321)
    made = [
        Workspace.objects.create(
            organization=org,
            project=project,
            owner=owner,
            name=f"w{i}",
            state=state,
            ledger_through=now - timedelta(hours=i) if i % 4 else None,
            hourly_rate=Decimal("0.0416") * (i + 1),
            storage_monthly_rate=Decimal("2.40000001") + i,
            volume_billed=i % 3 != 0,
            cost_closed=Decimal("12.34567891") * i,
        )
        for i, state in enumerate(S.values)
    ]
    assert_kept(made)
    # save() in every state (Django writes its stale in-memory floats; the trigger rewrites them).
    for state in S.values:
        for workspace in made:
            workspace.state = state
            workspace.save()
        assert_kept(made)
    # Bulk updates of each priced field, and save(update_fields=...) of a field that is not priced.
    Workspace.objects.filter(pk=made[0].pk).update(cost_closed=Decimal("99.00000001"), state=S.RUNNING)
    Workspace.objects.filter(pk=made[1].pk).update(hourly_rate=Decimal("3.0600"), state=S.STARTING)
    Workspace.objects.filter(pk=made[2].pk).update(volume_billed=True, storage_monthly_rate=Decimal("8"))
    Workspace.objects.filter(pk=made[3].pk).update(ledger_through=now)
    Workspace.objects.filter(pk=made[4].pk).update(ledger_through=None)
    made[5].name = "renamed"
    made[5].save(update_fields=["name"])
    assert_kept(made)
    # A bulk insert (as bench/lists loads).
    copies = Workspace.objects.bulk_create(
        Workspace(
            organization=org,
            project=project,
            owner=owner,
            name=f"bulk{i}",
            state=S.HIBERNATED,
            ledger_through=now,
            hourly_rate=Decimal("1"),
            storage_monthly_rate=Decimal("3"),
            volume_billed=True,
        )
        for i in range(3)
    )
    assert_kept(copies)
