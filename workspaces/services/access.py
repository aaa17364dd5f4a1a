"""Who may act on a workspace, and what a workspace may be called."""

import logging
import re
from typing import cast

from accounts.models import User
from platform_site.actors import Caller, is_system
from platform_site.errors import PermissionDenied, ValidationFailed
from projects.models import ProjectRole
from projects.services import project_role_of
from workspaces.models import (
    Workspace,
    WorkspaceState,
)

logger = logging.getLogger("carrel.workspaces")

S = WorkspaceState
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# What workspace ids (ws_…) and EC2 instance ids (i-…) look like: a name of that shape could send a
# caller to another workspace than the one they mean, so names may not have it.
ID_SHAPED_RE = re.compile(r"^(ws_[0-9a-f]*|i-[0-9a-f]+)$", re.IGNORECASE)
SSH_PORT = 22
# SSH reachable from more than a sixteenth of an address space (a /4's worth) needs `allow_world_ssh`.
WIDE_OPEN_ADDRESSES = {4: 2**28, 6: 2**124}


def validate_workspace_name(name: str | None) -> str:
    if name is None or not NAME_RE.match(name):
        raise ValidationFailed(
            fields={"name": ["1–63 letters, digits, '.', '_' or '-', starting with a letter or digit."]}
        )
    if ID_SHAPED_RE.match(name):
        raise ValidationFailed(
            f"'{name}' looks like a workspace or instance id.",
            code="NAME_LOOKS_LIKE_ID",
            fields={"name": ["Must not look like a workspace id (ws_…) or an instance id (i-…)."]},
            remediation="Choose a name that does not start with 'ws_' or look like 'i-0123abcd'.",
        )
    return name


class StillWaiting(Exception):
    """The provider has not reached the wanted state yet; a task retries later."""


# --- Permissions ------------------------------------------------------------------------------


def can_manage(*, user: Caller, workspace: Workspace) -> bool:
    """Project owners and admins manage every workspace; members only their own; viewers none.
    Platform superusers (Django admin) manage all, and so does Carrel itself (`SYSTEM`); nobody else."""
    if is_system(user):
        return True
    if user is None or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    # Not the system, not anonymous: a person.
    role = project_role_of(user=cast(User, user), project=workspace.project)
    if role in (ProjectRole.OWNER, ProjectRole.ADMIN):
        return True
    return role == ProjectRole.MEMBER and workspace.owner_id == user.pk


def require_can_manage(*, user: Caller, workspace: Workspace) -> None:
    if not can_manage(user=user, workspace=workspace):
        raise PermissionDenied(
            "Only the workspace's owner and the project's owners and admins can do this.",
            details=f"Workspace {workspace.name} belongs to {workspace.owner.email}.",
        )
