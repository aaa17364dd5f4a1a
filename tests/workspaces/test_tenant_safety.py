"""Defects found by trying Carrel as an attacker with two organizations sharing one AWS account and region.

Each test here failed before its fix: orphan cleanup across tenants, look-alike references, one broken
account stopping reconciliation, SSH opened to the world in halves, and workspace requests that answered
500 for client or provider trouble.
"""

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.utils import timezone

from accounts.models import OrgRole
from audit.models import AuditEvent
from platform_site.celery import app as celery_app
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_user
from tests.workspaces.conftest import cloud_instances
from workspaces import services
from workspaces.models import CloudAccount, OrphanedInstance, StateTransition, Workspace
from workspaces.services import reconcile


def launch(client, project, name, **extra):
    response = client.post(
        "/api/v1/instances/launch",
        {"name": name, "template": "Ubuntu 24.04 Base", "project": project.id, **extra},
        format="json",
    )
    assert response.status_code == 202, response.content
    return response.json()


@pytest.fixture
def two_tenants(owner, org, project, account, outsider, cloud, moto_image, settings):
    """Lab A and Lab B, each with a running workspace, with cloud accounts on the same endpoint and region."""
    settings.CARREL_LAUNCH_POLL_SECONDS = 5
    org_b = outsider.memberships.get().organization
    project_b = org_b.projects.get()
    account_b = CloudAccount.objects.create(
        organization=org_b,
        name="shared-aws",
        region="us-east-1",
        endpoint_url=cloud.url,
        image_overrides={"*": moto_image},
        is_default=True,
    )
    ws_a = launch(bearer_client(owner), project, "analysis")
    ws_b = launch(bearer_client(outsider), project_b, "analysis")
    for body in (ws_a, ws_b):
        services.workspace_provision(job_id=body["job_id"])
    return {
        "a": Workspace.objects.get(pk=ws_a["workspace_id"]),
        "b": Workspace.objects.get(pk=ws_b["workspace_id"]),
        "account_b": account_b,
        "project_b": project_b,
        "org_b": org_b,
    }


# --- 1. Orphan cleanup never touches another tenant's machines --------------------------------------


def test_it_never_terminates_another_organizations_running_workspace(two_tenants, account, ec2):
    account_b = two_tenants["account_b"]
    for cloud_account in (account, account_b):
        cloud_account.terminate_orphans, cloud_account.orphan_grace_minutes = True, 0
        cloud_account.save()
    report = reconcile.workspaces_reconcile()
    report = reconcile.workspaces_reconcile()  # twice: past the (zero) grace period
    assert report.orphans == [] and report.orphans_terminated == [] and report.failed == {}
    running = {i["InstanceId"] for i in cloud_instances(ec2, states=("running",))}
    assert running == {two_tenants["a"].provider_instance_id, two_tenants["b"].provider_instance_id}
    assert not OrphanedInstance.objects.exists()
    assert not AuditEvent.objects.filter(action="cloud.orphan_terminated").exists()


def test_it_tags_every_resource_with_its_organization_and_cloud_account(two_tenants, account, ec2):
    workspace = two_tenants["a"]
    instance = ec2.describe_instances(InstanceIds=[workspace.provider_instance_id])["Reservations"][0]["Instances"][0]
    group = ec2.describe_security_groups(GroupIds=[workspace.security_group_id])["SecurityGroups"][0]
    for tags in (instance["Tags"], group["Tags"]):
        tags = {tag["Key"]: tag["Value"] for tag in tags}
        assert tags["carrel:organization"] == workspace.organization_id
        assert tags["carrel:cloud-account"] == account.pk
        assert tags["carrel:workspace-id"] == workspace.pk


def tagged_instance(ec2, image, **tags) -> str:
    return ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": key, "Value": value} for key, value in tags.items()]}
        ],
    )["Instances"][0]["InstanceId"]


