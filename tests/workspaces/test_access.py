"""Who may see and act on workspaces: outsiders get 404, viewers read, members act on their own,
admins and owners on every workspace of the project."""

import pytest

from accounts.models import OrgRole
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_user
from workspaces import services
from workspaces.models import Workspace


@pytest.fixture
def team(org, project):
    people = {}
    for role in ("admin", "member", "viewer"):
        user = make_user(f"{role}@lab-a.example")
        add_org_member(org, user, OrgRole.MEMBER)
        ProjectMember.objects.create(project=project, user=user, role=role)
        people[role] = user
    return people


def launch_as(user, project, name):
    client = bearer_client(user)
    response = client.post(
        "/api/v1/instances/launch",
        {"name": name, "template": "Ubuntu 24.04 Base", "project": project.id},
        format="json",
    )
    return client, response


@pytest.fixture
def owners_box(owner_client, project, account, settings):
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    response = owner_client.post(
        "/api/v1/instances/launch",
        {"name": "owners-box", "template": "Ubuntu 24.04 Base", "project": project.id},
        format="json",
    )
    services.workspace_provision(job_id=response.json()["job_id"])
    return Workspace.objects.get(name="owners-box")


OUTSIDER_REQUESTS = [
    ("get", "/api/v1/instances/{name}", None),
    ("patch", "/api/v1/instances/{name}", {"name": "mine"}),
    ("post", "/api/v1/instances/{name}/stop", {}),
    ("post", "/api/v1/instances/{name}/start", {}),
    ("post", "/api/v1/instances/{name}/hibernate", {}),
    ("post", "/api/v1/instances/{name}/resume", {}),
    ("post", "/api/v1/instances/{name}/terminate", {"confirm": "DELETE"}),
    ("get", "/api/v1/instances/{name}/hibernation-status", None),
    ("get", "/api/v1/instances/{name}/connect", None),
    ("post", "/api/v1/instances/{name}/extend", {}),
    ("get", "/api/v1/instances/{name}/usage", None),
    ("get", "/api/v1/instances/{name}/sysinfo", None),
    ("get", "/api/v1/instances/{name}/firewall", None),
    ("post", "/api/v1/instances/{name}/firewall", {"rules": [{"cidr": "0.0.0.0/0", "port": 443}]}),
    ("delete", "/api/v1/instances/{name}/firewall", None),
    ("get", "/api/v1/logs/{name}", None),
    ("get", "/api/v1/logs/{name}/types", None),
]


@pytest.mark.parametrize("method,path,body", OUTSIDER_REQUESTS)
@pytest.mark.parametrize("reference", ["name", "pk", "provider_instance_id"])
def test_another_organizations_workspace_answers_404(owners_box, outsider_client, method, path, body, reference):
    target = getattr(owners_box, reference)
    response = getattr(outsider_client, method)(path.format(name=target), body, format="json")
    assert_error(response, 404, "INSTANCE_NOT_FOUND")
    owners_box.refresh_from_db()
    assert owners_box.state == "running" and owners_box.name == "owners-box"
    assert owners_box.firewall_rules.count() == 1


def test_another_organizations_jobs_and_lists_are_invisible(owners_box, outsider_client):
    job = owners_box.jobs.get()
    assert_error(outsider_client.get(f"/api/v1/jobs/{job.pk}"), 404, "JOB_NOT_FOUND")
    assert outsider_client.get("/api/v1/instances").json() == []
    assert outsider_client.get("/api/v1/logs").json()["instances"] == []
    assert outsider_client.get("/api/v1/profiles").json() == []


def test_outsiders_cannot_launch_into_a_project(outsider_client, project, account):
    response = outsider_client.post(
        "/api/v1/instances/launch",
        {"name": "x", "template": "Ubuntu 24.04 Base", "project": project.id},
        format="json",
    )
    assert_error(response, 404, "PROJECT_NOT_FOUND")


def test_viewers_read_but_cannot_act_or_launch(owners_box, team, project):
    viewer = bearer_client(team["viewer"])
    assert viewer.get("/api/v1/instances/owners-box").status_code == 200
    assert viewer.get("/api/v1/instances/owners-box/usage").status_code == 200
    assert_error(viewer.post("/api/v1/instances/owners-box/stop"), 403, "PERMISSION_DENIED")
    assert_error(viewer.post("/api/v1/instances/owners-box/firewall", {}, format="json"), 403, "PERMISSION_DENIED")
    _, launched = launch_as(team["viewer"], project, "viewer-box")
    assert_error(launched, 403, "PERMISSION_DENIED")


