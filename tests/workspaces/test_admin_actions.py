"""Django admin goes through the services: no launches or deletions behind their back, lifecycle actions
through `services.workspace_act` (terminate only once confirmed), firewall rules through the firewall
services so that the security group follows. The workspace is launched against moto."""

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.conftest import make_user
from tests.workspaces.conftest import cloud_instances
from workspaces.models import FirewallRule, ProvisionJob, StateTransition, Workspace

CHANGELIST = "admin:workspaces_workspace_changelist"
RULES = "admin:workspaces_firewallrule_changelist"


@pytest.fixture
def root(db):
    user = make_user("root@carrel.example")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


@pytest.fixture
def browser(root) -> Client:
    client = Client()
    client.force_login(root)
    return client


@pytest.fixture
def launched(owner_client, project, account, eager_tasks, django_capture_on_commit_callbacks) -> Workspace:
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/api/v1/instances/launch",
            {"name": "ml-box", "template": "Python Machine Learning", "size": "S", "project": project.id},
            format="json",
        )
    assert response.status_code == 202, response.content
    workspace = Workspace.objects.get(name="ml-box")
    assert workspace.state == "running"
    return workspace


def instance_state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def ingress(ec2, group_id: str) -> list[tuple]:
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return sorted(
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"])
        for p in group["IpPermissions"]
        for r in p["IpRanges"]
    )


def transitions(workspace: Workspace) -> list[tuple]:
    rows = StateTransition.objects.filter(workspace=workspace).order_by("created_at", "id")
    return list(rows.values_list("pk", "from_state", "to_state"))


def said(response) -> list[str]:
    """The messages shown on the page the admin landed on (post with follow=True)."""
    return [str(message) for message in response.context["messages"]]


# --- No adding, no deleting ---------------------------------------------------------------------------


def test_the_add_page_answers_403_and_the_list_offers_no_add(browser, launched):
    add = reverse("admin:workspaces_workspace_add")
    assert browser.get(add).status_code == 403
    assert browser.post(add, {"name": "sneaky"}).status_code == 403
    assert list(Workspace.objects.values_list("name", flat=True)) == ["ml-box"]
    listing = browser.get(reverse(CHANGELIST))
    assert listing.status_code == 200
    assert add not in listing.content.decode()
    for model in ("statetransition", "provisionjob"):
        assert browser.get(reverse(f"admin:workspaces_{model}_add")).status_code == 403, model


def test_a_workspace_cannot_be_deleted_and_keeps_its_transitions_and_instance(browser, launched, ec2):
    history = transitions(launched)
    assert [row[1:] for row in history] == [("pending", "launching"), ("launching", "running")]
    delete = reverse("admin:workspaces_workspace_delete", args=[quote(launched.pk)])
    assert browser.get(delete).status_code == 403
    assert browser.post(delete, {"post": "yes"}).status_code == 403

    listing = browser.get(reverse(CHANGELIST))
    assert "delete_selected" not in listing.content.decode()
    response = browser.post(
        reverse(CHANGELIST), {"action": "delete_selected", "_selected_action": [launched.pk]}, follow=True
    )
    assert "No action selected." in said(response)

    # The change page is for reading: nothing is saved through it.
    change = reverse("admin:workspaces_workspace_change", args=[quote(launched.pk)])
    assert browser.get(change).status_code == 200
    assert browser.post(change, {"name": "renamed"}).status_code == 403

    # Nor do the transitions (the cost history) or the jobs go away one by one.
    for row_pk, *_ in history:
        url = reverse("admin:workspaces_statetransition_delete", args=[quote(row_pk)])
        assert browser.post(url, {"post": "yes"}).status_code == 403
    job = ProvisionJob.objects.get(workspace=launched)
    assert (
        browser.post(reverse("admin:workspaces_provisionjob_delete", args=[quote(job.pk)]), {"post": "yes"}).status_code
        == 403
    )
    for model in ("statetransition", "provisionjob"):
        assert "delete_selected" not in browser.get(reverse(f"admin:workspaces_{model}_changelist")).content.decode()

    workspace = Workspace.objects.get(pk=launched.pk)
    assert (workspace.name, workspace.state) == ("ml-box", "running")
    assert transitions(workspace) == history
    assert ProvisionJob.objects.filter(pk=job.pk).exists()
    assert instance_state(ec2, launched.provider_instance_id) == "running"