def test_it_never_terminates_an_instance_whose_tag_names_a_live_workspace_anywhere(
    two_tenants, account, ec2, moto_image
):
    account_b = two_tenants["account_b"]
    account_b.terminate_orphans, account_b.orphan_grace_minutes = True, 0
    account_b.save()
    # Tagged as Lab B's, but naming Lab A's live workspace: not B's to judge, never terminated.
    spoof = tagged_instance(
        ec2,
        moto_image,
        **{
            "carrel:workspace-id": two_tenants["a"].pk,
            "carrel:cloud-account": account_b.pk,
            "carrel:organization": account_b.organization_id,
        },
    )
    reconcile.workspaces_reconcile()
    reconcile.workspaces_reconcile()
    assert spoof in {i["InstanceId"] for i in cloud_instances(ec2)}


def test_it_scans_an_account_with_no_live_workspaces_for_orphans(org, cloud, moto_image, ec2, catalog):
    empty = CloudAccount.objects.create(
        organization=org, name="empty", region="us-east-1", endpoint_url=cloud.url, image_overrides={"*": moto_image}
    )
    ghost = tagged_instance(
        ec2,
        moto_image,
        **{"carrel:workspace-id": "ws_gone", "carrel:cloud-account": empty.pk, "carrel:organization": org.pk},
    )
    report = reconcile.workspaces_reconcile()
    assert report.orphans == [ghost]
    assert OrphanedInstance.objects.get().cloud_account == empty


# --- 2. References resolve ids first and never guess between organizations --------------------------


@pytest.fixture
def member_of_both(two_tenants, owner, org):
    """A person in both organizations, owner of Lab A's project and member of Lab B's."""
    user = make_user("both@lab-a.example")
    add_org_member(org, user, OrgRole.ADMIN)
    add_org_member(two_tenants["org_b"], user, OrgRole.MEMBER)
    ProjectMember.objects.create(project=two_tenants["project_b"], user=user, role=ProjectRole.MEMBER)
    return user


def test_it_answers_409_with_candidates_when_a_name_matches_workspaces_in_two_organizations(
    two_tenants, member_of_both, project
):
    client = bearer_client(member_of_both)
    error = assert_error(client.get("/api/v1/instances/analysis"), 409, "AMBIGUOUS_REFERENCE")
    candidates = {(c["workspace_id"], c["project"]) for c in error["candidates"]}
    assert candidates == {(two_tenants["a"].pk, project.pk), (two_tenants["b"].pk, two_tenants["project_b"].pk)}
    # Acting on it is refused the same way: nothing is stopped by a guess.
    assert_error(client.post("/api/v1/instances/analysis/stop", {}, format="json"), 409, "AMBIGUOUS_REFERENCE")
    assert Workspace.objects.filter(state="running").count() == 2


def test_it_disambiguates_with_the_project_parameter_on_every_workspace_route(two_tenants, member_of_both, project):
    client = bearer_client(member_of_both)
    for path in ("", "/usage", "/sysinfo", "/firewall", "/hibernation-status", "/connect"):
        response = client.get(f"/api/v1/instances/analysis{path}?project={project.pk}")
        assert response.status_code == 200, (path, response.content)
    assert client.get(f"/api/v1/logs/analysis/types?project={project.name}").status_code == 200
    body = client.get(f"/api/v1/instances/analysis?project={two_tenants['project_b'].pk}").json()
    assert body["workspace_id"] == two_tenants["b"].pk


@pytest.mark.parametrize("name", ["ws_0123456789abcdef", "WS_abc", "i-0123456789abcdef0", "i-0abc1234"])
def test_it_refuses_names_shaped_like_ids(owner_client, project, account, name):
    response = owner_client.post(
        "/api/v1/instances/launch",
        {"name": name, "template": "Ubuntu 24.04 Base", "project": project.id},
        format="json",
    )
    assert_error(response, 400, "NAME_LOOKS_LIKE_ID")
    assert not Workspace.objects.exists()


