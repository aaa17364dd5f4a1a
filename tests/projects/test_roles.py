"""Project and organization roles: who may read, change, delete, and manage members.

Project roles: owner > admin > member > viewer. The actor in the parametrized tests is a plain
member of the organization with a ProjectMember row of the given role; the organization's owner
("owner") also owns the project.
"""

import pytest
from django.test import override_settings

from accounts.models import Membership, Organization, OrgRole
from audit.models import AuditEvent
from projects.models import Project, ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_org, make_project, make_user
from workspaces.models import Workspace, WorkspaceState

PROJECT_ROLES = [ProjectRole.OWNER, ProjectRole.ADMIN, ProjectRole.MEMBER, ProjectRole.VIEWER]
ORG_ROLES = [OrgRole.OWNER, OrgRole.ADMIN, OrgRole.MEMBER]


@pytest.fixture
def colleague(org):
    """Another plain member of the organization, not in the project."""
    user = make_user("colleague@lab-a.example")
    add_org_member(org, user)
    return user


@pytest.fixture
def newcomer(org):
    """A member of the organization who is not in the project yet."""
    user = make_user("newcomer@lab-a.example")
    add_org_member(org, user)
    return user


def project_actor(org, project, role: str):
    user = make_user(f"project-{role}@lab-a.example")
    add_org_member(org, user, OrgRole.MEMBER)
    ProjectMember.objects.create(project=project, user=user, role=role)
    client = bearer_client(user)
    client.user = user
    return client


def org_actor(org, role: str):
    user = make_user(f"org-{role}@lab-a.example")
    add_org_member(org, user, role)
    client = bearer_client(user)
    client.user = user
    return client


def roles_in(project) -> dict[str, str]:
    return dict(ProjectMember.objects.filter(project=project).values_list("user__username", "role"))


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("created_at")


def assert_audited(response, action: str, actor, organization) -> AuditEvent:
    event = last_event(action)
    assert event.actor == actor
    assert event.actor_label == actor.email
    assert event.organization == organization
    assert event.ip == "127.0.0.1"
    assert event.request_id == response["X-Request-ID"]
    return event


# --- Reading and changing the project --------------------------------------------------------


@pytest.mark.parametrize("role", PROJECT_ROLES)
def test_it_lets_every_project_role_read_the_project(org, project, role):
    client = project_actor(org, project, role)
    response = client.get(f"/api/v1/projects/{project.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == role
    assert {m["username"]: m["role"] for m in body["members"]} == {"owner": "owner", client.user.username: role}
    members = client.get(f"/api/v1/projects/{project.pk}/members")
    assert members.status_code == 200
    assert len(members.json()) == 2


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True), ("member", False), ("viewer", False)])
def test_it_lets_owners_and_admins_edit_the_project(org, project, role, allowed):
    client = project_actor(org, project, role)
    response = client.patch(
        f"/api/v1/projects/{project.pk}", {"name": "Genomics II", "description": "Sequencing"}, format="json"
    )
    project.refresh_from_db()
    if allowed:
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "Genomics II"
        assert (project.name, project.description) == ("Genomics II", "Sequencing")
        event = assert_audited(response, "project.update", client.user, org)
        assert event.metadata["name"] == ["Genomics", "Genomics II"]
    else:
        assert_error(response, 403, "PERMISSION_DENIED")
        assert (project.name, project.description) == ("Genomics", "")
        assert not AuditEvent.objects.filter(action="project.update").exists()


def test_it_refuses_to_rename_a_project_to_a_taken_name(owner_client, org, owner, project):
    make_project(org, "Proteomics", owner)
    response = owner_client.patch(f"/api/v1/projects/{project.pk}", {"name": "Proteomics"}, format="json")
    error = assert_error(response, 409, "NAME_TAKEN")
    assert "name" in error["fields"]


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", False), ("member", False), ("viewer", False)])
def test_it_lets_only_owners_delete_the_project(org, project, role, allowed):
    client = project_actor(org, project, role)
    response = client.delete(f"/api/v1/projects/{project.pk}")
    project.refresh_from_db()
    if allowed:
        assert response.status_code == 204
        assert project.deleted_at is not None  # archived, not removed
        assert_audited(response, "project.delete", client.user, org)
        assert_error(client.get(f"/api/v1/projects/{project.pk}"), 404, "PROJECT_NOT_FOUND")
    else:
        assert_error(response, 403, "PERMISSION_DENIED")
        assert project.deleted_at is None
        assert client.get(f"/api/v1/projects/{project.pk}").status_code == 200