# --- Terminate asks first -------------------------------------------------------------------------------


def test_terminate_changes_nothing_until_confirmed_then_terminates_through_the_service(
    browser, root, launched, ec2, django_capture_on_commit_callbacks
):
    url = reverse(CHANGELIST)
    history = transitions(launched)
    selected = {"action": "terminate_selected", "_selected_action": [launched.pk]}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        asked = browser.post(url, selected)
    assert asked.status_code == 200
    assert "admin/workspaces/workspace/terminate_selected_confirmation.html" in [t.name for t in asked.templates]
    page = asked.content.decode()
    assert "ml-box" in page and launched.provider_instance_id in page and 'name="confirm"' in page
    assert callbacks == []

    # Confirming without typing the word, or typing another, is no confirmation.
    for typed in ({}, {"confirm": "delete"}, {"confirm": "yes"}):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            again = browser.post(url, {**selected, "post": "yes", **typed})
        assert again.status_code == 200, typed
        assert "confirm" in again.context["form"].errors, typed
        assert callbacks == [], typed

    assert Workspace.objects.get(pk=launched.pk).state == "running"
    assert transitions(launched) == history
    assert instance_state(ec2, launched.provider_instance_id) == "running"
    assert not AuditEvent.objects.filter(action="workspace.terminate").exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = browser.post(url, {**selected, "post": "yes", "confirm": "DELETE"}, follow=True)
    assert done.redirect_chain == [(url, 302)]
    assert any(message.startswith("ml-box: running → terminating.") for message in said(done))
    workspace = Workspace.objects.get(pk=launched.pk)
    assert workspace.state == "terminated"
    assert instance_state(ec2, launched.provider_instance_id) == "terminated"
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"carrel-{workspace.pk}"]}])
    assert groups["SecurityGroups"] == []
    requested, finished = StateTransition.objects.filter(workspace=workspace).order_by("created_at", "id")[2:]
    assert (requested.from_state, requested.to_state, requested.actor, requested.reason) == (
        "running",
        "terminating",
        root,
        "admin action",
    )
    assert (finished.from_state, finished.to_state) == ("terminating", "terminated")
    assert AuditEvent.objects.filter(action="workspace.terminate", target_id=workspace.pk).count() == 1

    # Asking again is harmless and says so.
    with django_capture_on_commit_callbacks(execute=True):
        repeated = browser.post(url, {**selected, "post": "yes", "confirm": "DELETE"}, follow=True)
    assert said(repeated) == ["ml-box: already terminated."]
    assert StateTransition.objects.filter(workspace=workspace).count() == 4


def test_lifecycle_actions_go_through_the_service_and_report_each_workspace(
    browser, launched, ec2, django_capture_on_commit_callbacks
):
    url = reverse(CHANGELIST)

    def run(action: str) -> list[str]:
        with django_capture_on_commit_callbacks(execute=True):
            response = browser.post(
                url, {"action": f"{action}_selected", "_selected_action": [launched.pk]}, follow=True
            )
        assert response.redirect_chain == [(url, 302)]
        return said(response)

    assert run("stop") == ["ml-box: running → stopping. Workspace stopping - all data preserved."]
    assert instance_state(ec2, launched.provider_instance_id) == "stopped"
    assert Workspace.objects.get(pk=launched.pk).state == "stopped"
    assert run("stop") == ["ml-box: already stopped."]
    assert run("resume") == ["ml-box: resume refused: Cannot resume a workspace that is stopped."]
    assert Workspace.objects.get(pk=launched.pk).state == "stopped"

    assert run("start") == ["ml-box: stopped → starting. Workspace starting."]
    assert instance_state(ec2, launched.provider_instance_id) == "running"
    run("hibernate")
    assert Workspace.objects.get(pk=launched.pk).state == "hibernated"
    assert run("resume")[0].startswith("ml-box: hibernated → resuming.")
    assert Workspace.objects.get(pk=launched.pk).state == "running"
    assert instance_state(ec2, launched.provider_instance_id) == "running"
    by_admin = StateTransition.objects.filter(workspace=launched, reason="admin action")
    assert list(by_admin.values_list("to_state", flat=True)) == ["stopping", "starting", "hibernating", "resuming"]