def test_it_resolves_an_id_before_a_look_alike_name(two_tenants, member_of_both):
    # A name shaped like Lab B's workspace id, from before names were checked: the id wins.
    Workspace.objects.filter(pk=two_tenants["a"].pk).update(name=two_tenants["b"].pk)
    client = bearer_client(member_of_both)
    assert client.get(f"/api/v1/instances/{two_tenants['b'].pk}").json()["workspace_id"] == two_tenants["b"].pk
    Workspace.objects.filter(pk=two_tenants["a"].pk).update(name=two_tenants["b"].provider_instance_id)
    by_instance = client.get(f"/api/v1/instances/{two_tenants['b'].provider_instance_id}").json()
    assert by_instance["workspace_id"] == two_tenants["b"].pk


# --- 3. One broken account never stops the others; stuck transitions end ----------------------------


def test_it_reconciles_every_account_when_one_is_broken(two_tenants, account, ec2, settings):
    settings.CARREL_CLOUD_MAX_ATTEMPTS = 1
    # Nothing listens on port 9; its id sorts first, so a failure that stopped the loop would stop the rest.
    broken = CloudAccount.objects.create(
        id="acct_0000000000000000", organization=two_tenants["org_b"], name="broken", endpoint_url="http://127.0.0.1:9"
    )
    ec2.stop_instances(InstanceIds=[two_tenants["a"].provider_instance_id])

    report = reconcile.workspaces_reconcile()

    assert report.repaired == [two_tenants["a"].pk]
    assert list(report.failed) == [broken.pk]
    broken.refresh_from_db()
    account.refresh_from_db()
    assert "ConnectionError" in broken.last_reconcile_error and broken.last_reconcile_error_at is not None
    assert account.last_reconcile_error == "" and account.last_reconciled_at is not None
    status = bearer_client(two_tenants["b"].owner).get("/api/v1/daemon/status").json()
    errors = {row["id"]: row["last_reconcile_error"] for row in status["cloud_accounts"]}
    assert errors == {broken.pk: broken.last_reconcile_error, two_tenants["account_b"].pk: ""}
    assert status["status"] == "degraded"
    admin = make_user("root@carrel.example")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    browser = Client()
    browser.force_login(admin)
    page = browser.get(f"/admin/workspaces/cloudaccount/{quote(broken.pk)}/change/").content.decode()
    assert "Could not connect to the endpoint URL" in page


def test_it_hands_a_workspace_stuck_in_a_transition_to_the_providers_state(two_tenants, settings):
    workspace = two_tenants["a"]
    # A stop was recorded but never reached the provider (the worker died, or the provider refused it).
    services.record_transition(workspace=workspace, to_state="stopping", expected_from=["running"], reason="stop")
    assert reconcile.workspaces_reconcile().repaired == []  # a task may still be driving it
    Workspace.objects.filter(pk=workspace.pk).update(
        state_changed_at=timezone.now() - timedelta(seconds=settings.CARREL_TRANSITION_STUCK_SECONDS + 1)
    )
    assert reconcile.workspaces_reconcile().repaired == [workspace.pk]
    workspace.refresh_from_db()
    assert workspace.state == "running"
    last = StateTransition.objects.filter(workspace=workspace).order_by("-created_at", "-id").first()
    assert (last.from_state, last.to_state) == ("stopping", "running")


# --- 4. SSH is judged on the union of the rules ------------------------------------------------------


@pytest.mark.parametrize(
    "batches",
    [
        [["0.0.0.0/1", "128.0.0.0/1"]],
        [["0.0.0.0/1"], ["128.0.0.0/1"]],  # split across two requests
        [["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2"]],
        [["::/1", "8000::/1"]],
    ],
)
def test_it_refuses_ssh_opened_to_the_world_in_pieces(two_tenants, owner_client, batches):
    workspace = two_tenants["a"]
    url = f"/api/v1/instances/{workspace.pk}/firewall"
    responses = [
        owner_client.post(url, {"rules": [{"cidr": cidr, "port": 22} for cidr in batch]}, format="json")
        for batch in batches
    ]
    assert_error(responses[-1], 400, "WORLD_SSH_NEEDS_FLAG")
    flagged = owner_client.post(
        url, {"rules": [{"cidr": cidr, "port": 22} for cidr in batches[-1]], "allow_world_ssh": True}, format="json"
    )
    assert flagged.status_code == 201