def test_members_act_only_on_their_own_workspaces(owners_box, team, project, django_capture_on_commit_callbacks):
    member, response = launch_as(team["member"], project, "member-box")
    assert response.status_code == 202
    Workspace.objects.filter(name="member-box").update(state="running")
    assert_error(member.post("/api/v1/instances/owners-box/stop"), 403, "PERMISSION_DENIED")
    assert_error(member.patch("/api/v1/instances/owners-box", {"name": "x"}, format="json"), 403)
    assert member.post("/api/v1/instances/member-box/stop").status_code == 202


def test_admins_and_owners_act_on_every_workspace(owners_box, team, project, owner_client):
    admin = bearer_client(team["admin"])
    assert admin.post("/api/v1/instances/owners-box/stop").status_code == 202
    member_client, _ = launch_as(team["member"], project, "member-box")
    Workspace.objects.filter(name="member-box").update(state="running")
    assert owner_client.post("/api/v1/instances/member-box/stop").status_code == 202


def test_a_project_with_a_running_workspace_cannot_be_deleted(owners_box, owner_client, project):
    assert_error(owner_client.delete(f"/api/v1/projects/{project.id}"), 409, "PROJECT_HAS_LIVE_WORKSPACES")


def test_launch_validates_its_input(owner_client, project, account):
    def launch(**body):
        return owner_client.post("/api/v1/instances/launch", {"project": project.id, **body}, format="json")

    assert set(assert_error(launch(), 400)["fields"]) >= {"name", "template"}
    assert_error(launch(name="x", template="Nope"), 404, "TEMPLATE_NOT_FOUND")
    assert_error(launch(name="bad name!", template="Ubuntu 24.04 Base"), 400, "VALIDATION_ERROR")
    assert_error(launch(name="x", template="Ubuntu 24.04 Base", size="XXL"), 400, "VALIDATION_ERROR")
    assert_error(launch(name="x", template="Ubuntu 24.04 Base", instance_type="m9.huge"), 400, "UNKNOWN_INSTANCE_TYPE")
    assert_error(
        launch(name="x", template="Ubuntu 24.04 Base", configuration={"cpuCores": 400, "memoryGB": 8}),
        400,
        "NO_MATCHING_INSTANCE_TYPE",
    )
    assert launch(name="x", template="Ubuntu 24.04 Base").status_code == 202
    assert_error(launch(name="x", template="Ubuntu 24.04 Base"), 409, "NAME_TAKEN")
    assert Workspace.objects.count() == 1  # nothing half-written by the refused requests


def test_configuration_picks_the_cheapest_fitting_type(owner_client, project, account):
    response = owner_client.post(
        "/api/v1/instances/launch",
        {
            "name": "cfg",
            "template": "Ubuntu 24.04 Base",
            "project": project.id,
            "configuration": {
                "cpuCores": 8,
                "memoryGB": 32,
                "gpu": "NVIDIA T4",
                "storageGB": 512,
                "region": "us-east-1",
            },
        },
        format="json",
    )
    assert response.status_code == 202
    workspace = Workspace.objects.get(name="cfg")
    assert workspace.instance_type == "g4dn.2xlarge"
    assert workspace.root_volume_gb == 512


def test_profiles(owner_client, account, project, org):
    from workspaces.models import CloudAccount

    second = CloudAccount.objects.create(organization=org, name="teaching", region="us-west-2")
    profiles = owner_client.get("/api/v1/profiles").json()
    assert [(p["name"], p["active"]) for p in profiles] == [("sandbox", True), ("teaching", False)]
    assert owner_client.get("/api/v1/profiles/current").json()["name"] == "sandbox"
    switched = owner_client.post(
        "/api/v1/profiles/switch", {"profile_name": "teaching", "project": project.name}, format="json"
    )
    assert switched.status_code == 200
    current = owner_client.get("/api/v1/profiles/current").json()
    assert current["id"] == second.pk and current["default_project"] == project.id and current["region"] == "us-west-2"
    assert_error(
        owner_client.post("/api/v1/profiles/switch", {"profile_name": "nope"}, format="json"), 404, "PROFILE_NOT_FOUND"
    )


def test_project_viewers_see_project_workspaces_but_other_members_of_the_org_do_not(owners_box, org, project):
    bystander = make_user("bystander@lab-a.example")
    add_org_member(org, bystander, OrgRole.MEMBER)
    client = bearer_client(bystander)
    assert client.get("/api/v1/instances").json() == []
    assert_error(client.get("/api/v1/instances/owners-box"), 404, "INSTANCE_NOT_FOUND")
    ProjectMember.objects.create(project=project, user=bystander, role=ProjectRole.VIEWER)
    assert [w["name"] for w in client.get("/api/v1/instances").json()] == ["owners-box"]
