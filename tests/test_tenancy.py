"""Organization is the tenant: another tenant's objects answer 404 with a specific code, never 403,
and never show up in a list. Inside a tenant, projects are visible to their members and to the
organization's owners and admins only."""

from types import SimpleNamespace

import pytest

from accounts.models import ApiToken, Membership, Organization, OrgRole
from audit.models import AuditEvent
from projects.models import Project, ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_project, make_user


@pytest.fixture
def member(org):
    """A plain member of Lab A who is in no project."""
    user = make_user("member@lab-a.example")
    add_org_member(org, user, OrgRole.MEMBER)
    return user


@pytest.fixture
def member_client(member):
    return bearer_client(member)


@pytest.fixture
def lab_b(outsider, outsider_client):
    """Everything Lab B owns: its organization, project, person, token and audit events."""
    organization = Organization.objects.get(memberships__user=outsider)
    created = outsider_client.post("/api/v1/projects", {"name": "Oceans"}, format="json")
    assert created.status_code == 201
    return SimpleNamespace(
        org=organization,
        project=Project.objects.get(organization=organization, name="Climate"),
        user=outsider,
        token=outsider_client.token.token,
        client=outsider_client,
        org_event=AuditEvent.objects.get(action="project.create", organization=organization),
        personal_event=AuditEvent.objects.get(action="token.create", actor=outsider),
    )


def _state_of(lab) -> dict:
    """What a cross-tenant request must not change."""
    project = Project.objects.get(pk=lab.project.pk)
    organization = Organization.objects.get(pk=lab.org.pk)
    token = ApiToken.objects.filter(pk=lab.token.pk).first()
    return {
        "project": (project.name, project.description, project.deleted_at),
        "project_members": sorted(ProjectMember.objects.filter(project=project).values_list("user__email", "role")),
        "organization": organization.name,
        "org_members": sorted(Membership.objects.filter(organization=organization).values_list("user__email", "role")),
        "token": token and (token.revoked_at, token.name),
    }


# (method, path with Lab B's objects as `b` and Lab A's as `a_org`/`a_project`, body, expected code)
CROSS_TENANT_REQUESTS = [
    ("get", "/api/v1/projects/{b.project.pk}", None, "PROJECT_NOT_FOUND"),
    ("patch", "/api/v1/projects/{b.project.pk}", {"name": "Hijacked"}, "PROJECT_NOT_FOUND"),
    ("delete", "/api/v1/projects/{b.project.pk}", None, "PROJECT_NOT_FOUND"),
    ("get", "/api/v1/projects/{b.project.pk}/members", None, "PROJECT_NOT_FOUND"),
    (
        "post",
        "/api/v1/projects/{b.project.pk}/members",
        {"email": "owner@lab-a.example", "role": "owner"},
        "PROJECT_NOT_FOUND",
    ),
    ("get", "/api/v1/projects/{b.project.pk}/members/{b.user.username}", None, "PROJECT_NOT_FOUND"),
    (
        "patch",
        "/api/v1/projects/{b.project.pk}/members/{b.user.username}",
        {"role": "viewer"},
        "PROJECT_NOT_FOUND",
    ),
    ("delete", "/api/v1/projects/{b.project.pk}/members/{b.user.username}", None, "PROJECT_NOT_FOUND"),
    ("get", "/api/v1/organizations/{b.org.pk}", None, "ORGANIZATION_NOT_FOUND"),
    ("patch", "/api/v1/organizations/{b.org.pk}", {"name": "Hijacked"}, "ORGANIZATION_NOT_FOUND"),
    ("delete", "/api/v1/organizations/{b.org.pk}", None, "ORGANIZATION_NOT_FOUND"),
    ("get", "/api/v1/organizations/{b.org.pk}/members", None, "ORGANIZATION_NOT_FOUND"),
    (
        "post",
        "/api/v1/organizations/{b.org.pk}/members",
        {"email": "owner@lab-a.example", "role": "owner"},
        "ORGANIZATION_NOT_FOUND",
    ),
    ("get", "/api/v1/organizations/{b.org.pk}/members/{b.user.username}", None, "ORGANIZATION_NOT_FOUND"),
    (
        "patch",
        "/api/v1/organizations/{b.org.pk}/members/{b.user.username}",
        {"role": "member"},
        "ORGANIZATION_NOT_FOUND",
    ),
    (
        "delete",
        "/api/v1/organizations/{b.org.pk}/members/{b.user.username}",
        None,
        "ORGANIZATION_NOT_FOUND",
    ),
    ("get", "/api/v1/tokens/{b.token.pk}", None, "TOKEN_NOT_FOUND"),
    ("delete", "/api/v1/tokens/{b.token.pk}", None, "TOKEN_NOT_FOUND"),
    ("post", "/api/v1/tokens/revoke/{b.token.token_hash}", None, "TOKEN_NOT_FOUND"),
    ("get", "/api/v1/users/{b.user.username}/profile", None, "USER_NOT_FOUND"),
    ("get", "/api/v1/audit/{b.org_event.pk}", None, "AUDIT_EVENT_NOT_FOUND"),
    ("get", "/api/v1/audit/{b.personal_event.pk}", None, "AUDIT_EVENT_NOT_FOUND"),
    # Lab B's people are not members of Lab A's objects either.
    ("get", "/api/v1/organizations/{a_org.pk}/members/{b.user.username}", None, "MEMBER_NOT_FOUND"),
    (
        "patch",
        "/api/v1/organizations/{a_org.pk}/members/{b.user.username}",
        {"role": "member"},
        "MEMBER_NOT_FOUND",
    ),
    (
        "delete",
        "/api/v1/organizations/{a_org.pk}/members/{b.user.username}",
        None,
        "MEMBER_NOT_FOUND",
    ),
    ("get", "/api/v1/projects/{a_project.pk}/members/{b.user.username}", None, "MEMBER_NOT_FOUND"),
    (
        "patch",
        "/api/v1/projects/{a_project.pk}/members/{b.user.username}",
        {"role": "viewer"},
        "MEMBER_NOT_FOUND",
    ),
    ("delete", "/api/v1/projects/{a_project.pk}/members/{b.user.username}", None, "MEMBER_NOT_FOUND"),
]