def test_it_allows_ssh_from_a_network_and_other_ports_from_anywhere(two_tenants, owner_client):
    url = f"/api/v1/instances/{two_tenants['a'].pk}/firewall"
    response = owner_client.post(
        url,
        {"rules": [{"cidr": "10.0.0.0/8", "port": 22}, {"cidr": "0.0.0.0/0", "port": 443}]},
        format="json",
    )
    assert response.status_code == 201, response.content


def test_it_adds_no_duplicate_rule_and_404s_a_missing_position(two_tenants, owner_client):
    url = f"/api/v1/instances/{two_tenants['a'].pk}/firewall"
    before = owner_client.get(url).json()["rules"]
    owner_client.post(url, {}, format="json", REMOTE_ADDR="198.51.100.7")
    owner_client.post(url, {}, format="json", REMOTE_ADDR="198.51.100.7")
    rules = owner_client.get(url).json()["rules"]
    assert len(rules) == len(before) + 1
    assert_error(owner_client.delete(f"{url}?position=99"), 404, "FIREWALL_RULE_NOT_FOUND")
    assert_error(owner_client.delete(f"{url}?position=²"), 400, "VALIDATION_ERROR")


# --- 6 and 10. Client errors are 400s, not 500s; TTLs have a ceiling ---------------------------------


@pytest.mark.parametrize("hours", [1e8, 1000000, 169])
def test_it_caps_ttl_extensions(two_tenants, owner_client, hours):
    response = owner_client.post(f"/api/v1/instances/{two_tenants['a'].pk}/extend", {"hours": hours}, format="json")
    assert response.status_code == 400, response.content
    assert Workspace.objects.get(pk=two_tenants["a"].pk).expires_at is None


def test_it_caps_ttl_by_the_template(two_tenants, owner_client):
    workspace = two_tenants["a"]
    workspace.template_snapshot["instance_defaults"]["max_ttl_hours"] = 8
    Workspace.objects.filter(pk=workspace.pk).update(template_snapshot=workspace.template_snapshot)
    url = f"/api/v1/instances/{workspace.pk}/extend"
    assert owner_client.post(url, {"hours": 6}, format="json").status_code == 204
    assert_error(owner_client.post(url, {"hours": 6}, format="json"), 400, "TTL_LIMIT_EXCEEDED")


def test_it_answers_400_for_non_ascii_digits_in_tail(two_tenants, owner_client):
    for tail in ("٣", "²", "１０"):
        assert_error(owner_client.get(f"/api/v1/logs/{two_tenants['a'].pk}?tail={tail}"), 400, "VALIDATION_ERROR")


# --- 11. Provider trouble inside a request is a 503; resize is a recorded action --------------------


def test_it_answers_503_with_retry_after_when_the_provider_fails_a_log_request(two_tenants, owner_client, settings):
    settings.CARREL_CLOUD_MAX_ATTEMPTS = 1
    settings.CARREL_CLOUD_FAULTS = "throttle:GetConsoleOutput:5"
    response = owner_client.get(f"/api/v1/logs/{two_tenants['a'].pk}?tail=5")
    assert_error(response, 503, "PROVIDER_UNAVAILABLE")
    assert int(response["Retry-After"]) > 0


