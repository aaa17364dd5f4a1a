"""A resolved template becomes the instance's cloud-init user data: users, packages, services, and the
workspace agent (idle/agent/carrel_agent.py) that reports its usage to Carrel."""

import yaml
from django.conf import settings

# How each language-level package manager installs packages once the system is up.
_INSTALL_COMMANDS = {
    "conda": "/opt/conda/bin/conda install -y -c conda-forge {packages}",
    "pip": "python3 -m pip install {packages}",
    "spack": "spack install {packages}",
}
_BOOTSTRAP = {
    "conda": [
        "curl -fsSL https://repo.anaconda.com/miniconda/Miniconda3-latest-Linux-x86_64.sh -o /tmp/miniconda.sh",
        "bash /tmp/miniconda.sh -b -p /opt/conda",
    ],
}
_SYSTEM_MANAGERS = {"apt", "dnf", "yum"}


AGENT_CONFIG = "/etc/carrel/agent.conf"
AGENT_BINARY = "/usr/local/bin/carrel-agent"
AGENT_STATE_DIR = "/var/lib/carrel/keep-alive"
AGENT_UNIT = "/etc/systemd/system/carrel-agent.service"
AGENT_EXIT_REVOKED = 3  # carrel_agent.EXIT_REVOKED: the workspace is terminating; systemd must not restart it


def agent_unit(script_url: str) -> str:
    """The agent's systemd unit. Starting it fetches the script first if it is not there yet, so a Carrel that
    was unreachable at boot is tried again (every minute, for ever) rather than leaving the workspace unwatched."""
    fetch = (
        f"/bin/sh -c 'test -x {AGENT_BINARY} || "
        f"(curl -fsS --max-time 60 -o {AGENT_BINARY}.new {script_url} && "
        f"chmod 0755 {AGENT_BINARY}.new && mv {AGENT_BINARY}.new {AGENT_BINARY})'"
    )
    return (
        "[Unit]\n"
        "Description=Carrel workspace agent (usage heartbeats for idle detection)\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "StartLimitIntervalSec=0\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStartPre={fetch}\n"
        f"ExecStart=/usr/bin/env python3 {AGENT_BINARY} run --config {AGENT_CONFIG}\n"
        "Restart=always\n"
        "RestartSec=60\n"
        f"RestartPreventExitStatus={AGENT_EXIT_REVOKED}\n"
        "Nice=10\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def agent_install(agent_token: str) -> tuple[list[dict], list[str]]:
    """(write_files, runcmd) that install the agent: its configuration (root only: it holds the token), the
    keep-alive directory every user may register a job in, the script from Carrel, and the service."""
    public_url = settings.CARREL_PUBLIC_URL.rstrip("/")
    script_url = f"{public_url}/api/v1/agent/script"
    files = [
        {
            "path": AGENT_CONFIG,
            "content": f"url={public_url}\ntoken={agent_token}\n",
            "owner": "root:root",
            "permissions": "0600",
        },
        {"path": AGENT_UNIT, "content": agent_unit(script_url), "permissions": "0644"},
    ]
    commands = [
        f"install -d -m 1777 {AGENT_STATE_DIR}",
        f"curl -fsS --retry 5 --retry-delay 5 --max-time 60 -o {AGENT_BINARY}.new {script_url} "
        f"&& chmod 0755 {AGENT_BINARY}.new && mv {AGENT_BINARY}.new {AGENT_BINARY} || true",
        "systemctl daemon-reload",
        "systemctl enable --now carrel-agent.service",
    ]
    return files, commands


def render_user_data(snapshot: dict, *, workspace_id: str, agent_token: str = "") -> str:
    """`snapshot` is the resolved template stored on the workspace (see workspaces.services); `agent_token` the
    workspace's agent token (idle.tokens.agent_token_secret), which installs the agent. The same arguments
    always render the same text: a retried launch must ask EC2 for exactly the same instance."""
    config: dict = {"users": ["default"], "packages": [], "runcmd": []}
    for user in snapshot.get("users", []):
        entry = {"name": user["name"], "shell": user.get("shell", "/bin/bash")}
        if user.get("groups"):
            entry["groups"] = ", ".join(user["groups"])
        if {"wheel", "sudo"} & set(user.get("groups", [])):
            entry["sudo"] = "ALL=(ALL) NOPASSWD:ALL"
        config["users"].append(entry)
    for manager, packages in snapshot.get("packages_by_manager", {}).items():
        if manager in _SYSTEM_MANAGERS:
            config["packages"].extend(packages)
        elif manager in _INSTALL_COMMANDS and packages:
            config["runcmd"].extend(_BOOTSTRAP.get(manager, []))
            config["runcmd"].append(_INSTALL_COMMANDS[manager].format(packages=" ".join(packages)))
    for service in snapshot.get("services", []):
        config["runcmd"].append(f"systemctl enable --now {service['name']} || true")
    config["package_update"] = True
    config["write_files"] = [
        {"path": "/etc/carrel/workspace", "content": f"workspace_id={workspace_id}\n", "permissions": "0644"}
    ]
    if agent_token:
        files, commands = agent_install(agent_token)
        config["write_files"].extend(files)
        config["runcmd"][:0] = commands  # first: the agent reports while the packages install
    if not config["packages"]:
        del config["packages"]
    if not config["runcmd"]:
        del config["runcmd"]
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False)
