"""Launching: validate and record a launch; a task does the cloud work."""

import dataclasses
import ipaddress
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from budgets import prices
from budgets.services import reservations
from idle.services.setup import idle_setup_at_launch
from platform_site.errors import Conflict, NotFound, ValidationFailed
from projects.models import Project, ProjectRole
from projects.services import require_project_role
from templates.selectors import template_for
from workspaces import dispatch, sizing
from workspaces.models import (
    CloudAccount,
    FirewallRule,
    ProvisionJob,
    Workspace,
)
from workspaces.services.access import SSH_PORT, S, validate_workspace_name
from workspaces.services.lifecycle import ttl_limit, ttl_refused
from workspaces.services.profiles import default_cloud_account
from workspaces.services.provisioning import initial_launch_steps
from workspaces.services.transitions import record_transition

logger = logging.getLogger("carrel.workspaces")

# --- Launch ---------------------------------------------------------------------------------------


@dataclass
class LaunchResult:
    workspace: Workspace
    job: ProvisionJob


def single_host_cidr(ip: str | None) -> str | None:
    if not ip:
        return None
    address = ipaddress.ip_address(ip)
    return f"{address}/{32 if address.version == 4 else 128}"


def _default_rules(*, workspace: Workspace, snapshot: dict, client_ip: str | None, actor: User) -> list[FirewallRule]:
    """SSH and the template's service ports, open only to the caller's address."""
    cidr = single_host_cidr(client_ip)
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
    actor: User,
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
    budget: str | None = None,
    ttl_hours: float | None = None,
    idle: dict | None = None,
) -> LaunchResult:
    """Validate and record a launch; a Celery task (enqueued on commit) does the cloud work.

    The launch reserves its estimated cost against the project's allocation (budgets.services.reservations),
    under the allocation's row lock: 403 BUDGET_EXCEEDED or MEMBER_CAP_EXCEEDED when it would not fit.
    `budget`, if given, must name the project's pool (its id or name). `ttl_hours` (0 or None: no TTL) stops the
    workspace that many hours from now, within the project's and the template's limits; the budget holds the cost
    of that many hours (else of CARREL_BUDGET_RESERVATION_HOURS). `idle` (profile, enabled and threshold overrides)
    goes over the project's idle default and the template's `idle_defaults` (idle.profiles.launch_policy)."""
    require_project_role(user=actor, project=project, minimum=ProjectRole.MEMBER)
    reservations.resolve_budget(project_id=project.pk, budget=budget)
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
    volume_type = storage.get("ebs_volume_type") or "gp3"
    volume_lines = prices.storage_lines(
        region=region,
        volume_type=volume_type,
        size_gb=root_gb,
        iops=storage.get("iops"),
        throughput=storage.get("throughput"),
    )
    snapshot = dataclasses.asdict(resolved)
    snapshot["template_id"] = view.template.pk
    expires_at = None
    if ttl_hours:
        limit = ttl_limit(project=project, template_snapshot=snapshot)
        if ttl_hours > limit:
            raise ttl_refused(limit, asked=ttl_hours, field="ttl_hours")
        expires_at = timezone.now() + timedelta(hours=ttl_hours)
    storage_monthly_rate = prices.monthly_rate(volume_lines)

    with transaction.atomic():
        # The project row lock serialises launches with project deletion (and budget checks).
        Project.objects.select_for_update().get(pk=project.pk)
        if Workspace.objects.filter(organization=project.organization, name=name).live().exists():
            raise Conflict(f"A workspace named '{name}' exists.", code="NAME_TAKEN", fields={"name": ["In use."]})
        # Locks the allocation row: concurrent launches each see what the ones before them reserved.
        hold = reservations.hold(
            project_id=project.pk,
            member_id=actor.pk,
            hourly_rate=rate,
            storage_monthly_rate=storage_monthly_rate,
            expires_at=expires_at,
        )
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
                    root_volume_type=volume_type,
                    root_volume_iops=storage.get("iops"),
                    root_volume_throughput=storage.get("throughput"),
                    storage_lines=[line.as_json() for line in volume_lines],
                    storage_monthly_rate=storage_monthly_rate,
                    hibernation_capable=hibernate,
                    hourly_rate=rate,
                    expires_at=expires_at,
                )
        except IntegrityError:
            raise Conflict(f"A workspace named '{name}' exists.", code="NAME_TAKEN") from None
        record_transition(
            workspace=workspace, to_state=S.LAUNCHING, expected_from=[S.PENDING], actor=actor, reason="launch requested"
        )
        reservation = hold.reserve(workspace_id=workspace.pk, reason="launch") if hold else None
        idle_setup_at_launch(workspace=workspace, template_defaults=resolved.idle_defaults, requested=idle)
        job = ProvisionJob.objects.create(workspace=workspace, kind="launch", steps=initial_launch_steps())
        FirewallRule.objects.bulk_create(
            _default_rules(workspace=workspace, snapshot=snapshot, client_ip=client_ip, actor=actor)
        )
        audit_record(
            actor=actor,
            action="workspace.launch",
            target=workspace,
            organization=project.organization,
            metadata={
                "instance_type": chosen.name,
                "region": region,
                "template": view.template.name,
                "job": job.pk,
                "reserved": str(reservation.amount) if reservation else None,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        dispatch.provision_workspace(job.pk)
    return LaunchResult(workspace=workspace, job=job)