@pytest.mark.parametrize("state", [WorkspaceState.RUNNING, WorkspaceState.STOPPED, WorkspaceState.HIBERNATED])
def test_it_refuses_to_delete_a_project_with_live_workspaces(owner_client, owner, org, project, state):
    Workspace.objects.create(organization=org, project=project, owner=owner, name="ws-1", state=state)
    error = assert_error(owner_client.delete(f"/api/v1/projects/{project.pk}"), 409, "PROJECT_HAS_LIVE_WORKSPACES")
    assert "1" in error["message"]
    project.refresh_from_db()
    assert project.deleted_at is None
    assert not AuditEvent.objects.filter(action="project.delete").exists()


def test_terminated_workspaces_do_not_block_deleting_a_project(owner_client, owner, org, project):
    Workspace.objects.create(
        organization=org, project=project, owner=owner, name="old", state=WorkspaceState.TERMINATED
    )
    live = Workspace.objects.create(
        organization=org, project=project, owner=owner, name="ws", state=WorkspaceState.RUNNING
    )
    assert_error(owner_client.delete(f"/api/v1/projects/{project.pk}"), 409, "PROJECT_HAS_LIVE_WORKSPACES")
    Workspace.objects.filter(pk=live.pk).update(state=WorkspaceState.TERMINATED)
    assert owner_client.delete(f"/api/v1/projects/{project.pk}").status_code == 204
    assert Workspace.objects.filter(project=project).count() == 2  # the cost history stays


# --- Project members -------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True), ("member", False), ("viewer", False)])
def test_it_lets_owners_and_admins_add_project_members(org, project, newcomer, role, allowed):
    client = project_actor(org, project, role)
    response = client.post(
        f"/api/v1/projects/{project.pk}/members", {"email": "Newcomer@Lab-A.example", "role": "member"}, format="json"
    )
    if allowed:
        assert response.status_code == 201, response.content
        assert response.json()["username"] == newcomer.username
        assert response.json()["role"] == "member"
        assert roles_in(project)[newcomer.username] == "member"
        event = assert_audited(response, "project_member.create", client.user, org)
        assert event.metadata == {"user": newcomer.email, "role": "member"}
    else:
        assert_error(response, 403, "PERMISSION_DENIED")
        assert newcomer.username not in roles_in(project)


@pytest.mark.parametrize(
    ("role", "grant", "expected"),
    [
        ("owner", "owner", 201),
        ("owner", "admin", 201),
        ("admin", "owner", 403),
        ("admin", "admin", 201),
        ("admin", "viewer", 201),
    ],
)
def test_nobody_grants_a_project_role_above_their_own(org, project, newcomer, role, grant, expected):
    client = project_actor(org, project, role)
    response = client.post(
        f"/api/v1/projects/{project.pk}/members", {"email": newcomer.email, "role": grant}, format="json"
    )
    if expected == 201:
        assert response.status_code == 201
        assert roles_in(project)[newcomer.username] == grant
    else:
        assert_error(response, 403, "ROLE_TOO_HIGH")
        assert newcomer.username not in roles_in(project)


def test_it_refuses_to_add_a_project_member_twice_or_from_outside_the_org(owner_client, project, colleague, outsider):
    url = f"/api/v1/projects/{project.pk}/members"
    assert owner_client.post(url, {"email": colleague.email}, format="json").status_code == 201
    assert_error(owner_client.post(url, {"email": colleague.email}, format="json"), 409, "ALREADY_MEMBER")
    error = assert_error(owner_client.post(url, {"email": outsider.email}, format="json"), 400, "VALIDATION_ERROR")
    assert "email" in error["fields"]
    error = assert_error(owner_client.post(url, {"email": "nobody@nowhere.example"}, format="json"), 400)
    assert "email" in error["fields"]
    assert set(roles_in(project)) == {"owner", colleague.username}


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True), ("member", False), ("viewer", False)])
def test_it_lets_owners_and_admins_change_a_members_role(org, project, colleague, role, allowed):
    ProjectMember.objects.create(project=project, user=colleague, role=ProjectRole.MEMBER)
    client = project_actor(org, project, role)
    response = client.patch(
        f"/api/v1/projects/{project.pk}/members/{colleague.username}", {"role": "viewer"}, format="json"
    )
    if allowed:
        assert response.status_code == 200
        assert response.json()["role"] == "viewer"
        assert roles_in(project)[colleague.username] == "viewer"
        event = assert_audited(response, "project_member.update", client.user, org)
        assert event.metadata["role"] == ["member", "viewer"]
    else:
        assert_error(response, 403, "PERMISSION_DENIED")
        assert roles_in(project)[colleague.username] == "member"


