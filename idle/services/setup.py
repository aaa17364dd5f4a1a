"""What a launch sets up for idle detection: the workspace's policy and its agent's token."""

from idle.models import WorkspaceIdle
from idle.profiles import launch_policy
from idle.tokens import agent_token_issue
from workspaces.models import Workspace


def idle_setup_at_launch(
    *, workspace: Workspace, template_defaults: dict | None, requested: dict | None
) -> WorkspaceIdle:
    """Inside the launch's transaction. `requested` is the launch's `idle` (profile, enabled, overrides)."""
    policy = launch_policy(
        organization_id=workspace.organization_id,
        project_id=workspace.project_id,
        template_defaults=template_defaults,
        requested=requested,
    )
    agent_token_issue(workspace_id=workspace.pk)
    return WorkspaceIdle.objects.create(workspace=workspace, configured_at=workspace.created_at, **policy.fields())
