"""A project membership whose access expired grants nothing at once, before the periodic task removes it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import OrgRole
from platform_site.errors import PermissionDenied
from projects import services
from projects.models import Project, ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_user
from workspaces.models import Workspace


@pytest.fixture
def guest(org, project):
    user = make_user("guest@visiting.example")
    add_org_member(org, user, OrgRole.MEMBER)
    ProjectMember.objects.create(
        project=project, user=user, role=ProjectRole.ADMIN, expires_at=timezone.now() + timedelta(hours=1)
    )
    Workspace.objects.create(organization=org, project=project, owner=user, name="guest-box", state="running")
    return user


def _expire(user) -> None:
    ProjectMember.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_it_serves_a_member_until_the_access_expires_and_not_a_second_later(project, guest):
    client = bearer_client(guest)
    assert client.get(f"/api/v1/projects/{project.id}").status_code == 200
    assert [w["name"] for w in client.get("/api/v1/instances").json()] == ["guest-box"]

    _expire(guest)
    assert ProjectMember.objects.filter(user=guest).exists()  # no periodic task has run
    assert_error(client.get(f"/api/v1/projects/{project.id}"), 404, "PROJECT_NOT_FOUND")
    assert client.get("/api/v1/projects").json() == []
    assert client.get("/api/v1/instances").json() == []
    assert_error(client.get("/api/v1/instances/guest-box"), 404)
    assert_error(client.get(f"/api/v1/projects/{project.id}/members"), 404, "PROJECT_NOT_FOUND")
    assert_error(client.get(f"/api/v1/invitations/project/{project.id}"), 404)


def test_expired_access_counts_in_no_role_check(project, guest):
    _expire(guest)
    assert services.project_role_of(user=guest, project=project) is None
    with pytest.raises(PermissionDenied):
        services.require_project_role(user=guest, project=project, minimum=ProjectRole.VIEWER)
    with pytest.raises(PermissionDenied):
        services.project_update(actor=guest, project=project, name="Taken over")
    assert not Project.objects.visible_to(guest).exists()


def test_expired_members_are_not_listed_and_can_be_added_again(owner, owner_client, project, guest):
    _expire(guest)
    listed = owner_client.get(f"/api/v1/projects/{project.id}/members").json()
    assert [m["email"] for m in listed] == [owner.email]
    detail = owner_client.get(f"/api/v1/projects/{project.id}").json()
    assert [m["email"] for m in detail["members"]] == [owner.email]
    assert_error(owner_client.get(f"/api/v1/projects/{project.id}/members/{guest.username}"), 404, "MEMBER_NOT_FOUND")

    added = owner_client.post(
        f"/api/v1/projects/{project.id}/members", {"email": guest.email, "role": "viewer"}, format="json"
    )
    assert added.status_code == 201, added.content
    member = ProjectMember.objects.get(user=guest)
    assert (member.role, member.expires_at) == (ProjectRole.VIEWER, None)


def test_an_owner_whose_access_expired_does_not_keep_the_project_owned(owner, project, guest):
    ProjectMember.objects.filter(user=guest).update(role=ProjectRole.OWNER)
    _expire(guest)
    from platform_site.errors import Conflict

    with pytest.raises(Conflict):
        services.project_member_remove(actor=owner, member=ProjectMember.objects.get(user=owner))


def test_it_shows_no_invitations_to_an_admin_whose_access_expired(owner_client, project, guest):
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=project.created_by, email=project.created_by.email, verified=True, primary=True)
    sent = owner_client.post(
        "/api/v1/invitations/send", {"project_id": project.id, "email": "new@partner.example"}, format="json"
    )
    assert sent.status_code in (200, 201), sent.content
    client = bearer_client(guest)
    assert len(client.get(f"/api/v1/invitations/project/{project.id}").json()["invitations"]) == 1
    _expire(guest)
    response = client.get(f"/api/v1/invitations/project/{project.id}")
    assert response.status_code == 404 or response.json()["invitations"] == []