def test_an_admin_cannot_promote_to_owner_nor_touch_an_owner(org, project, colleague):
    ProjectMember.objects.create(project=project, user=colleague, role=ProjectRole.MEMBER)
    admin = project_actor(org, project, ProjectRole.ADMIN)
    base = f"/api/v1/projects/{project.pk}/members"
    assert_error(admin.patch(f"{base}/{colleague.username}", {"role": "owner"}, format="json"), 403, "ROLE_TOO_HIGH")
    assert_error(admin.patch(f"{base}/owner", {"role": "viewer"}, format="json"), 403, "ROLE_TOO_HIGH")
    assert_error(admin.delete(f"{base}/owner"), 403, "ROLE_TOO_HIGH")
    assert admin.patch(f"{base}/{colleague.username}", {"role": "admin"}, format="json").status_code == 200
    assert roles_in(project) == {"owner": "owner", admin.user.username: "admin", colleague.username: "admin"}


def test_a_project_member_cannot_promote_themselves(org, project):
    client = project_actor(org, project, ProjectRole.MEMBER)
    url = f"/api/v1/projects/{project.pk}/members/{client.user.username}"
    assert_error(client.patch(url, {"role": "admin"}, format="json"), 403, "PERMISSION_DENIED")
    assert roles_in(project)[client.user.username] == "member"


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True), ("member", False), ("viewer", False)])
def test_it_lets_owners_and_admins_remove_a_member(org, project, colleague, role, allowed):
    ProjectMember.objects.create(project=project, user=colleague, role=ProjectRole.MEMBER)
    client = project_actor(org, project, role)
    response = client.delete(f"/api/v1/projects/{project.pk}/members/{colleague.username}")
    if allowed:
        assert response.status_code == 204
        assert colleague.username not in roles_in(project)
        event = assert_audited(response, "project_member.delete", client.user, org)
        assert event.metadata == {"user": colleague.email, "role": "member"}
        # Removed from the project, still in the organization.
        assert Membership.objects.filter(organization=org, user=colleague).exists()
    else:
        assert_error(response, 403, "PERMISSION_DENIED")
        assert colleague.username in roles_in(project)


@pytest.mark.parametrize("role", PROJECT_ROLES)
def test_anyone_can_leave_a_project(org, project, role):
    client = project_actor(org, project, role)
    response = client.delete(f"/api/v1/projects/{project.pk}/members/{client.user.username}")
    assert response.status_code == 204
    assert client.user.username not in roles_in(project)
    assert_audited(response, "project_member.delete", client.user, org)
    # A plain org member who left no longer sees the project.
    assert_error(client.get(f"/api/v1/projects/{project.pk}"), 404, "PROJECT_NOT_FOUND")


def test_the_last_project_owner_can_be_neither_demoted_nor_removed(owner_client, org, project, colleague):
    base = f"/api/v1/projects/{project.pk}/members"
    assert_error(owner_client.patch(f"{base}/owner", {"role": "admin"}, format="json"), 409, "LAST_OWNER")
    assert_error(owner_client.delete(f"{base}/owner"), 409, "LAST_OWNER")
    assert roles_in(project) == {"owner": "owner"}

    # With a second owner, the first may step down.
    assert owner_client.post(base, {"email": colleague.email, "role": "owner"}, format="json").status_code == 201
    assert owner_client.patch(f"{base}/owner", {"role": "admin"}, format="json").status_code == 200
    second = bearer_client(colleague)
    assert_error(second.delete(f"{base}/{colleague.username}"), 409, "LAST_OWNER")
    assert roles_in(project) == {"owner": "admin", colleague.username: "owner"}


def test_unknown_project_member_is_member_not_found(owner_client, project, newcomer):
    assert_error(
        owner_client.get(f"/api/v1/projects/{project.pk}/members/{newcomer.username}"), 404, "MEMBER_NOT_FOUND"
    )
    assert_error(
        owner_client.patch(f"/api/v1/projects/{project.pk}/members/ghost", {"role": "viewer"}, format="json"),
        404,
        "MEMBER_NOT_FOUND",
    )