# --- Firewall rules through the services -----------------------------------------------------------------


def test_firewall_rules_added_and_removed_in_admin_reach_the_security_group(
    browser, root, launched, ec2, django_capture_on_commit_callbacks
):
    group = launched.security_group_id
    defaults = [("tcp", 22, 22, "127.0.0.1/32"), ("tcp", 8888, 8888, "127.0.0.1/32")]
    assert ingress(ec2, group) == defaults
    add = reverse("admin:workspaces_firewallrule_add")
    assert browser.get(add).status_code == 200

    rule = {"workspace": launched.pk, "protocol": "tcp", "from_port": 8000, "to_port": 8100, "cidr": "198.51.100.0/24"}
    with django_capture_on_commit_callbacks(execute=True):
        added = browser.post(add, rule)
    assert added.status_code == 302 and added["Location"] == reverse(RULES)
    assert ingress(ec2, group) == sorted([*defaults, ("tcp", 8000, 8100, "198.51.100.0/24")])
    created = FirewallRule.objects.get(workspace=launched, from_port=8000)
    assert (created.position, created.created_by) == (3, root)
    assert AuditEvent.objects.filter(action="firewall.add", target_id=launched.pk, actor=root).exists()

    # The service's checks apply: SSH open to the world needs the flag; bad input is a form error.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        refused = browser.post(add, {**rule, "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"})
        bad = browser.post(add, {**rule, "cidr": "not-a-network", "from_port": 70000})
    assert refused.status_code == 200 and "allow_world_ssh" in refused.context["form"].errors
    assert bad.status_code == 200 and {"cidr", "from_port"} <= set(bad.context["form"].errors)
    assert callbacks == []
    assert FirewallRule.objects.filter(workspace=launched).count() == 3

    # A rule is never edited in place (the security group would not follow).
    change = reverse("admin:workspaces_firewallrule_change", args=[quote(created.pk)])
    assert browser.post(change, {**rule, "cidr": "0.0.0.0/0"}).status_code == 403

    ssh = FirewallRule.objects.get(workspace=launched, from_port=22)
    delete = reverse("admin:workspaces_firewallrule_delete", args=[quote(ssh.pk)])
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.post(delete, {"post": "yes"}).status_code == 302
    assert ingress(ec2, group) == [("tcp", 8000, 8100, "198.51.100.0/24"), ("tcp", 8888, 8888, "127.0.0.1/32")]

    remaining = list(FirewallRule.objects.filter(workspace=launched).values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            reverse(RULES), {"action": "delete_selected", "_selected_action": remaining, "post": "yes"}
        )
    assert response.status_code == 302
    assert ingress(ec2, group) == []
    assert not FirewallRule.objects.filter(workspace=launched).exists()
    assert AuditEvent.objects.filter(action="firewall.delete", target_id=launched.pk).count() == 3
    assert len(cloud_instances(ec2, states=["running"])) == 1  # the workspace itself is untouched


def test_only_those_who_manage_the_workspace_remove_its_rules(launched, ec2, django_capture_on_commit_callbacks):
    """A staff user with the model permission, but no say over the workspace, is refused as the API would."""
    from django.contrib.auth.models import Permission

    staff = make_user("helpdesk@carrel.example")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="workspaces"))
    client = Client()
    client.force_login(staff)
    rule = FirewallRule.objects.filter(workspace=launched).first()
    delete = reverse("admin:workspaces_firewallrule_delete", args=[quote(rule.pk)])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(delete, {"post": "yes"}).status_code == 403
        added = client.post(
            reverse("admin:workspaces_firewallrule_add"),
            {"workspace": launched.pk, "protocol": "tcp", "from_port": 9000, "cidr": "198.51.100.0/24"},
        )
        stopped = client.post(
            reverse(CHANGELIST), {"action": "stop_selected", "_selected_action": [launched.pk]}, follow=True
        )
    assert added.status_code == 200 and added.context["form"].non_field_errors()
    assert any("stop refused" in message for message in said(stopped))
    assert FirewallRule.objects.filter(workspace=launched).count() == 2
    assert len(ingress(ec2, launched.security_group_id)) == 2
    assert Workspace.objects.get(pk=launched.pk).state == "running"
