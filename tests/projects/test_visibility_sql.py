"""ProjectQuerySet.visible_to writes its rule as one fixed piece of SQL (projects.models._VisibleTo) for speed.
These tests hold it to the same rule written with the ORM, for every kind of user, and through the querysets that
nest it in subqueries (workspaces, project members), where the ORM renames the outer table."""

from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, OrgRole
from projects.models import Project, ProjectMember, ProjectRole
from tests.conftest import add_org_member, make_org, make_project, make_user
from workspaces.models import Workspace


def visible_by_the_orm(user) -> set[str]:
    """The rule as the ORM wrote it before: administered organizations' projects, or a current membership."""
    administered = Membership.objects.filter(user=user, role__in=[OrgRole.OWNER, OrgRole.ADMIN]).values(
        "organization_id"
    )
    member_of = (
        ProjectMember.objects.filter(user=user)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .values("project_id")
    )
    return set(
        Project.objects.filter(deleted_at__isnull=True)
        .filter(Q(organization_id__in=administered) | Q(pk__in=member_of))
        .values_list("pk", flat=True)
    )


@pytest.fixture
def world(owner, org, project):
    """Two organizations; in A an admin, a plain org member with one project membership, one whose membership
    expired, one whose membership expires tomorrow, a viewer; a deleted project; B's owner sees only B."""
    other = make_project(org, "Proteomics", owner)
    deleted = make_project(org, "Old", owner)
    Project.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    admin, member, expired, expiring, viewer = (
        make_user(f"{name}@lab-a.example") for name in ("admin", "member", "expired", "expiring", "viewer")
    )
    add_org_member(org, admin, OrgRole.ADMIN)
    for user in (member, expired, expiring, viewer):
        add_org_member(org, user)
    now = timezone.now()
    ProjectMember.objects.create(project=project, user=member, role=ProjectRole.MEMBER)
    ProjectMember.objects.create(project=other, user=expired, expires_at=now - timedelta(seconds=1))
    ProjectMember.objects.create(project=other, user=expiring, expires_at=now + timedelta(days=1))
    ProjectMember.objects.create(project=deleted, user=viewer, role=ProjectRole.VIEWER)
    b_owner = make_user("owner@lab-b.example")
    b_org = make_org("Lab B", b_owner)
    make_project(b_org, "Climate", b_owner)
    # B's owner is also a plain member of A (no project there): sees nothing of A.
    add_org_member(org, b_owner)
    return {
        "owner": owner,
        "admin": admin,
        "member": member,
        "expired": expired,
        "expiring": expiring,
        "viewer": viewer,
        "b_owner": b_owner,
        "nobody": make_user("nobody@example.org"),
    }


def test_it_sees_what_the_orm_rule_sees_for_every_kind_of_user(world, org, project):
    seen = {name: set(Project.objects.visible_to(user).values_list("pk", flat=True)) for name, user in world.items()}
    for name, user in world.items():
        assert seen[name] == visible_by_the_orm(user), name
    live = set(Project.objects.filter(organization=org, deleted_at__isnull=True).values_list("pk", flat=True))
    assert seen["owner"] == seen["admin"] == live
    assert seen["member"] == {project.pk}
    assert seen["expired"] == set() and seen["viewer"] == set() and seen["nobody"] == set()
    assert len(seen["expiring"]) == 1 and seen["expiring"] < live
    assert seen["b_owner"].isdisjoint(live) and len(seen["b_owner"]) == 1


def test_it_scopes_workspaces_and_members_through_subqueries(world, org, project):
    """Nested in another queryset's subquery the project table is renamed (U0, V0): the condition follows."""
    for name, user in world.items():
        projects = visible_by_the_orm(user)
        members = ProjectMember.objects.visible_to(user).values_list("project_id", flat=True)
        assert set(members) <= projects, name
        assert set(members) == set(
            ProjectMember.objects.filter(project_id__in=projects).values_list("project_id", flat=True)
        ), name
        sql, _ = Workspace.objects.visible_to(user).query.sql_with_params()
        assert "carrel_m" in sql, name
        assert Workspace.objects.visible_to(user).count() == 0, name