# --- Creating projects -----------------------------------------------------------------------


def test_it_creates_a_project_in_the_callers_only_organization(owner_client, owner, org, colleague):
    response = owner_client.post(
        "/api/v1/projects",
        {"name": "Proteomics", "description": "Mass spec", "members": [{"email": colleague.email, "role": "viewer"}]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["organization"] == org.pk
    assert body["role"] == "owner"
    assert {m["username"]: m["role"] for m in body["members"]} == {"owner": "owner", colleague.username: "viewer"}
    project = Project.objects.get(pk=body["id"])
    assert (project.name, project.description, project.created_by) == ("Proteomics", "Mass spec", owner)
    event = assert_audited(response, "project.create", owner, org)
    assert event.target_id == project.pk
    assert bearer_client(colleague).get(f"/api/v1/projects/{project.pk}").json()["role"] == "viewer"


def test_the_audit_trail_records_the_peer_address_not_a_spoofed_one(owner_client, org):
    spoofed = owner_client.post(
        "/api/v1/projects", {"name": "Spoofed"}, format="json", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert spoofed.status_code == 201
    assert assert_audited(spoofed, "project.create", org.memberships.get().user, org).ip == "127.0.0.1"
    with override_settings(CARREL_TRUSTED_PROXY_COUNT=1):
        proxied = owner_client.post(
            "/api/v1/projects", {"name": "Proxied"}, format="json", HTTP_X_FORWARDED_FOR="203.0.113.9"
        )
    assert proxied.status_code == 201
    assert last_event("project.create").ip == "203.0.113.9"


def test_any_org_member_may_create_a_project_and_owns_it(org, colleague):
    client = bearer_client(colleague)
    response = client.post("/api/v1/projects", {"name": "Side quest", "organization": org.pk}, format="json")
    assert response.status_code == 201
    assert roles_in(Project.objects.get(pk=response.json()["id"])) == {colleague.username: "owner"}


def test_it_needs_the_organization_when_the_caller_has_two(owner_client, owner, org):
    second = make_org("Lab C", owner)
    error = assert_error(
        owner_client.post("/api/v1/projects", {"name": "Where"}, format="json"), 400, "VALIDATION_ERROR"
    )
    assert "organization" in error["fields"]
    assert not Project.objects.filter(name="Where").exists()

    response = owner_client.post("/api/v1/projects", {"name": "Where", "organization": second.pk}, format="json")
    assert response.status_code == 201
    assert response.json()["organization"] == second.pk


def test_project_members_must_belong_to_the_organization(owner_client, org, colleague, outsider):
    response = owner_client.post(
        "/api/v1/projects",
        {"name": "Mixed", "members": [{"email": colleague.email}, {"email": outsider.email, "role": "admin"}]},
        format="json",
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["fields"]) == {"members.1.email"}
    assert not Project.objects.filter(name="Mixed").exists()

    error = assert_error(
        owner_client.post("/api/v1/projects", {"name": "Typo", "members": [{"email": "not-an-email"}]}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert "members.0.email" in error["fields"]
    error = assert_error(
        owner_client.post(
            "/api/v1/projects", {"name": "Typo", "members": [{"email": colleague.email, "role": "god"}]}, format="json"
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert "members.0.role" in error["fields"]


def test_project_names_are_unique_in_an_organization(owner_client, owner, org, project, outsider_client):
    error = assert_error(owner_client.post("/api/v1/projects", {"name": "Genomics"}, format="json"), 409, "NAME_TAKEN")
    assert "name" in error["fields"]
    assert Project.objects.filter(organization=org, name="Genomics").count() == 1
    # Another organization may use the name, and so may this one once the project is deleted.
    assert outsider_client.post("/api/v1/projects", {"name": "Genomics"}, format="json").status_code == 201
    assert owner_client.delete(f"/api/v1/projects/{project.pk}").status_code == 204
    assert owner_client.post("/api/v1/projects", {"name": "Genomics"}, format="json").status_code == 201


# --- Organization roles ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ORG_ROLES)
def test_every_org_role_reads_the_organization_and_its_members(org, role):
    client = org_actor(org, role)
    response = client.get(f"/api/v1/organizations/{org.pk}")
    assert response.status_code == 200
    assert response.json()["role"] == role
    assert response.json()["member_count"] == 2
    members = client.get(f"/api/v1/organizations/{org.pk}/members").json()
    assert {m["email"]: m["role"] for m in members} == {"owner@lab-a.example": "owner", client.user.email: role}


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True), ("member", False)])
def test_it_lets_org_owners_and_admins_rename_the_organization(org, role, allowed):
    client = org_actor(org, role)
    response = client.patch(f"/api/v1/organizations/{org.pk}", {"name": "Lab Alpha"}, format="json")
    org.refresh_from_db()
    if allowed:
        assert response.status_code == 200
        assert response.json()["name"] == "Lab Alpha"
        assert org.name == "Lab Alpha"
        event = assert_audited(response, "organization.update", client.user, org)
        assert event.metadata == {"name": ["Lab A", "Lab Alpha"]}
    else:
        assert_error(response, 403, "PERMISSION_DENIED")
        assert org.name == "Lab A"


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True), ("member", False)])
def test_it_lets_org_owners_and_admins_add_members(org, role, allowed):
    stranger = make_user("stranger@elsewhere.example")
    client = org_actor(org, role)
    response = client.post(f"/api/v1/organizations/{org.pk}/members", {"email": stranger.email}, format="json")
    if allowed:
        assert response.status_code == 201
        assert response.json()["role"] == "member"
        assert Membership.objects.get(organization=org, user=stranger).role == "member"
        assert_audited(response, "membership.create", client.user, org)
    else:
        assert_error(response, 403, "PERMISSION_DENIED")
        assert not Membership.objects.filter(user=stranger).exists()


@pytest.mark.parametrize(
    ("role", "grant", "expected"),
    [("owner", "owner", 201), ("admin", "owner", 403), ("admin", "admin", 201)],
)
def test_nobody_grants_an_org_role_above_their_own(org, role, grant, expected):
    stranger = make_user("stranger@elsewhere.example")
    client = org_actor(org, role)
    response = client.post(
        f"/api/v1/organizations/{org.pk}/members", {"email": stranger.email, "role": grant}, format="json"
    )
    if expected == 201:
        assert response.status_code == 201
        assert Membership.objects.get(organization=org, user=stranger).role == grant
    else:
        assert_error(response, 403, "ROLE_TOO_HIGH")
        assert not Membership.objects.filter(user=stranger).exists()


def test_it_refuses_unknown_and_duplicate_org_members(owner_client, org, colleague):
    url = f"/api/v1/organizations/{org.pk}/members"
    error = assert_error(owner_client.post(url, {"email": "nobody@nowhere.example"}, format="json"), 400)
    assert "email" in error["fields"]
    assert_error(owner_client.post(url, {"email": colleague.email}, format="json"), 409, "ALREADY_MEMBER")


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True), ("member", False)])
def test_it_lets_org_owners_and_admins_change_and_remove_members(org, project, colleague, role, allowed):
    ProjectMember.objects.create(project=project, user=colleague, role=ProjectRole.MEMBER)
    client = org_actor(org, role)
    url = f"/api/v1/organizations/{org.pk}/members/{colleague.username}"
    changed = client.patch(url, {"role": "admin"}, format="json")
    removed = client.delete(url)
    if allowed:
        assert changed.status_code == 200
        assert changed.json()["role"] == "admin"
        assert_audited(changed, "membership.update", client.user, org)
        assert removed.status_code == 204
        assert not Membership.objects.filter(organization=org, user=colleague).exists()
        # Leaving the organization ends the person's project memberships in it.
        assert colleague.username not in roles_in(project)
        assert_audited(removed, "membership.delete", client.user, org)
    else:
        assert_error(changed, 403, "PERMISSION_DENIED")
        assert_error(removed, 403, "PERMISSION_DENIED")
        assert Membership.objects.get(organization=org, user=colleague).role == "member"
        assert colleague.username in roles_in(project)


