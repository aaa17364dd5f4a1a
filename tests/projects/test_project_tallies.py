"""The counts PostgreSQL keeps per project (projects.models.ProjectTally, written by triggers on workspaces and
project members): after any change — every state, a workspace or member moving project, rows deleted, bulk
updates — they equal a recount; compacting keeps them equal; GET /api/v1/projects shows them, an expired
membership not yet swept left out; one tenant's changes move nothing of another's."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from projects import tallies
from projects.models import Project, ProjectMember, ProjectRole, ProjectTally
from tests.conftest import add_org_member, bearer_client, make_project, make_user
from tests.support import assert_writers_never_wait
from workspaces.models import LIVE_STATES, Workspace, WorkspaceState

S = WorkspaceState
pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL keeps the counts")
COUNTED = ("workspaces", "live_workspaces", "running_workspaces", "members")


def recount() -> dict:
    """project -> (workspaces, live, running, member rows), counted from the rows (zero projects left out)."""
    counts: dict = {}
    for project_id, state in Workspace.objects.values_list("project_id", "state"):
        found = counts.setdefault(project_id, Counter())
        found["workspaces"] += 1
        found["live_workspaces"] += state in LIVE_STATES
        found["running_workspaces"] += state == S.RUNNING
    for project_id in ProjectMember.objects.values_list("project_id", flat=True):
        counts.setdefault(project_id, Counter())["members"] += 1
    return {key: tuple(found[name] for name in COUNTED) for key, found in counts.items() if any(found.values())}


def kept() -> dict:
    rows = ProjectTally.objects.values("project_id").annotate(**{name: Sum(name) for name in COUNTED}).order_by()
    return {row["project_id"]: tuple(row[name] for name in COUNTED) for row in rows if any(row[n] for n in COUNTED)}


def _workspace(project, owner, i: int, state) -> Workspace:
    return Workspace.objects.create(
        organization=project.organization, project=project, owner=owner, name=f"w{i}", state=state
    )


def test_it_keeps_what_a_recount_finds_through_every_kind_of_change(owner, org, project):
    other = make_project(org, "Other", owner)
    made = [_workspace(project, owner, i, state) for i, state in enumerate(S.values)]
    assert kept() == recount() and kept()[project.pk][0] == len(S.values)

    # Every workspace through every state (save() writes every column; the trigger sees the real changes).
    for state in S.values:
        for workspace in made:
            workspace.state = state
            workspace.save()
        assert kept() == recount(), state
    # A workspace moves to another project (running, as it was); one is deleted; a bulk update over both.
    Workspace.objects.filter(pk=made[0].pk).update(project=other)
    Workspace.objects.filter(pk=made[1].pk).delete()
    Workspace.objects.filter(organization=org).update(state=S.STOPPED)
    assert kept() == recount()
    # Members join, leave and move.
    for i in range(3):
        user = make_user(f"m{i}@lab-a.example")
        add_org_member(org, user)
        ProjectMember.objects.create(project=project, user=user, role=ProjectRole.MEMBER)
    ProjectMember.objects.filter(project=project, user__email="m0@lab-a.example").delete()
    ProjectMember.objects.filter(project=project, user__email="m1@lab-a.example").update(project=other)
    assert kept() == recount()

    # A save() that changes nothing counted appends nothing.
    made[2].refresh_from_db()
    before = ProjectTally.objects.count()
    made[2].name = "renamed"
    made[2].save()
    ProjectMember.objects.filter(project=project).update(role=ProjectRole.ADMIN)
    assert ProjectTally.objects.count() == before

    # Compacting folds everything into one row per project, and answers the same.
    tallies.compact()
    assert ProjectTally.objects.count() == len(recount()) == 2
    assert kept() == recount()
    # A project with nothing left keeps no row.
    Workspace.objects.filter(project=other).delete()
    ProjectMember.objects.filter(project=other).delete()
    tallies.compact()
    assert other.pk not in kept() and ProjectTally.objects.filter(project_id=other.pk).count() == 0


def test_it_lets_a_project_be_removed_outright_and_compaction_forgets_it(owner, org, project):
    """No foreign key: the rows the cascade's own deletes (its members) append do not fail the delete."""
    _workspace(project, owner, 1, S.RUNNING).delete()  # workspaces protect their project
    with transaction.atomic():
        Project.objects.filter(pk=project.pk).delete()
    assert not Project.objects.filter(pk=project.pk).exists()
    tallies.compact()
    assert not ProjectTally.objects.filter(project_id=project.pk).exists()


def test_it_shows_the_kept_counts_and_leaves_out_expired_members_before_the_sweep(owner, org, project):
    for i, state in enumerate([S.RUNNING, S.RUNNING, S.STOPPED, S.TERMINATED]):
        _workspace(project, owner, i, state)
    guests = []
    for i in range(3):
        guest = make_user(f"guest{i}@lab-a.example")
        add_org_member(org, guest)
        guests.append(ProjectMember.objects.create(project=project, user=guest))
    # One membership ran out an hour ago and the sweep has not removed it; another ends tomorrow.
    ProjectMember.objects.filter(pk=guests[0].pk).update(expires_at=timezone.now() - timedelta(hours=1))
    ProjectMember.objects.filter(pk=guests[1].pk).update(expires_at=timezone.now() + timedelta(days=1))
    tallies.compact()
    _workspace(project, owner, 9, S.LAUNCHING)  # appended after compaction: read along

    row = bearer_client(owner).get("/api/v1/projects").json()[0]
    assert (row["member_count"], row["total_instances"], row["live_instances"], row["active_instances"]) == (
        3,
        5,
        4,
        2,
    )
    assert len(row["members"]) == row["member_count"]
    detail = bearer_client(owner).get(f"/api/v1/projects/{project.pk}").json()
    assert detail["member_count"] == 3 and detail["total_instances"] == 5


def test_it_leaves_the_other_tenants_counts_alone(owner, org, project, outsider):
    theirs = outsider.project_memberships.get().project
    _workspace(theirs, outsider, 1, S.RUNNING)
    before = kept()[theirs.pk]
    mine = _workspace(project, owner, 2, S.RUNNING)
    Workspace.objects.filter(pk=mine.pk).update(state=S.TERMINATED)
    Workspace.objects.filter(pk=mine.pk).delete()
    tallies.compact()
    assert kept()[theirs.pk] == before == (1, 1, 1, 1)
    row = bearer_client(outsider).get("/api/v1/projects").json()[0]
    assert (row["total_instances"], row["active_instances"], row["member_count"]) == (1, 1, 1)


@pytest.mark.django_db(transaction=True)
def test_it_never_makes_two_writers_of_one_project_wait_for_each_other(owner, org, project):
    """Append-only: a transaction that changed one workspace (and has not committed) does not hold up another
    changing a second workspace of the same project, nor compaction."""
    first = _workspace(project, owner, 1, S.RUNNING)
    second = _workspace(project, owner, 2, S.RUNNING)
    assert_writers_never_wait(
        hold=lambda: Workspace.objects.filter(pk=first.pk).update(state=S.STOPPING),
        write=lambda: Workspace.objects.filter(pk=second.pk).update(state=S.STOPPING),
        compact=tallies.compact,
    )
    assert kept() == recount()