def test_it_resizes_as_a_recorded_action_that_survives_throttling(
    two_tenants, owner_client, ec2, settings, eager_tasks, django_capture_on_commit_callbacks
):
    workspace = two_tenants["a"]
    url = f"/api/v1/instances/{workspace.pk}"
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(f"{url}/stop", {}, format="json")
    old_type = Workspace.objects.get(pk=workspace.pk).instance_type
    # The provider throttles every attempt: the request still answers 202 at once, the task retries with
    # backoff and finally gives up, and the workspace is stopped again with its old type.
    settings.CARREL_CLOUD_MAX_ATTEMPTS = 1
    settings.CARREL_CLOUD_FAULTS = "throttle:ModifyInstanceAttribute:1"
    celery_app.conf.task_eager_propagates = False  # let the eager task retry, as a worker would
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.patch(url, {"instance_type": "t3.xlarge"}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["state"] == "resizing" and response.json()["job_id"]
    job = owner_client.get(f"/api/v1/jobs/{response.json()['job_id']}").json()
    assert (job["kind"], job["status"], job["error_code"]) == ("resize", "failed", "RequestLimitExceeded")
    workspace.refresh_from_db()
    assert workspace.state == "stopped" and workspace.instance_type == old_type

    settings.CARREL_CLOUD_FAULTS = ""
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.patch(url, {"instance_type": "t3.xlarge"}, format="json")
    assert response.status_code == 202, response.content
    workspace.refresh_from_db()
    assert workspace.state == "stopped" and workspace.instance_type == "t3.xlarge"
    attribute = ec2.describe_instance_attribute(InstanceId=workspace.provider_instance_id, Attribute="instanceType")
    assert attribute["InstanceType"]["Value"] == "t3.xlarge"
    moves = list(StateTransition.objects.filter(workspace=workspace).values_list("from_state", "to_state", "reason"))
    assert [move[:2] for move in moves[-4:]] == [
        ("stopped", "resizing"),
        ("resizing", "stopped"),
        ("stopped", "resizing"),
        ("resizing", "stopped"),
    ]
    assert moves[-3][2] == "resize failed: RequestLimitExceeded"
    job = owner_client.get(f"/api/v1/jobs/{response.json()['job_id']}").json()
    assert job["status"] == "succeeded"


def test_it_caps_ttl_by_the_project_policy_which_only_owners_set(two_tenants, owner_client, project, owner, org):
    admin = make_user("admin@lab-a.example")
    add_org_member(org, admin, OrgRole.MEMBER)
    ProjectMember.objects.create(project=project, user=admin, role=ProjectRole.ADMIN)
    url = f"/api/v1/projects/{project.pk}"
    assert_error(bearer_client(admin).patch(url, {"max_ttl_hours": 2}, format="json"), 403)
    assert owner_client.patch(url, {"max_ttl_hours": 2}, format="json").json()["max_ttl_hours"] == 2
    extend = f"/api/v1/instances/{two_tenants['a'].pk}/extend"
    assert_error(owner_client.post(extend, {"hours": 3}, format="json"), 400, "TTL_LIMIT_EXCEEDED")
    assert owner_client.post(extend, {"hours": 2}, format="json").status_code == 204


def test_terminating_a_workspace_ends_only_its_own_accounts_instances(
    two_tenants, owner_client, ec2, moto_image, eager_tasks, django_capture_on_commit_callbacks
):
    workspace = two_tenants["a"]
    # Something else in the shared AWS account carries the workspace's id, but not its cloud account.
    stranger = tagged_instance(
        ec2,
        moto_image,
        **{"carrel:workspace-id": workspace.pk, "carrel:cloud-account": two_tenants["account_b"].pk},
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            f"/api/v1/instances/{workspace.pk}/terminate", {"confirm": "DELETE"}, format="json"
        )
    assert response.status_code == 202
    assert Workspace.objects.get(pk=workspace.pk).state == "terminated"
    assert stranger in {i["InstanceId"] for i in cloud_instances(ec2)}


def test_the_reconciler_resyncs_a_security_group_that_drifted(
    two_tenants, ec2, eager_tasks, django_capture_on_commit_callbacks
):
    workspace = two_tenants["a"]
    group_id = workspace.security_group_id
    # Someone edits the group by hand in the AWS console: SSH from the world, the caller's rule gone.
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=group["IpPermissions"])
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    with django_capture_on_commit_callbacks(execute=True):
        report = reconcile.workspaces_reconcile()
    assert report.firewalls_resynced == [workspace.pk]  # Lab B's group is untouched and in sync
    restored = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"]
    cidrs = sorted(r["CidrIp"] for p in restored for r in p.get("IpRanges", []))
    assert "0.0.0.0/0" not in cidrs
    assert cidrs == sorted(rule.cidr for rule in workspace.firewall_rules.all())
    assert reconcile.workspaces_reconcile().firewalls_resynced == []
