"""Workspace services, by concern. Callers use the names below (`services.workspace_launch(...)`).

    access        who may act on a workspace; what it may be called
    transitions   the one way a workspace's state changes (a conditional update and a row per change)
    profiles      cloud accounts: which one a launch uses, and its provider
    launch        validate and record a launch
    provisioning  the launch job's cloud work, resumable and safe to repeat
    lifecycle     stop/start/hibernate/resume/terminate, resize, rename, TTL
    firewall      rules in the database, mirrored to the security group
    reconcile     compare the database with the cloud, account by account

The database records intent and what the provider reports; tasks (enqueued through workspaces.dispatch)
make the cloud calls.
"""

from workspaces.services.access import (
    SSH_PORT,
    StillWaiting,
    can_manage,
    require_can_manage,
    validate_workspace_name,
)
from workspaces.services.firewall import (
    firewall_add,
    firewall_clear,
    ingress_for,
    ssh_exposure,
    workspace_sync_firewall,
)
from workspaces.services.launch import LaunchResult, single_host_cidr, workspace_launch
from workspaces.services.lifecycle import (
    ACTIONS,
    ActionResult,
    UpdateResult,
    max_ttl_hours,
    transition_overdue,
    workspace_act,
    workspace_drive,
    workspace_extend,
    workspace_resize_apply,
    workspace_resize_failed,
    workspace_update,
    workspaces_stop_expired,
)
from workspaces.services.profiles import default_cloud_account, profile_switch, provider_for
from workspaces.services.provisioning import (
    job_renew_lease,
    launch_timed_out,
    workspace_launch_failed,
    workspace_provision,
    workspace_release_security_group,
)
from workspaces.services.transitions import rate_in_state, record_transition

__all__ = [
    "ACTIONS",
    "SSH_PORT",
    "ActionResult",
    "LaunchResult",
    "StillWaiting",
    "UpdateResult",
    "can_manage",
    "default_cloud_account",
    "firewall_add",
    "firewall_clear",
    "ingress_for",
    "job_renew_lease",
    "launch_timed_out",
    "max_ttl_hours",
    "profile_switch",
    "provider_for",
    "rate_in_state",
    "record_transition",
    "require_can_manage",
    "single_host_cidr",
    "ssh_exposure",
    "transition_overdue",
    "validate_workspace_name",
    "workspace_act",
    "workspace_drive",
    "workspace_extend",
    "workspace_launch",
    "workspace_launch_failed",
    "workspace_provision",
    "workspace_release_security_group",
    "workspace_resize_apply",
    "workspace_resize_failed",
    "workspace_sync_firewall",
    "workspace_update",
    "workspaces_stop_expired",
]
