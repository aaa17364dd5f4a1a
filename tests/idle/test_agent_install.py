"""The user data installs the agent: its configuration (root-only, with the workspace's token), the script from
Carrel, a systemd service that restarts unless the token was revoked. A launch on the moto server carries it, and
the same workspace always renders the same user data (a retried launch must ask EC2 for the same instance)."""

import base64

import pytest
import yaml
from django.urls import resolve

from idle.models import AgentToken
from idle.tokens import agent_token_authenticate, agent_token_secret
from templates.cloud_init import AGENT_CONFIG, AGENT_UNIT, render_user_data
from tests.workspaces.conftest import account, catalog, cloud, ec2, moto, moto_image  # noqa: F401 (fixtures)
from workspaces import services as workspace_services
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

SNAPSHOT = {"users": [{"name": "researcher", "groups": ["sudo"]}], "packages_by_manager": {"pip": ["numpy"]}}


def files_of(user_data: str) -> dict[str, dict]:
    assert user_data.startswith("#cloud-config\n")
    return {entry["path"]: entry for entry in yaml.safe_load(user_data)["write_files"]}


def test_the_user_data_installs_the_agent_with_its_token(settings):
    settings.CARREL_PUBLIC_URL = "https://carrel.example.org"
    user_data = render_user_data(SNAPSHOT, workspace_id="ws_1", agent_token="carrel_agent_abc")
    config = yaml.safe_load(user_data)
    files = files_of(user_data)
    conf = files[AGENT_CONFIG]
    assert conf["content"] == "url=https://carrel.example.org\ntoken=carrel_agent_abc\n"
    assert conf["permissions"] == "0600" and conf["owner"] == "root:root"
    unit = files[AGENT_UNIT]["content"]
    assert "Restart=always" in unit and "RestartPreventExitStatus=3" in unit and "StartLimitIntervalSec=0" in unit
    assert "ExecStart=/usr/bin/env python3 /usr/local/bin/carrel-agent run --config /etc/carrel/agent.conf" in unit
    script_url = "https://carrel.example.org/api/v1/agent/script"
    assert script_url in unit  # fetched again at each start until it is there
    assert resolve("/api/v1/agent/script").url_name == "agent-script"
    commands = config["runcmd"]
    assert commands[0] == "install -d -m 1777 /var/lib/carrel/keep-alive"
    assert any(script_url in command and "/usr/local/bin/carrel-agent" in command for command in commands)
    assert commands.index("systemctl enable --now carrel-agent.service") < commands.index(
        "python3 -m pip install numpy"
    )
    assert files["/etc/carrel/workspace"]["content"] == "workspace_id=ws_1\n"


def test_without_a_token_there_is_no_agent():
    user_data = render_user_data(SNAPSHOT, workspace_id="ws_1")
    assert AGENT_CONFIG not in files_of(user_data) and "carrel-agent" not in user_data


def test_a_launch_on_the_cloud_carries_the_agent_and_renders_the_same_user_data_again(
    project,
    owner,
    account,  # noqa: F811
    ec2,  # noqa: F811
):
    launched = workspace_services.workspace_launch(
        actor=owner, project=project, name="agent-box", template="Ubuntu 24.04 Base", size="S"
    )
    workspace_services.workspace_provision(job_id=launched.job.pk)
    workspace = Workspace.objects.get(pk=launched.workspace.pk)
    attribute = ec2.describe_instance_attribute(InstanceId=workspace.provider_instance_id, Attribute="userData")
    user_data = base64.b64decode(attribute["UserData"]["Value"]).decode()
    assert len(user_data.encode()) < 16 * 1024  # EC2's limit
    token = AgentToken.objects.get(pk=workspace.pk)
    secret = agent_token_secret(token)
    assert f"token={secret}\n" in files_of(user_data)[AGENT_CONFIG]["content"]
    assert agent_token_authenticate(secret=secret).workspace_id == workspace.pk
    # The secret is derived, not stored; the same rows render the same text, as a retried launch needs.
    assert secret not in str(AgentToken.objects.filter(pk=workspace.pk).values().get())
    again = render_user_data(workspace.template_snapshot, workspace_id=workspace.pk, agent_token=secret)
    assert again == user_data