@pytest.mark.parametrize("org_role", [OrgRole.OWNER, OrgRole.MEMBER])
@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    CROSS_TENANT_REQUESTS,
    ids=[f"{m.upper()} {p}" for m, p, _, _ in CROSS_TENANT_REQUESTS],
)
def test_it_answers_404_for_every_object_of_another_organization(
    org, project, owner, lab_b, org_role, method, path, body, code
):
    if org_role == OrgRole.OWNER:
        actor = owner
    else:
        actor = make_user("member@lab-a.example")
        add_org_member(org, actor, org_role)
        ProjectMember.objects.create(project=project, user=actor, role=ProjectRole.OWNER)
    client = bearer_client(actor)
    before = _state_of(lab_b)

    response = getattr(client, method)(path.format(b=lab_b, a_org=org, a_project=project), body, format="json")

    assert_error(response, 404, code)
    assert _state_of(lab_b) == before
    # Lab B is still fully usable by its own people.
    assert lab_b.client.get(f"/api/v1/projects/{lab_b.project.pk}").status_code == 200


def test_it_never_reveals_whether_a_foreign_id_exists(owner_client, lab_b):
    """A real foreign id and a made-up one answer the same."""
    foreign = assert_error(owner_client.get(f"/api/v1/projects/{lab_b.project.pk}"), 404, "PROJECT_NOT_FOUND")
    missing = assert_error(owner_client.get("/api/v1/projects/proj_0000000000000000"), 404, "PROJECT_NOT_FOUND")
    assert foreign["message"] == missing["message"]
    assert lab_b.project.name not in str(foreign) and lab_b.org.name not in str(foreign)


def test_it_refuses_to_create_a_project_in_another_organization(owner_client, org, lab_b):
    response = owner_client.post("/api/v1/projects", {"name": "Trojan", "organization": lab_b.org.pk}, format="json")
    assert_error(response, 404, "ORGANIZATION_NOT_FOUND")
    assert not Project.objects.filter(name="Trojan").exists()


