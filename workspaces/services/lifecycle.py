"""Lifecycle actions (stop, start, hibernate, resume, terminate), resizing, renaming and TTLs."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from audit.services import audit_record
from budgets.services import reservations
from platform_site.actors import SYSTEM, Actor
from platform_site.errors import Conflict, ValidationFailed
from projects.models import Project
from workspaces import dispatch, sizing
from workspaces.models import (
    ProvisionJob,
    Workspace,
)
from workspaces.services.access import S, require_can_manage, validate_workspace_name
from workspaces.services.poller import cloud_wait
from workspaces.services.profiles import provider_for
from workspaces.services.transitions import record_transition

logger = logging.getLogger("carrel.workspaces")

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


def workspace_act(*, actor: Actor, workspace: Workspace, action: str, reason: str = "") -> ActionResult:
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
        hold = None
        if action in ("start", "resume"):
            # Like a launch, a start reserves its estimated cost under the allocation's row lock (or is refused).
            hold = reservations.hold(
                project_id=workspace.project_id,
                member_id=workspace.owner_id,
                hourly_rate=workspace.hourly_rate,
                storage_monthly_rate=workspace.storage_monthly_rate,
                expires_at=workspace.expires_at,
            )
        if not record_transition(
            workspace=workspace,
            to_state=spec.during,
            expected_from=[previous],
            actor=actor,
            reason=reason or f"{action} requested",
        ):
            workspace.refresh_from_db()
            raise Conflict(f"The workspace changed state to {workspace.state}; try again.", code="INVALID_STATE")
        metadata = {"previous_state": previous, "reason": reason}
        if hold is not None:
            metadata["reserved"] = str(hold.reserve(workspace_id=workspace.pk, reason=action).amount)
        audit_record(
            actor=actor,
            action=f"workspace.{action}",
            target=workspace,
            organization=workspace.organization,
            metadata=metadata,
        )
        dispatch.drive_workspace(workspace.pk, action)
    return ActionResult(workspace, previous, spec.during, spec.message)


def transition_overdue(*, workspace_id: str) -> bool:
    """Whether an action has waited longer than CARREL_TRANSITION_STUCK_SECONDS (the reconciler takes over)."""
    changed = Workspace.objects.filter(pk=workspace_id).values_list("state_changed_at", flat=True).first()
    limit = timedelta(seconds=settings.CARREL_TRANSITION_STUCK_SECONDS)
    return changed is None or timezone.now() - changed > limit


def workspace_drive(*, workspace_id: str, action: str, issued: bool = False) -> None:
    """Carry out a requested action in the cloud, then hand the wait to the poller (services.poller), which
    describes every waiting instance of the account and region in one call and records the destination state
    when the provider reports it. `issued=True` (a retried task that had asked already) only hands over.
    (A redelivered message asks again; every call here is idempotent.)"""
    spec = ACTIONS[action]
    workspace = Workspace.objects.select_related("cloud_account").get(pk=workspace_id)
    if workspace.state != spec.during:
        return
    provider = provider_for(workspace)
    if action == "terminate":
        found = provider.find_workspace_instances(workspace.pk, workspace.cloud_account_id)
        ids = {info.instance_id for info in found}
        if workspace.provider_instance_id:
            ids.add(workspace.provider_instance_id)
        if not issued:
            for instance_id in sorted(ids):
                provider.terminate(instance_id)
        if not ids:
            # Nothing was ever launched (or it is long gone): nothing to wait for.
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
        if not workspace.provider_instance_id:
            # A launch that died before recording its instance: the poller waits for the one found by its tag
            # (another duplicate still shutting down only delays deleting the group: the release task retries).
            Workspace.objects.filter(pk=workspace.pk, provider_instance_id="").update(provider_instance_id=min(ids))
            workspace.provider_instance_id = min(ids)
        cloud_wait(workspace=workspace)
        return
    instance_id = workspace.provider_instance_id
    if not issued:
        if action in ("stop", "hibernate"):
            provider.stop(instance_id, hibernate=action == "hibernate")
        else:
            provider.start(instance_id)
    cloud_wait(workspace=workspace)


@dataclass(frozen=True)
class UpdateResult:
    workspace: Workspace
    resize_job: ProvisionJob | None = None


def workspace_update(
    *,
    actor: Actor,
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


def _resize_request(*, actor: Actor, workspace: Workspace, instance_type: str, size: str) -> ProvisionJob:
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
    finish_job(job, ProvisionJob.Status.SUCCEEDED)


def workspace_resize_failed(*, job_id: str, code: str, message: str) -> None:
    job = ProvisionJob.objects.select_related("workspace").get(pk=job_id)
    record_transition(
        workspace=job.workspace, to_state=S.STOPPED, expected_from=[S.RESIZING], reason=f"resize failed: {code}"
    )
    finish_job(job, ProvisionJob.Status.FAILED, code=code, message=message)


def finish_job(job: ProvisionJob, status: str, *, code: str = "", message: str = "") -> None:
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
    """The longest TTL an extension may set from now (ttl_limit for the workspace's project and template)."""
    return ttl_limit(project=workspace.project, template_snapshot=workspace.template_snapshot)


def ttl_limit(*, project: Project, template_snapshot: dict) -> int:
    """The longest TTL a launch or an extension may set from now: the platform's cap, lowered by the project's
    policy and by the template's."""
    limits = [settings.CARREL_MAX_TTL_HOURS]
    if project.max_ttl_hours:
        limits.append(project.max_ttl_hours)
    template_limit = (template_snapshot.get("instance_defaults") or {}).get("max_ttl_hours")
    if isinstance(template_limit, int | float) and template_limit > 0:
        limits.append(int(template_limit))
    return min(limits)


def ttl_refused(limit: int, *, asked: float, field: str) -> ValidationFailed:
    return ValidationFailed(
        f"The TTL can be at most {limit} hours from now.",
        code="TTL_LIMIT_EXCEEDED",
        details=f"Asked for {asked:g} hours; the limit is {limit} hours.",
        fields={field: [f"At most {limit} hours from now."]},
        remediation=f"Ask for fewer hours, or extend again later; the limit is {limit} hours from now.",
    )


@transaction.atomic
def workspace_extend(*, actor: Actor, workspace: Workspace, hours: float | None) -> Workspace:
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
    metadata: dict = {"hours": hours}
    with transaction.atomic():
        if workspace.state in (S.RUNNING, S.STARTING, S.RESUMING):
            # More hours of a running machine are more cost: held against the allocation like a start (or refused).
            hold = reservations.hold(
                project_id=workspace.project_id,
                member_id=workspace.owner_id,
                hourly_rate=workspace.hourly_rate,
                storage_monthly_rate=workspace.storage_monthly_rate,
                expires_at=now + timedelta(hours=hours),
                now=now,
            )
            if hold is not None:
                metadata["reserved"] = str(hold.reserve(workspace_id=workspace.pk, reason="extend").amount)
        workspace.expires_at = base + timedelta(hours=hours)
        workspace.save(update_fields=["expires_at", "updated_at"])
        metadata["expires_at"] = workspace.expires_at.isoformat()
        audit_record(
            actor=actor,
            action="workspace.extend",
            target=workspace,
            organization=workspace.organization,
            metadata=metadata,
        )
    return workspace


def workspaces_stop_expired() -> list[str]:
    """Stop running workspaces whose TTL has passed. Returns their ids."""
    stopped = []
    for workspace in Workspace.objects.filter(state=S.RUNNING, expires_at__lte=timezone.now()).select_related(
        "project", "owner"
    ):
        try:
            workspace_act(actor=SYSTEM, workspace=workspace, action="stop", reason="TTL expired")
            stopped.append(workspace.pk)
        except Conflict:
            continue
    return stopped
