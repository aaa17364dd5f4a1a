"""The sums of open intervals PostgreSQL keeps (budgets.models.OpenSpendSum, written by a trigger on workspaces):
after any change to a workspace — every state, cursors moving, rates changing, a workspace moving project, a row
deleted, a bulk update — they equal a recount of the workspaces with budgets.ledger's own rules; compacting keeps
them equal; writers of one project never wait for each other."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from budgets import ledger, open_sums
from budgets.models import OpenSpendSum
from budgets.selectors import open_spend_by_project
from tests.conftest import make_project
from tests.support import assert_writers_never_wait
from workspaces.models import Workspace, WorkspaceState

S = WorkspaceState
pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL keeps the sums")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPEN_EXCLUDED = ledger.NOT_CLOSED_DAILY - {S.LAUNCHING}


def _month(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def recount() -> dict:
    """(project, month) -> the four sums, from the workspaces, by the ledger's rules (zero groups left out)."""
    sums: dict = defaultdict(lambda: [Decimal(0)] * 4)
    for w in Workspace.objects.filter(ledger_through__isnull=False).exclude(state__in=OPEN_EXCLUDED):
        found = sums[(w.project_id, _month(w.ledger_through))]
        epoch = ledger.seconds_between(EPOCH, w.ledger_through)
        if w.state in ledger.COMPUTE_BILLED:
            found[0] += w.hourly_rate
            found[1] += w.hourly_rate * epoch
        if w.volume_billed:
            found[2] += w.storage_monthly_rate
            found[3] += w.storage_monthly_rate * epoch
    return {key: tuple(values) for key, values in sums.items() if any(values)}


def kept() -> dict:
    rows = (
        OpenSpendSum.objects.values("project_id", "month")
        .annotate(a=Sum("billed_rate"), b=Sum("billed_rate_epoch"), c=Sum("storage_rate"), d=Sum("storage_epoch"))
        .order_by()
    )
    return {
        (row["project_id"], row["month"].astimezone(UTC)): (row["a"], row["b"], row["c"], row["d"])
        for row in rows
        if any((row["a"], row["b"], row["c"], row["d"]))
    }


def _workspace(org, project, owner, i: int, state, through, **fields) -> Workspace:
    return Workspace.objects.create(
        organization=org,
        project=project,
        owner=owner,
        name=f"w{i}",
        state=state,
        ledger_through=through,
        hourly_rate=Decimal("0.0416") * (i + 1),
        storage_monthly_rate=Decimal("2.40000001") + i,
        volume_billed=i % 3 != 0,
        **fields,
    )


def test_it_keeps_what_a_recount_finds_through_every_kind_of_change(owner, org, project):
    other = make_project(org, "Other", owner)
    now = datetime.now(UTC).replace(microsecond=123456)
    made = [
        _workspace(org, project, owner, i, state, now - timedelta(days=i * 13, seconds=i))
        for i, state in enumerate(S.values)
    ]
    made.append(_workspace(org, project, owner, 99, S.RUNNING, None))  # no cursor yet: nothing open
    assert kept() == recount() and kept()

    # Every workspace through every state (save() writes every column; the trigger sees the real changes).
    for state in S.values:
        for workspace in made:
            workspace.state = state
            workspace.save()
        assert kept() == recount(), state
    # Cursors move (a close), rates change, a volume stops being billed, a cursor is cleared.
    Workspace.objects.filter(pk__in=[w.pk for w in made]).update(state=S.RUNNING)
    Workspace.objects.filter(pk=made[0].pk).update(ledger_through=now + timedelta(seconds=5))
    Workspace.objects.filter(pk=made[1].pk).update(hourly_rate=Decimal("9.1234"))
    Workspace.objects.filter(pk=made[2].pk).update(volume_billed=False, storage_monthly_rate=Decimal("7"))
    Workspace.objects.filter(pk=made[3].pk).update(ledger_through=None)
    assert kept() == recount()
    # A workspace moves to another project; a row is deleted; one bulk update across both projects.
    Workspace.objects.filter(pk=made[4].pk).update(project=other)
    Workspace.objects.filter(pk=made[5].pk).delete()
    Workspace.objects.filter(organization=org).update(ledger_through=now - timedelta(hours=1))
    assert kept() == recount()
    assert {project_id for project_id, _ in kept()} == {project.pk, other.pk}

    # A save() that changes nothing priced appends nothing.
    made[6].refresh_from_db()
    before = OpenSpendSum.objects.count()
    made[6].name = "renamed"
    made[6].save()
    assert OpenSpendSum.objects.count() == before

    # Compacting folds everything into one row per project and month, and answers the same.
    spend = open_spend_by_project({project.pk: None, other.pk: None}, now=now)
    open_sums.compact()
    assert OpenSpendSum.objects.count() == len(recount()) == 2
    assert kept() == recount()
    assert open_spend_by_project({project.pk: None, other.pk: None}, now=now) == spend
    # Once nothing is open, compacting keeps no row.
    Workspace.objects.filter(organization=org).update(state=S.TERMINATED)
    open_sums.compact()
    assert OpenSpendSum.objects.count() == 0 and recount() == {}


def test_it_leaves_the_other_tenants_sums_alone(owner, org, project, outsider):
    """Two organizations: one's changes and compaction move nothing of the other's open spend."""
    theirs = outsider.project_memberships.get().project
    now = datetime.now(UTC)
    _workspace(theirs.organization, theirs, outsider, 1, S.RUNNING, now - timedelta(hours=2))
    mine = _workspace(org, project, owner, 2, S.RUNNING, now - timedelta(hours=3))
    before = open_spend_by_project({theirs.pk: None}, now=now)[theirs.pk]
    assert before.total > 0
    Workspace.objects.filter(pk=mine.pk).update(state=S.STOPPED, hourly_rate=Decimal(50))
    open_sums.compact()
    assert open_spend_by_project({theirs.pk: None}, now=now)[theirs.pk] == before


@pytest.mark.django_db(transaction=True)
def test_it_never_makes_two_writers_of_one_project_wait_for_each_other(owner, org, project):
    """Append-only: a transaction that changed one workspace (and has not committed) does not hold up another
    changing a second workspace of the same project, nor compaction."""
    now = datetime.now(UTC)
    first = _workspace(org, project, owner, 1, S.RUNNING, now - timedelta(hours=1))
    second = _workspace(org, project, owner, 2, S.RUNNING, now - timedelta(hours=1))
    assert_writers_never_wait(
        hold=lambda: Workspace.objects.filter(pk=first.pk).update(state=S.STOPPING),
        write=lambda: Workspace.objects.filter(pk=second.pk).update(state=S.STOPPING),
        compact=open_sums.compact,
    )
    assert kept() == recount()