def test_it_refuses_to_add_a_person_of_another_organization_to_a_project(owner_client, project, lab_b):
    response = owner_client.post(
        f"/api/v1/projects/{project.pk}/members", {"email": lab_b.user.email, "role": "viewer"}, format="json"
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "email" in error["fields"]
    assert not ProjectMember.objects.filter(project=project, user=lab_b.user).exists()


# --- Lists ---------------------------------------------------------------------------------------


def test_project_list_never_includes_another_organizations_projects(owner_client, project, lab_b):
    response = owner_client.get("/api/v1/projects")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == [project.pk]
    assert response["X-Total-Count"] == "1"
    # Filtering on the other organization does not open a door either.
    assert owner_client.get("/api/v1/projects", {"organization": lab_b.org.pk}).json() == []
    assert {row["name"] for row in lab_b.client.get("/api/v1/projects").json()} == {"Climate", "Oceans"}


def test_organization_list_never_includes_another_organization(owner_client, org, lab_b):
    rows = owner_client.get("/api/v1/organizations").json()
    assert [row["id"] for row in rows] == [org.pk]
    assert rows[0]["role"] == "owner"
    assert [row["id"] for row in lab_b.client.get("/api/v1/organizations").json()] == [lab_b.org.pk]


def test_user_list_never_includes_people_of_another_organization(owner_client, owner, member, lab_b):
    usernames = [row["username"] for row in owner_client.get("/api/v1/users").json()]
    assert sorted(usernames) == sorted([owner.username, member.username])
    assert [row["username"] for row in lab_b.client.get("/api/v1/users").json()] == [lab_b.user.username]


def test_token_list_never_includes_another_persons_tokens(owner_client, owner, lab_b):
    mine = owner_client.token.token
    rows = owner_client.get("/api/v1/tokens").json()
    assert [row["id"] for row in rows] == [mine.pk]
    assert lab_b.token.pk not in [row["id"] for row in rows]


def test_audit_list_never_includes_another_organizations_events(owner_client, org, lab_b):
    owner_client.patch(f"/api/v1/organizations/{org.pk}", {"name": "Lab A2"}, format="json")
    rows = owner_client.get("/api/v1/audit").json()
    ids = {row["id"] for row in rows}
    assert ids, "the caller's own events are listed"
    assert lab_b.org_event.pk not in ids and lab_b.personal_event.pk not in ids
    assert {row["organization"] for row in rows} <= {org.pk, None}
    assert "someone@lab-b.example" not in {row["actor"] for row in rows}
    assert owner_client.get("/api/v1/audit", {"organization": lab_b.org.pk}).json() == []


def test_a_person_in_two_organizations_shows_only_the_shared_one(owner_client, org, lab_b):
    both = make_user("dual@lab-b.example")
    add_org_member(org, both)
    add_org_member(lab_b.org, both, OrgRole.ADMIN)

    profile = owner_client.get(f"/api/v1/users/{both.username}/profile")
    assert profile.status_code == 200
    assert [entry["id"] for entry in profile.json()["organizations"]] == [org.pk]
    listed = {row["username"]: row for row in owner_client.get("/api/v1/users").json()}
    assert [entry["id"] for entry in listed[both.username]["organizations"]] == [org.pk]
    # The dual member does not bridge the tenants: Lab B's owner is still invisible to Lab A.
    assert_error(owner_client.get(f"/api/v1/users/{lab_b.user.username}/profile"), 404, "USER_NOT_FOUND")


# --- Inside one organization ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"name": "Renamed"}),
        ("delete", "", None),
        ("get", "/members", None),
        ("post", "/members", {"email": "member@lab-a.example", "role": "owner"}),
        ("get", "/members/owner", None),
        ("patch", "/members/owner", {"role": "viewer"}),
        ("delete", "/members/owner", None),
    ],
)
def test_an_org_member_outside_a_project_gets_404_for_it(member_client, project, method, suffix, body):
    response = getattr(member_client, method)(f"/api/v1/projects/{project.pk}{suffix}", body, format="json")
    assert_error(response, 404, "PROJECT_NOT_FOUND")
    project.refresh_from_db()
    assert project.name == "Genomics" and project.deleted_at is None
    assert list(ProjectMember.objects.filter(project=project).values_list("user__username", "role")) == [
        ("owner", "owner")
    ]


def test_an_org_member_sees_only_the_projects_they_belong_to(owner, org, project, member, member_client):
    assert member_client.get("/api/v1/projects").json() == []
    theirs = make_project(org, "Proteomics", member)

    rows = member_client.get("/api/v1/projects").json()
    assert [(row["id"], row["role"]) for row in rows] == [(theirs.pk, "owner")]

    ProjectMember.objects.create(project=project, user=member, role=ProjectRole.VIEWER)
    response = member_client.get(f"/api/v1/projects/{project.pk}")
    assert response.status_code == 200
    assert response.json()["role"] == "viewer"


def test_an_org_member_cannot_read_the_organizations_audit_trail(owner_client, member_client, org):
    owner_client.patch(f"/api/v1/organizations/{org.pk}", {"name": "Lab A renamed"}, format="json")
    event = AuditEvent.objects.get(action="organization.update")
    assert owner_client.get(f"/api/v1/audit/{event.pk}").status_code == 200
    assert_error(member_client.get(f"/api/v1/audit/{event.pk}"), 404, "AUDIT_EVENT_NOT_FOUND")
    assert event.pk not in {row["id"] for row in member_client.get("/api/v1/audit").json()}


@pytest.mark.parametrize(("org_role", "effective"), [(OrgRole.OWNER, "owner"), (OrgRole.ADMIN, "admin")])
def test_org_owners_and_admins_see_every_project_of_their_org(org, project, member, lab_b, org_role, effective):
    boss = make_user("boss@lab-a.example")
    add_org_member(org, boss, org_role)
    private = make_project(org, "Private", member)
    client = bearer_client(boss)

    rows = client.get("/api/v1/projects").json()
    assert {row["id"]: row["role"] for row in rows} == {project.pk: effective, private.pk: effective}
    detail = client.get(f"/api/v1/projects/{private.pk}")
    assert detail.status_code == 200
    assert [m["username"] for m in detail.json()["members"]] == [member.username]
    assert client.get(f"/api/v1/projects/{private.pk}/members").status_code == 200
    # ... but no project of another organization.
    assert_error(client.get(f"/api/v1/projects/{lab_b.project.pk}"), 404, "PROJECT_NOT_FOUND")


def test_a_deleted_project_is_gone_for_everyone(owner_client, project, member):
    ProjectMember.objects.create(project=project, user=member, role=ProjectRole.MEMBER)
    assert owner_client.delete(f"/api/v1/projects/{project.pk}").status_code == 204
    for client in (owner_client, bearer_client(member)):
        assert_error(client.get(f"/api/v1/projects/{project.pk}"), 404, "PROJECT_NOT_FOUND")
        assert client.get("/api/v1/projects").json() == []
    assert Project.objects.filter(pk=project.pk, deleted_at__isnull=False).exists()
