"""Workspace lifecycle. The database records intent and what the provider reports; tasks do the calls.

Every state change goes through `record_transition`: a conditional update (the row must still be in
an expected state) plus one StateTransition row with the time and the rate in force. The cost ledger
is built from those rows, so nothing else writes `Workspace.state`.
"""

import dataclasses
import ipaddress
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization
from audit.services import audit_record
from platform_site.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from projects.models import Project, ProjectRole
from projects.services import project_role_of, require_project_role
from templates.cloud_init import render_user_data
from templates.selectors import template_for
from workspaces import cloud, dispatch, sizing
from workspaces.models import (
    COMPUTE_BILLED_STATES,
    CloudAccount,
    FirewallRule,
    ProvisionJob,
    StateTransition,
    Workspace,
    WorkspacePreference,
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
    if not NAME_RE.match(name or ""):
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


def can_manage(*, user, workspace: Workspace) -> bool:
    """Project owners and admins manage every workspace; members only their own; viewers none.
    Platform superusers (Django admin) manage all."""
    if user.is_superuser:
        return True
    role = project_role_of(user=user, project=workspace.project)
    if role in (ProjectRole.OWNER, ProjectRole.ADMIN):
        return True
    return role == ProjectRole.MEMBER and workspace.owner_id == user.pk


def require_can_manage(*, user, workspace: Workspace) -> None:
    if user is not None and not can_manage(user=user, workspace=workspace):
        raise PermissionDenied(
            "Only the workspace's owner and the project's owners and admins can do this.",
            details=f"Workspace {workspace.name} belongs to {workspace.owner.email}.",
        )


# --- Transitions --------------------------------------------------------------------------------


def rate_in_state(workspace: Workspace, state: str) -> Decimal:
    return workspace.hourly_rate if state in COMPUTE_BILLED_STATES else Decimal("0")


def record_transition(
    *,
    workspace: Workspace,
    to_state: str,
    expected_from: Iterable[str],
    actor=None,
    reason: str = "",
    **fields,
) -> bool:
    """Move the workspace to `to_state` if it is still in one of `expected_from`; False otherwise."""
    with transaction.atomic():
        current = Workspace.objects.select_for_update().filter(pk=workspace.pk).values_list("state", flat=True).first()
        if current is None or current not in set(expected_from):
            return False
        now = timezone.now()
        for name, value in fields.items():
            setattr(workspace, name, value)
        Workspace.objects.filter(pk=workspace.pk, state=current).update(
            state=to_state, state_changed_at=now, updated_at=now, **fields
        )
        workspace.state, workspace.state_changed_at = to_state, now
        StateTransition.objects.create(
            workspace=workspace,
            from_state=current,
            to_state=to_state,
            actor=actor if actor is not None and actor.is_authenticated else None,
            reason=reason[:255],
            instance_type=workspace.instance_type,
            hourly_rate=rate_in_state(workspace, to_state),
            created_at=now,
        )
    return True


# --- Cloud accounts and profiles ------------------------------------------------------------------


def provider_for(target: Workspace | CloudAccount) -> cloud.AwsProvider:
    if isinstance(target, Workspace):
        return cloud.AwsProvider(target.cloud_account, region=target.region or None)
    return cloud.AwsProvider(target)


def default_cloud_account(*, user, organization: Organization) -> CloudAccount | None:
    preference = WorkspacePreference.objects.filter(user=user).select_related("cloud_account").first()
    if preference and preference.cloud_account and preference.cloud_account.organization_id == organization.pk:
        return preference.cloud_account
    accounts = CloudAccount.objects.filter(organization=organization).order_by("-is_default", "created_at")
    return accounts.first()


@transaction.atomic
def profile_switch(*, actor, cloud_account: CloudAccount | None, project: Project | None) -> WorkspacePreference:
    preference, _ = WorkspacePreference.objects.get_or_create(user=actor)
    if cloud_account is not None:
        preference.cloud_account = cloud_account
    if project is not None:
        preference.project = project
    preference.save()
    audit_record(
        actor=actor,
        action="profile.switch",
        target=preference,
        metadata={"cloud_account": getattr(cloud_account, "pk", None), "project": getattr(project, "pk", None)},
    )
    return preference


# --- Launch ---------------------------------------------------------------------------------------


@dataclass
class LaunchResult:
    workspace: Workspace
    job: ProvisionJob


def _single_host_cidr(ip: str | None) -> str | None:
    if not ip:
        return None
    address = ipaddress.ip_address(ip)
    return f"{address}/{32 if address.version == 4 else 128}"


def _default_rules(*, workspace: Workspace, snapshot: dict, client_ip: str | None, actor) -> list[FirewallRule]:
    """SSH and the template's service ports, open only to the caller's address."""
    cidr = _single_host_cidr(client_ip)
    if cidr is None:
        return []
    ports = [SSH_PORT, *[service["port"] for service in snapshot.get("services", []) if service.get("port")]]
    ports = list(dict.fromkeys(ports))
    return [
        FirewallRule(
            workspace=workspace,
            position=index,
            cidr=cidr,
            protocol=FirewallRule.Protocol.TCP,
            from_port=port,
            to_port=port,
            description="ssh" if port == SSH_PORT else "template service",
            created_by=actor,
        )
        for index, port in enumerate(ports, start=1)
    ]


def workspace_launch(
    *,
    actor,
    project: Project,
    name: str,
    template: str,
    size: str | None = None,
    instance_type: str | None = None,
    configuration: dict | None = None,
    spot: bool = False,
    region: str | None = None,
    storage: dict | None = None,
    cloud_account: CloudAccount | None = None,
    client_ip: str | None = None,
) -> LaunchResult:
    """Validate and record a launch; a Celery task (enqueued on commit) does the cloud work."""
    require_project_role(user=actor, project=project, minimum=ProjectRole.MEMBER)
    validate_workspace_name(name)
    view = template_for(user=actor, reference=template)
    if view is None or (view.template.organization_id not in (None, project.organization_id)):
        raise NotFound(f"No template named '{template}'.", code="TEMPLATE_NOT_FOUND")
    if not view.report.valid or view.resolved is None:
        raise ValidationFailed(
            f"The template '{template}' is not valid.",
            code="TEMPLATE_INVALID",
            details="; ".join(issue.message for issue in view.report.issues),
        )
    account = cloud_account or default_cloud_account(user=actor, organization=project.organization)
    if account is None:
        raise ValidationFailed(
            "The organization has no cloud account.",
            code="NO_CLOUD_ACCOUNT",
            remediation="An administrator adds one in the admin (Cloud accounts).",
        )
    configuration = configuration or None
    region = (configuration or {}).get("region") or region or account.region
    resolved = view.resolved
    chosen = sizing.choose_instance_type(
        region=region,
        template_defaults=resolved.instance_defaults,
        size=size,
        instance_type=instance_type,
        configuration=configuration,
    )
    rate = sizing.hourly_rate(chosen.name, region, spot=spot)
    storage = storage or {}
    root_gb = int(
        storage.get("ebs_volume_size")
        or (configuration or {}).get("storageGB")
        or resolved.instance_defaults.get("root_volume_gb")
        or 30
    )
    hibernate = chosen.hibernation_supported
    if hibernate:
        # RAM is written to the root volume on hibernation: it must hold memory plus the system.
        root_gb = max(root_gb, int(chosen.memory_gib) + 8)
    snapshot = dataclasses.asdict(resolved)
    snapshot["template_id"] = view.template.pk

    with transaction.atomic():
        # The project row lock serialises launches with project deletion (and budget checks).
        Project.objects.select_for_update().get(pk=project.pk)
        if Workspace.objects.filter(organization=project.organization, name=name).live().exists():
            raise Conflict(f"A workspace named '{name}' exists.", code="NAME_TAKEN", fields={"name": ["In use."]})
        try:
            with transaction.atomic():
                workspace = Workspace.objects.create(
                    organization=project.organization,
                    project=project,
                    owner=actor,
                    name=name,
                    state=S.PENDING,
                    cloud_account=account,
                    template=view.template,
                    template_name=view.template.name,
                    template_snapshot=snapshot,
                    size=size or "",
                    instance_type=chosen.name,
                    region=region,
                    spot=spot,
                    root_volume_gb=root_gb,
                    root_volume_type=storage.get("ebs_volume_type") or "gp3",
                    hibernation_capable=hibernate,
                    hourly_rate=rate,
                )
        except IntegrityError:
            raise Conflict(f"A workspace named '{name}' exists.", code="NAME_TAKEN") from None
        record_transition(
            workspace=workspace, to_state=S.LAUNCHING, expected_from=[S.PENDING], actor=actor, reason="launch requested"
        )
        job = ProvisionJob.objects.create(workspace=workspace, kind="launch", steps=_initial_steps())
        FirewallRule.objects.bulk_create(
            _default_rules(workspace=workspace, snapshot=snapshot, client_ip=client_ip, actor=actor)
        )
        audit_record(
            actor=actor,
            action="workspace.launch",
            target=workspace,
            organization=project.organization,
            metadata={"instance_type": chosen.name, "region": region, "template": view.template.name, "job": job.pk},
        )
        dispatch.provision_workspace(job.pk)
    return LaunchResult(workspace=workspace, job=job)


LAUNCH_STEPS = [
    ("queued", "Queued", 5),
    ("security_group", "Security group ready", 25),
    ("instance", "Instance requested", 50),
    ("running", "Instance running", 100),
]


def _initial_steps() -> list[dict]:
    return [
        {"name": name, "description": description, "status": "pending", "at": None}
        for name, description, _ in LAUNCH_STEPS
    ]


def _mark_step(job: ProvisionJob, step_name: str, status: str = "done", message: str = "") -> None:
    progress = job.progress
    for step, (name, _, step_progress) in zip(job.steps, LAUNCH_STEPS, strict=False):
        if name == step_name:
            step["status"] = status
            step["at"] = timezone.now().isoformat()
            if message:
                step["message"] = message
            if status == "done":
                progress = max(progress, step_progress)
    job.progress = progress
    job.save(update_fields=["steps", "progress", "updated_at"])


def _tags(workspace: Workspace) -> dict[str, str]:
    return {
        cloud.WORKSPACE_TAG: workspace.pk,
        cloud.CLOUD_ACCOUNT_TAG: workspace.cloud_account_id,
        cloud.ORGANIZATION_TAG: workspace.organization_id,
        "carrel:project": workspace.project_id,
        "carrel:owner": workspace.owner.email,
        "carrel:template": workspace.template_name,
    }


def _wait_for(
    provider: cloud.AwsProvider, instance_id: str, wanted: set[str], *, timeout: float, heartbeat=None
) -> cloud.InstanceInfo:
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        if heartbeat is not None:
            heartbeat()
        info = provider.describe([instance_id]).get(instance_id)
        if info is not None and info.state in wanted:
            return info
        if time.monotonic() >= deadline:
            raise StillWaiting(f"{instance_id} is {info.state if info else 'unknown'}, waiting for {sorted(wanted)}")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def job_renew_lease(*, job_id: str, seconds: float = 0) -> None:
    """Tell the launch sweep this job's worker is alive for `seconds` more (plus the lease)."""
    until = timezone.now() + timedelta(seconds=seconds + settings.CARREL_LAUNCH_LEASE_SECONDS)
    ProvisionJob.objects.filter(pk=job_id).update(lease_expires_at=until, updated_at=timezone.now())


def _is_missing_group(error: cloud.CloudError) -> bool:
    return error.code in ("InvalidGroup.NotFound", "InvalidGroupId.NotFound", "InvalidGroupId.Malformed")


def workspace_provision(*, job_id: str) -> None:
    """Run (or resume) a launch. Safe to run any number of times: it never creates a second instance."""
    job = ProvisionJob.objects.select_related("workspace__cloud_account", "workspace__owner").get(pk=job_id)
    workspace = job.workspace
    if workspace.state != S.LAUNCHING:
        if workspace.state != S.ERROR and job.status != ProvisionJob.Status.SUCCEEDED:
            job.status, job.finished_at = ProvisionJob.Status.SUCCEEDED, timezone.now()
            job.save(update_fields=["status", "finished_at", "updated_at"])
        return
    # A first attempt cannot have an instance yet; any later one (a retry, a redelivered message after a
    # worker died) must look for the tagged instance before asking for one.
    first_attempt = job.attempts == 0 and not workspace.provider_instance_id
    ProvisionJob.objects.filter(pk=job.pk).update(status=ProvisionJob.Status.RUNNING, attempts=job.attempts + 1)
    job.status, job.attempts = ProvisionJob.Status.RUNNING, job.attempts + 1
    job_renew_lease(job_id=job.pk, seconds=settings.CARREL_LAUNCH_POLL_SECONDS)
    _mark_step(job, "queued")
    provider = provider_for(workspace)
    try:
        try:
            _prepare_security_group(provider, workspace)
            _mark_step(job, "security_group")
            instance = _adopt_or_launch(provider, workspace, look_for_existing=not first_attempt)
        except cloud.PermanentCloudError as error:
            if not _is_missing_group(error):
                raise
            # The group was deleted behind our back (by hand, or by a cleanup): make a new one, once.
            logger.warning("Security group %s of %s is gone; recreating it", workspace.security_group_id, workspace.pk)
            Workspace.objects.filter(pk=workspace.pk).update(security_group_id="")
            workspace.security_group_id = ""
            _prepare_security_group(provider, workspace)
            instance = _adopt_or_launch(provider, workspace, look_for_existing=True)
        _mark_step(job, "instance", message=instance.instance_id)

        info = _wait_for(
            provider,
            instance.instance_id,
            {"running"},
            timeout=settings.CARREL_LAUNCH_POLL_SECONDS,
            heartbeat=lambda: job_renew_lease(job_id=job.pk),
        )
        moved = record_transition(
            workspace=workspace,
            to_state=S.RUNNING,
            expected_from=[S.LAUNCHING],
            reason="the provider reports running",
            public_ip=info.public_ip,
            private_ip=info.private_ip,
            launch_time=info.launch_time or timezone.now(),
        )
        _mark_step(job, "running")
        job.status, job.progress, job.finished_at = ProvisionJob.Status.SUCCEEDED, 100, timezone.now()
        job.lease_expires_at = None
        job.save(update_fields=["status", "progress", "finished_at", "lease_expires_at", "updated_at"])
        if not moved:
            logger.info("Workspace %s left launching while provisioning; nothing more to do", workspace.pk)
    except cloud.PermanentCloudError as error:
        workspace_launch_failed(job_id=job.pk, code=error.code, message=error.message)
    except (cloud.TransientCloudError, StillWaiting) as error:
        job.error_message = str(error)[:2000]
        job.save(update_fields=["error_message", "updated_at"])
        raise


def _prepare_security_group(provider: cloud.AwsProvider, workspace: Workspace) -> None:
    created = False
    if not workspace.security_group_id:
        group_id, created = provider.ensure_security_group(workspace.pk, _tags(workspace))
        Workspace.objects.filter(pk=workspace.pk).update(security_group_id=group_id)
        workspace.security_group_id = group_id
    provider.set_ingress(workspace.security_group_id, _ingress_for(workspace), current=[] if created else None)


def _adopt_or_launch(
    provider: cloud.AwsProvider, workspace: Workspace, *, look_for_existing: bool = True
) -> cloud.InstanceInfo:
    """The instance tagged with this workspace's id if one exists (a retry or a dead worker), else a new one."""
    existing = provider.find_workspace_instances(workspace.pk, workspace.cloud_account_id) if look_for_existing else []
    if existing:
        instance = min(existing, key=lambda info: (info.launch_time is None, info.launch_time, info.instance_id))
        for extra in existing:
            if extra.instance_id != instance.instance_id:
                logger.warning("Terminating duplicate instance %s of %s", extra.instance_id, workspace.pk)
                provider.terminate(extra.instance_id)
    else:
        snapshot = workspace.template_snapshot
        instance = provider.launch(
            cloud.LaunchSpec(
                workspace_id=workspace.pk,
                name=workspace.name,
                image_id=provider.image_for(snapshot.get("base_os") or "ubuntu-24.04"),
                instance_type=workspace.instance_type,
                security_group_id=workspace.security_group_id,
                user_data=render_user_data(snapshot, workspace_id=workspace.pk),
                tags=_tags(workspace),
                root_volume_gb=workspace.root_volume_gb,
                root_volume_type=workspace.root_volume_type,
                hibernate=workspace.hibernation_capable,
                spot=workspace.spot,
                subnet_id=workspace.cloud_account.subnet_id,
                key_name=workspace.cloud_account.key_name,
            )
        )
    if workspace.provider_instance_id != instance.instance_id:
        Workspace.objects.filter(pk=workspace.pk).update(provider_instance_id=instance.instance_id)
        workspace.provider_instance_id = instance.instance_id
    return instance


def workspace_launch_failed(*, job_id: str, code: str, message: str) -> None:
    """A launch that cannot succeed: record the provider's message and leave nothing behind in the cloud."""
    job = ProvisionJob.objects.select_related("workspace__cloud_account").get(pk=job_id)
    workspace = job.workspace
    provider = provider_for(workspace)
    cleanup_errors = []
    try:
        instances = provider.find_workspace_instances(workspace.pk, workspace.cloud_account_id)
        for instance in instances:
            provider.terminate(instance.instance_id)
        for instance in instances:
            _wait_for(provider, instance.instance_id, {"terminated"}, timeout=30)
        if workspace.security_group_id:
            provider.delete_security_group(workspace.security_group_id)
    except (cloud.CloudError, StillWaiting) as error:
        cleanup_errors.append(str(error))
        logger.warning("Cleanup after failed launch of %s incomplete: %s", workspace.pk, error)
    record_transition(
        workspace=workspace,
        to_state=S.ERROR,
        expected_from=[S.LAUNCHING, S.PENDING],
        reason=f"launch failed: {code}",
        error_message=f"{code}: {message}",
    )
    job.status, job.finished_at, job.lease_expires_at = ProvisionJob.Status.FAILED, timezone.now(), None
    job.error_code, job.error_message = (
        code,
        message + (f" (cleanup: {'; '.join(cleanup_errors)})" if cleanup_errors else ""),
    )
    job.save(update_fields=["status", "finished_at", "lease_expires_at", "error_code", "error_message", "updated_at"])


# --- Lifecycle actions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    name: str
    allowed_from: frozenset
    during: str
    final: str
    message: str
    # Asking again in one of these states is harmless and changes nothing. Resume is not harmless on a
    # running workspace: it was never hibernated, so the request is a mistake worth a 409.
    harmless_in: frozenset = frozenset()


ACTIONS = {
    "stop": Action(
        "stop",
        frozenset({S.RUNNING}),
        S.STOPPING,
        S.STOPPED,
        "Workspace stopping - all data preserved",
        frozenset({S.STOPPING, S.STOPPED}),
    ),
    "hibernate": Action(
        "hibernate",
        frozenset({S.RUNNING}),
        S.HIBERNATING,
        S.HIBERNATED,
        "Workspace hibernating - RAM state and data preserved",
        frozenset({S.HIBERNATING, S.HIBERNATED}),
    ),
    "start": Action(
        "start",
        frozenset({S.STOPPED}),
        S.STARTING,
        S.RUNNING,
        "Workspace starting",
        frozenset({S.STARTING, S.RUNNING}),
    ),
    "resume": Action(
        "resume",
        frozenset({S.HIBERNATED}),
        S.RESUMING,
        S.RUNNING,
        "Resuming from hibernation - RAM state preserved",
        frozenset({S.RESUMING}),
    ),
    "terminate": Action(
        "terminate",
        frozenset(
            {
                S.LAUNCHING,
                S.RUNNING,
                S.STOPPED,
                S.HIBERNATED,
                S.ERROR,
                S.STOPPING,
                S.STARTING,
                S.HIBERNATING,
                S.RESUMING,
                S.RESIZING,
                S.PENDING,
            }
        ),
        S.TERMINATING,
        S.TERMINATED,
        "Workspace terminating - all data will be permanently lost",
        frozenset({S.TERMINATING, S.TERMINATED}),
    ),
}


@dataclass(frozen=True)
class ActionResult:
    workspace: Workspace
    previous_state: str
    new_state: str
    message: str
    already_under_way: bool = False


def workspace_act(*, actor, workspace: Workspace, action: str, reason: str = "") -> ActionResult:
    """Ask for a lifecycle action. Repeating one already under way (or done) changes nothing."""
    spec = ACTIONS[action]
    require_can_manage(user=actor, workspace=workspace)
    previous = workspace.state
    if previous in spec.harmless_in:
        return ActionResult(workspace, previous, previous, f"Already {previous}.", already_under_way=True)
    if action == "hibernate" and not workspace.hibernation_capable:
        raise Conflict(
            f"Workspace '{workspace.name}' cannot hibernate.",
            code="HIBERNATION_NOT_SUPPORTED",
            details=f"Instance type {workspace.instance_type} was not launched with hibernation configured.",
            remediation="Stop the workspace instead.",
        )
    if previous not in spec.allowed_from:
        raise Conflict(
            f"Cannot {action} a workspace that is {previous}.",
            code="INVALID_STATE",
            details=f"{action} is allowed from: {', '.join(sorted(spec.allowed_from))}.",
        )
    with transaction.atomic():
        if not record_transition(
            workspace=workspace,
            to_state=spec.during,
            expected_from=[previous],
            actor=actor,
            reason=reason or f"{action} requested",
        ):
            workspace.refresh_from_db()
            raise Conflict(f"The workspace changed state to {workspace.state}; try again.", code="INVALID_STATE")
        audit_record(
            actor=actor,
            action=f"workspace.{action}",
            target=workspace,
            organization=workspace.organization,
            metadata={"previous_state": previous, "reason": reason},
        )
        dispatch.drive_workspace(workspace.pk, action)
    return ActionResult(workspace, previous, spec.during, spec.message)


def workspace_drive(*, workspace_id: str, action: str) -> None:
    """Carry out a requested action in the cloud and wait for the provider to confirm it."""
    spec = ACTIONS[action]
    workspace = Workspace.objects.select_related("cloud_account").get(pk=workspace_id)
    if workspace.state != spec.during:
        return
    provider = provider_for(workspace)
    if action == "terminate":
        ids = {info.instance_id for info in provider.find_workspace_instances(workspace.pk, workspace.cloud_account_id)}
        if workspace.provider_instance_id:
            ids.add(workspace.provider_instance_id)
        for instance_id in sorted(ids):
            provider.terminate(instance_id)
        for instance_id in sorted(ids):
            _wait_for(provider, instance_id, {"terminated"}, timeout=settings.CARREL_LAUNCH_POLL_SECONDS)
        if workspace.security_group_id:
            provider.delete_security_group(workspace.security_group_id)
        record_transition(
            workspace=workspace,
            to_state=S.TERMINATED,
            expected_from=[S.TERMINATING],
            reason="the provider reports terminated",
            public_ip=None,
            private_ip=None,
        )
        return
    instance_id = workspace.provider_instance_id
    if action in ("stop", "hibernate"):
        provider.stop(instance_id, hibernate=action == "hibernate")
        _wait_for(provider, instance_id, {"stopped"}, timeout=settings.CARREL_LAUNCH_POLL_SECONDS)
        record_transition(
            workspace=workspace,
            to_state=spec.final,
            expected_from=[spec.during],
            reason="the provider reports stopped",
            public_ip=None,
        )
    else:
        provider.start(instance_id)
        info = _wait_for(provider, instance_id, {"running"}, timeout=settings.CARREL_LAUNCH_POLL_SECONDS)
        record_transition(
            workspace=workspace,
            to_state=S.RUNNING,
            expected_from=[spec.during],
            reason="the provider reports running",
            public_ip=info.public_ip,
            private_ip=info.private_ip,
        )


@dataclass(frozen=True)
class UpdateResult:
    workspace: Workspace
    resize_job: ProvisionJob | None = None


def workspace_update(
    *,
    actor,
    workspace: Workspace,
    name: str | None = None,
    size: str | None = None,
    instance_type: str | None = None,
    configuration: dict | None = None,
) -> UpdateResult:
    """Rename at once; resize (only while stopped) as a recorded action that a task carries out."""
    require_can_manage(user=actor, workspace=workspace)
    chosen = None
    if size or instance_type or configuration:
        if workspace.state != S.STOPPED:
            raise Conflict(
                "The instance type can only change while the workspace is stopped.",
                code="INVALID_STATE",
                remediation="Stop the workspace, change it, then start it again.",
            )
        chosen = sizing.choose_instance_type(
            region=workspace.region,
            template_defaults=workspace.template_snapshot.get("instance_defaults", {}),
            size=size,
            instance_type=instance_type,
            configuration=configuration,
        )
        if chosen.name == workspace.instance_type:
            chosen = None
    with transaction.atomic():
        if name is not None and name != workspace.name:
            validate_workspace_name(name)
            if Workspace.objects.filter(organization=workspace.organization, name=name).live().exists():
                raise Conflict(f"A workspace named '{name}' exists.", code="NAME_TAKEN")
            previous = workspace.name
            workspace.name = name
            try:
                with transaction.atomic():
                    workspace.save(update_fields=["name", "updated_at"])
            except IntegrityError:
                raise Conflict(f"A workspace named '{name}' exists.", code="NAME_TAKEN") from None
            audit_record(
                actor=actor,
                action="workspace.update",
                target=workspace,
                organization=workspace.organization,
                metadata={"name": [previous, name]},
            )
        job = None
        if chosen is not None:
            job = _resize_request(actor=actor, workspace=workspace, instance_type=chosen.name, size=size or "")
    return UpdateResult(workspace=workspace, resize_job=job)


def _resize_request(*, actor, workspace: Workspace, instance_type: str, size: str) -> ProvisionJob:
    previous_type = workspace.instance_type
    if not record_transition(
        workspace=workspace,
        to_state=S.RESIZING,
        expected_from=[S.STOPPED],
        actor=actor,
        reason=f"resize to {instance_type} requested",
    ):
        workspace.refresh_from_db()
        raise Conflict(f"The workspace changed state to {workspace.state}; try again.", code="INVALID_STATE")
    job = ProvisionJob.objects.create(
        workspace=workspace,
        kind="resize",
        parameters={"instance_type": instance_type, "size": size, "from_instance_type": previous_type},
        steps=[{"name": "modify", "description": "Instance type changed", "status": "pending", "at": None}],
    )
    audit_record(
        actor=actor,
        action="workspace.resize",
        target=workspace,
        organization=workspace.organization,
        metadata={"instance_type": [previous_type, instance_type], "job": job.pk},
    )
    dispatch.resize_workspace(job.pk)
    return job


def workspace_resize_apply(*, job_id: str) -> None:
    """Change the instance type in the cloud, then record it. Safe to repeat: the change is idempotent."""
    job = ProvisionJob.objects.select_related("workspace__cloud_account").get(pk=job_id)
    workspace = job.workspace
    if workspace.state != S.RESIZING or job.status in (ProvisionJob.Status.SUCCEEDED, ProvisionJob.Status.FAILED):
        return
    ProvisionJob.objects.filter(pk=job.pk).update(status=ProvisionJob.Status.RUNNING, attempts=F("attempts") + 1)
    new_type = job.parameters["instance_type"]
    provider_for(workspace).modify_instance_type(workspace.provider_instance_id, new_type)
    spec = sizing.get_instance_type(new_type)
    record_transition(
        workspace=workspace,
        to_state=S.STOPPED,
        expected_from=[S.RESIZING],
        reason=f"the provider changed the instance type to {new_type}",
        instance_type=new_type,
        size=job.parameters.get("size", ""),
        hourly_rate=sizing.hourly_rate(new_type, workspace.region, spot=workspace.spot),
        hibernation_capable=workspace.hibernation_capable
        and spec.hibernation_supported
        and workspace.root_volume_gb >= int(spec.memory_gib) + 8,
    )
    _finish_job(job, ProvisionJob.Status.SUCCEEDED)


def workspace_resize_failed(*, job_id: str, code: str, message: str) -> None:
    job = ProvisionJob.objects.select_related("workspace").get(pk=job_id)
    record_transition(
        workspace=job.workspace, to_state=S.STOPPED, expected_from=[S.RESIZING], reason=f"resize failed: {code}"
    )
    _finish_job(job, ProvisionJob.Status.FAILED, code=code, message=message)


def _finish_job(job: ProvisionJob, status: str, *, code: str = "", message: str = "") -> None:
    for step in job.steps:
        step["status"] = "done" if status == ProvisionJob.Status.SUCCEEDED else "failed"
        step["at"] = timezone.now().isoformat()
    ProvisionJob.objects.filter(pk=job.pk).update(
        status=status,
        progress=100 if status == ProvisionJob.Status.SUCCEEDED else job.progress,
        steps=job.steps,
        finished_at=timezone.now(),
        lease_expires_at=None,
        error_code=code,
        error_message=message[:2000],
        updated_at=timezone.now(),
    )


def max_ttl_hours(workspace: Workspace) -> int:
    """The longest TTL an extension may set from now: the platform's cap, lowered by the project's policy
    and by the template's."""
    limits = [settings.CARREL_MAX_TTL_HOURS]
    if workspace.project.max_ttl_hours:
        limits.append(workspace.project.max_ttl_hours)
    template_limit = (workspace.template_snapshot.get("instance_defaults") or {}).get("max_ttl_hours")
    if isinstance(template_limit, int | float) and template_limit > 0:
        limits.append(int(template_limit))
    return min(limits)


@transaction.atomic
def workspace_extend(*, actor, workspace: Workspace, hours: float | None) -> Workspace:
    require_can_manage(user=actor, workspace=workspace)
    if workspace.state == S.TERMINATED:
        raise Conflict("A terminated workspace has no TTL.", code="INVALID_STATE")
    hours = hours if hours and hours > 0 else settings.CARREL_DEFAULT_TTL_EXTENSION_HOURS
    limit = max_ttl_hours(workspace)
    now = timezone.now()
    base = workspace.expires_at if workspace.expires_at and workspace.expires_at > now else now
    if hours > limit or (base - now).total_seconds() / 3600 + hours > limit:
        raise ValidationFailed(
            f"The TTL can be at most {limit} hours from now.",
            code="TTL_LIMIT_EXCEEDED",
            details=f"Asked for {hours:g} more hours on top of the current TTL; the limit is {limit} hours.",
            fields={"hours": [f"At most {limit} hours from now, counting the TTL already set."]},
            remediation=f"Ask for fewer hours, or extend again later; the limit is {limit} hours from now.",
        )
    workspace.expires_at = base + timedelta(hours=hours)
    workspace.save(update_fields=["expires_at", "updated_at"])
    audit_record(
        actor=actor,
        action="workspace.extend",
        target=workspace,
        organization=workspace.organization,
        metadata={"hours": hours, "expires_at": workspace.expires_at.isoformat()},
    )
    return workspace


def workspaces_stop_expired() -> list[str]:
    """Stop running workspaces whose TTL has passed. Returns their ids."""
    stopped = []
    for workspace in Workspace.objects.filter(state=S.RUNNING, expires_at__lte=timezone.now()).select_related(
        "project", "owner"
    ):
        try:
            workspace_act(actor=None, workspace=workspace, action="stop", reason="TTL expired")
            stopped.append(workspace.pk)
        except Conflict:
            continue
    return stopped


# --- Firewall -------------------------------------------------------------------------------------


def _ingress_for(workspace: Workspace) -> list[cloud.IngressRule]:
    return [
        cloud.IngressRule(
            protocol=rule.protocol,
            from_port=rule.from_port,
            to_port=rule.to_port,
            cidr=rule.cidr,
            description=rule.description,
        )
        for rule in FirewallRule.objects.filter(workspace=workspace).order_by("position")
    ]


def _normalise_rule(raw: dict) -> dict:
    errors: dict[str, list[str]] = {}
    try:
        network = ipaddress.ip_network(str(raw.get("cidr", "")).strip(), strict=False)
    except ValueError:
        errors["cidr"] = ["Not an IPv4 or IPv6 network, e.g. 203.0.113.7/32."]
        network = None
    protocol = str(raw.get("protocol") or "tcp").lower()
    if protocol not in FirewallRule.Protocol.values:
        errors["protocol"] = ["One of tcp, udp, icmp."]
    from_port = raw.get("from_port", raw.get("port"))
    to_port = raw.get("to_port", from_port)
    for key, value in (("from_port", from_port), ("to_port", to_port)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            errors[key] = ["A port in 1–65535."]
    if not errors and from_port > to_port:
        errors["to_port"] = ["Must not be below from_port."]
    if errors:
        raise ValidationFailed(fields=errors)
    return {
        "cidr": str(network),
        "protocol": protocol,
        "from_port": from_port,
        "to_port": to_port,
        "description": str(raw.get("description", ""))[:200],
    }


def _reaches_ssh(rule: dict) -> bool:
    return rule["protocol"] == FirewallRule.Protocol.TCP and rule["from_port"] <= SSH_PORT <= rule["to_port"]


def ssh_exposure(rules: Iterable[dict]) -> dict[int, int]:
    """How many addresses can reach SSH, per IP version, judging the union of the rules (overlaps once).

    Two halves (0.0.0.0/1 + 128.0.0.0/1) open SSH to the world as surely as 0.0.0.0/0 does."""
    networks: dict[int, list] = {4: [], 6: []}
    for rule in rules:
        if _reaches_ssh(rule):
            network = ipaddress.ip_network(rule["cidr"], strict=False)
            networks[network.version].append(network)
    return {
        version: sum(network.num_addresses for network in ipaddress.collapse_addresses(found))
        for version, found in networks.items()
    }


def _require_no_wide_open_ssh(rules: list[dict]) -> None:
    exposure = ssh_exposure(rules)
    for version, limit in WIDE_OPEN_ADDRESSES.items():
        if exposure[version] > limit:
            raise ValidationFailed(
                "Opening SSH to the whole internet needs an explicit flag.",
                code="WORLD_SSH_NEEDS_FLAG",
                details=(
                    f"Together, the workspace's rules would let {exposure[version]:,} IPv{version} addresses reach "
                    f"SSH (port {SSH_PORT}); more than a /4's worth needs allow_world_ssh."
                ),
                fields={"allow_world_ssh": ["Set to true to open SSH this widely (e.g. 0.0.0.0/0 or ::/0)."]},
                remediation="Allow SSH from your own network (e.g. 203.0.113.0/24), or set allow_world_ssh: true.",
            )


def firewall_add(
    *, actor, workspace: Workspace, rules: list[dict], allow_world_ssh: bool = False
) -> list[FirewallRule]:
    """Append rules that are not there yet. SSH open wider than a /8 (all rules together) needs the flag."""
    require_can_manage(user=actor, workspace=workspace)
    normalised = [_normalise_rule(rule) for rule in rules]
    with transaction.atomic():
        Workspace.objects.select_for_update().filter(pk=workspace.pk).exists()
        existing = list(
            FirewallRule.objects.filter(workspace=workspace).values("cidr", "protocol", "from_port", "to_port")
        )
        present = {(r["cidr"], r["protocol"], r["from_port"], r["to_port"]) for r in existing}
        fresh: dict[tuple, dict] = {}
        for rule in normalised:
            key = (rule["cidr"], rule["protocol"], rule["from_port"], rule["to_port"])
            if key not in present:
                fresh.setdefault(key, rule)
        normalised = list(fresh.values())
        if not normalised:
            return []
        if not allow_world_ssh:
            _require_no_wide_open_ssh([*existing, *normalised])
        last = FirewallRule.objects.filter(workspace=workspace).order_by("-position").values_list("position", flat=True)
        start = (last.first() or 0) + 1
        created = FirewallRule.objects.bulk_create(
            [
                FirewallRule(workspace=workspace, position=start + index, created_by=actor, **rule)
                for index, rule in enumerate(normalised)
            ]
        )
        audit_record(
            actor=actor,
            action="firewall.add",
            target=workspace,
            organization=workspace.organization,
            metadata={"rules": normalised},
        )
        _sync_firewall_on_commit(workspace)
    return created


def firewall_clear(*, actor, workspace: Workspace, position: int | None = None) -> int:
    require_can_manage(user=actor, workspace=workspace)
    with transaction.atomic():
        rules = FirewallRule.objects.filter(workspace=workspace)
        if position is not None:
            rules = rules.filter(position=position)
        deleted, _ = rules.delete()
        if position is not None and not deleted:
            raise NotFound(
                f"Workspace '{workspace.name}' has no firewall rule at position {position}.",
                code="FIREWALL_RULE_NOT_FOUND",
                remediation=f"GET /api/v1/instances/{workspace.pk}/firewall lists the rules and their positions.",
            )
        audit_record(
            actor=actor,
            action="firewall.delete",
            target=workspace,
            organization=workspace.organization,
            metadata={"position": position, "deleted": deleted},
        )
        _sync_firewall_on_commit(workspace)
    return deleted


def _sync_firewall_on_commit(workspace: Workspace) -> None:
    dispatch.sync_workspace_firewall(workspace.pk)


def workspace_sync_firewall(*, workspace_id: str) -> None:
    workspace = Workspace.objects.select_related("cloud_account").get(pk=workspace_id)
    if workspace.security_group_id and workspace.state != S.TERMINATED:
        provider_for(workspace).set_ingress(workspace.security_group_id, _ingress_for(workspace))