def test_an_org_admin_cannot_touch_an_owner(org):
    admin = org_actor(org, OrgRole.ADMIN)
    url = f"/api/v1/organizations/{org.pk}/members/owner"
    assert_error(admin.patch(url, {"role": "member"}, format="json"), 403, "ROLE_TOO_HIGH")
    assert_error(admin.delete(url), 403, "ROLE_TOO_HIGH")
    assert_error(
        admin.patch(f"/api/v1/organizations/{org.pk}/members/{admin.user.username}", {"role": "owner"}, format="json"),
        403,
        "ROLE_TOO_HIGH",
    )
    assert Membership.objects.get(organization=org, user__username="owner").role == "owner"


@pytest.mark.parametrize("role", ORG_ROLES)
def test_anyone_can_leave_an_organization(org, project, role):
    client = org_actor(org, role)
    ProjectMember.objects.create(project=project, user=client.user, role=ProjectRole.VIEWER)
    response = client.delete(f"/api/v1/organizations/{org.pk}/members/{client.user.username}")
    assert response.status_code == 204
    assert not Membership.objects.filter(organization=org, user=client.user).exists()
    assert not ProjectMember.objects.filter(user=client.user).exists()
    assert_error(client.get(f"/api/v1/organizations/{org.pk}"), 404, "ORGANIZATION_NOT_FOUND")
    assert_error(client.get(f"/api/v1/projects/{project.pk}"), 404, "PROJECT_NOT_FOUND")


