"""A resolved template becomes the instance's cloud-init user data: users, packages, services."""

import yaml

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


def render_user_data(snapshot: dict, *, workspace_id: str) -> str:
    """`snapshot` is the resolved template stored on the workspace (see workspaces.services)."""
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
    if not config["packages"]:
        del config["packages"]
    if not config["runcmd"]:
        del config["runcmd"]
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False)