def test_the_last_org_owner_can_be_neither_demoted_nor_removed(owner_client, org, colleague):
    url = f"/api/v1/organizations/{org.pk}/members/owner"
    assert_error(owner_client.patch(url, {"role": "admin"}, format="json"), 409, "LAST_OWNER")
    assert_error(owner_client.delete(url), 409, "LAST_OWNER")
    assert Membership.objects.get(organization=org, user__username="owner").role == "owner"

    owner_client.patch(f"/api/v1/organizations/{org.pk}/members/{colleague.username}", {"role": "owner"}, format="json")
    assert owner_client.patch(url, {"role": "admin"}, format="json").status_code == 200
    second = bearer_client(colleague)
    assert_error(second.delete(f"/api/v1/organizations/{org.pk}/members/{colleague.username}"), 409, "LAST_OWNER")
    assert dict(Membership.objects.filter(organization=org).values_list("user__username", "role")) == {
        "owner": "admin",
        colleague.username: "owner",
    }


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", False), ("member", False)])
def test_it_lets_only_org_owners_delete_an_empty_organization(org, role, allowed):
    client = org_actor(org, role)
    response = client.delete(f"/api/v1/organizations/{org.pk}")
    if allowed:
        assert response.status_code == 204
        assert not Organization.objects.filter(pk=org.pk).exists()
        event = last_event("organization.delete")
        assert event.actor == client.user and event.ip == "127.0.0.1"
        assert event.metadata == {"organization_id": org.pk, "name": "Lab A"}
        # The event survives its organization and stays readable by its actor.
        assert client.get(f"/api/v1/audit/{event.pk}").status_code == 200
    else:
        assert_error(response, 403, "PERMISSION_DENIED")
        assert Organization.objects.filter(pk=org.pk).exists()


def test_an_organization_with_projects_cannot_be_deleted(owner_client, org, project):
    assert_error(owner_client.delete(f"/api/v1/organizations/{org.pk}"), 409, "ORGANIZATION_NOT_EMPTY")
    # Deleted projects keep their cost history, so they still count.
    assert owner_client.delete(f"/api/v1/projects/{project.pk}").status_code == 204
    assert_error(owner_client.delete(f"/api/v1/organizations/{org.pk}"), 409, "ORGANIZATION_NOT_EMPTY")
    assert Organization.objects.filter(pk=org.pk).exists()


def test_an_org_owner_owns_every_project_of_the_org(owner, org, colleague):
    theirs = make_project(org, "Colleague's", colleague)
    client = bearer_client(owner)
    assert client.get(f"/api/v1/projects/{theirs.pk}").json()["role"] == "owner"
    assert client.patch(f"/api/v1/projects/{theirs.pk}", {"name": "Renamed"}, format="json").status_code == 200
    assert client.delete(f"/api/v1/projects/{theirs.pk}").status_code == 204


def test_an_org_admin_administers_every_project_but_cannot_delete_it(org, colleague, newcomer):
    theirs = make_project(org, "Colleague's", colleague)
    admin = org_actor(org, OrgRole.ADMIN)
    assert admin.get(f"/api/v1/projects/{theirs.pk}").json()["role"] == "admin"
    assert admin.patch(f"/api/v1/projects/{theirs.pk}", {"name": "Renamed"}, format="json").status_code == 200
    added = admin.post(f"/api/v1/projects/{theirs.pk}/members", {"email": newcomer.email}, format="json")
    assert added.status_code == 201
    assert_error(admin.delete(f"/api/v1/projects/{theirs.pk}"), 403, "PERMISSION_DENIED")
