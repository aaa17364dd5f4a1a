"""Reconciliation: compare the database with the cloud, one cloud account at a time, and repair drift.

Rules that keep tenants apart (several organizations may share one AWS account and region):
- an account looks only at instances tagged with its own cloud-account id and organization;
- an instance whose tag names a live workspace anywhere is never an orphan;
- an error in one account is recorded on that account and never stops the others.
"""

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from audit.services import audit_record
from platform_site.actors import SYSTEM
from workspaces import cloud, dispatch
from workspaces.models import CloudAccount, FirewallRule, OrphanedInstance, ProvisionJob, Workspace, WorkspaceState
from workspaces.services import record_transition

logger = logging.getLogger("carrel.workspaces")
S = WorkspaceState

# Where a workspace in a transitional state is going once the provider gets there.
HEADING_FOR: dict[str, str] = {
    S.STOPPING: S.STOPPED,
    S.HIBERNATING: S.HIBERNATED,
    S.STARTING: S.RUNNING,
    S.RESUMING: S.RUNNING,
}
# Driven by a task: the reconciler leaves them alone unless the provider already got there or they are stuck.
DRIVEN = frozenset({*HEADING_FOR, S.RESIZING})


@dataclasses.dataclass
class ReconcileReport:
    checked: int = 0
    repaired: list[str] = dataclasses.field(default_factory=list)
    orphans: list[str] = dataclasses.field(default_factory=list)
    orphans_terminated: list[str] = dataclasses.field(default_factory=list)
    firewalls_resynced: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    describe_calls: int = 0


def workspaces_reconcile(*, now: datetime | None = None) -> ReconcileReport:
    """Every cloud account in turn (the periodic task fans out one task per account instead)."""
    report = ReconcileReport()
    for account_id in CloudAccount.objects.order_by("pk").values_list("pk", flat=True):
        cloud_account_reconcile(account_id=account_id, now=now, report=report)
    return report


def cloud_account_reconcile(
    *, account_id: str, now: datetime | None = None, report: ReconcileReport | None = None
) -> ReconcileReport:
    """Reconcile one account. Any failure is recorded on the account (admin, daemon/status), not raised."""
    now = now or timezone.now()
    report = report if report is not None else ReconcileReport()
    account = CloudAccount.objects.filter(pk=account_id).first()
    if account is None:
        return report
    try:
        _reconcile_account(account, report, now)
    except Exception as error:  # noqa: BLE001 - whatever broke this account must not stop the next one
        message = f"{type(error).__name__}: {error}"[:2000]
        logger.warning("Reconciling cloud account %s failed: %s", account.pk, message)
        CloudAccount.objects.filter(pk=account.pk).update(
            last_reconciled_at=now, last_reconcile_error=message, last_reconcile_error_at=now
        )
        report.failed[account.pk] = message
    else:
        CloudAccount.objects.filter(pk=account.pk).update(last_reconciled_at=now, last_reconcile_error="")
    return report


def _provider_state(workspace: Workspace, info: cloud.InstanceInfo) -> str | None:
    """The steady state the provider's report means for this workspace, or None while it is still moving."""
    if info.state == "running":
        return S.RUNNING
    if info.state == "stopped":
        hibernated = workspace.state in (S.HIBERNATING, S.HIBERNATED, S.RESUMING)
        return S.HIBERNATED if hibernated or "hibernat" in info.state_reason.lower() else S.STOPPED
    return None


def implied_state(workspace: Workspace, info: cloud.InstanceInfo | None, *, stuck: bool) -> str | None:
    """The state the provider's report implies, or None when there is nothing to repair."""
    if info is None or info.state == "terminated":
        return S.TERMINATED
    if info.state == "shutting-down":
        return S.TERMINATING if workspace.state != S.TERMINATING else None
    if workspace.state in (S.LAUNCHING, S.TERMINATING, S.PENDING):
        return None  # the cloud poller finishes these (and the launch sweep resumes a launch it lost)
    reported = _provider_state(workspace, info)
    if reported is None or reported == workspace.state:
        return None
    if workspace.state in DRIVEN:
        # A task is carrying out the action. Follow the provider at once when it reached the destination;
        # when it contradicts the action (the task died, or the provider refused), only once stuck.
        if HEADING_FOR.get(workspace.state) == reported or stuck:
            return reported
        return None
    return reported


def _reconcile_account(account: CloudAccount, report: ReconcileReport, now: datetime) -> None:
    live = list(
        Workspace.objects.filter(cloud_account=account)
        .exclude(state__in=[S.TERMINATED, S.PENDING])
        .select_related("cloud_account")
    )
    by_region: dict[str, list[Workspace]] = {account.region: []}
    for workspace in live:
        by_region.setdefault(workspace.region or account.region, []).append(workspace)
    stuck_before = now - timedelta(seconds=settings.CARREL_TRANSITION_STUCK_SECONDS)
    for region, workspaces in sorted(by_region.items()):
        provider = cloud.AwsProvider(account, region=region)
        tracked = [w for w in workspaces if w.provider_instance_id]
        described = provider.describe(w.provider_instance_id for w in tracked) if tracked else {}
        report.describe_calls += 1 if tracked else 0
        for workspace in tracked:
            report.checked += 1
            info = described.get(workspace.provider_instance_id)
            implied = implied_state(workspace, info, stuck=workspace.state_changed_at <= stuck_before)
            if implied is None:
                continue
            extra: dict[str, Any] = {}
            if implied == S.RUNNING and info is not None:
                extra = {"public_ip": info.public_ip, "private_ip": info.private_ip}
            elif implied in (S.STOPPED, S.HIBERNATED, S.TERMINATED):
                extra = {"public_ip": None}
            if record_transition(
                workspace=workspace,
                to_state=implied,
                expected_from=[workspace.state],
                reason="reconciled with the provider",
                cloud_at=info.transition_time if info is not None and implied != S.RUNNING else None,
                cloud_launch_time=info.launch_time if info is not None and implied == S.RUNNING else None,
                **extra,
            ):
                report.repaired.append(workspace.pk)
        _reconcile_firewalls(provider, workspaces, report)
        _reconcile_orphans(account, provider, report, now)


def _reconcile_firewalls(provider: cloud.AwsProvider, workspaces: list[Workspace], report: ReconcileReport) -> None:
    """A security group whose ingress differs from the workspace's rules (a sync that gave up, a hand edit in
    the console) is synced again. One batched DescribeSecurityGroups per region."""
    guarded = [w for w in workspaces if w.security_group_id and w.state not in (S.TERMINATING, S.TERMINATED)]
    if not guarded:
        return
    actual = provider.ingress_of_groups(w.security_group_id for w in guarded)
    wanted: dict[str, set[tuple]] = {w.pk: set() for w in guarded}
    for rule in FirewallRule.objects.filter(workspace__in=guarded):
        wanted[rule.workspace_id].add((rule.protocol, rule.from_port, rule.to_port, rule.cidr))
    for workspace in guarded:
        group = actual.get(workspace.security_group_id)
        if group is not None and {rule.key() for rule in group} != wanted[workspace.pk]:
            dispatch.sync_workspace_firewall(workspace.pk)
            report.firewalls_resynced.append(workspace.pk)


def _reconcile_orphans(
    account: CloudAccount, provider: cloud.AwsProvider, report: ReconcileReport, now: datetime
) -> None:
    instances = [
        info
        for info in provider.list_account_instances(account.pk)
        if info.tags.get(cloud.ORGANIZATION_TAG) == account.organization_id
    ]
    tagged = {info.workspace_id for info in instances if info.workspace_id}
    # Live anywhere, not only in this account: a tag naming any live workspace is never an orphan.
    live_anywhere = set(Workspace.objects.filter(pk__in=tagged).live().values_list("pk", flat=True))
    grace = timedelta(minutes=account.orphan_grace_minutes)
    for info in instances:
        if info.workspace_id in live_anywhere:
            continue
        orphan, created = OrphanedInstance.objects.get_or_create(
            cloud_account=account,
            instance_id=info.instance_id,
            defaults={
                "workspace_tag": info.workspace_id or "",
                "state": info.state,
                "first_seen_at": now,
                "last_seen_at": now,
            },
        )
        if not created:
            OrphanedInstance.objects.filter(pk=orphan.pk).update(last_seen_at=now, state=info.state)
        report.orphans.append(info.instance_id)
        if created:
            logger.warning(
                "Instance %s is tagged for workspace %s, which is not live", info.instance_id, info.workspace_id
            )
        if account.terminate_orphans and orphan.terminated_at is None and orphan.first_seen_at <= now - grace:
            provider.terminate(info.instance_id)
            OrphanedInstance.objects.filter(pk=orphan.pk).update(terminated_at=now)
            report.orphans_terminated.append(info.instance_id)
            audit_record(
                actor=SYSTEM,
                action="cloud.orphan_terminated",
                target=orphan,
                organization=account.organization,
                metadata={"instance_id": info.instance_id, "workspace_tag": info.workspace_id or ""},
            )


# --- Launches whose worker died ------------------------------------------------------------------


def launches_resume_stalled(*, now: datetime | None = None, limit: int = 100) -> list[str]:
    """Re-enqueue launch jobs whose worker stopped renewing their lease. Returns the workspace ids.

    A running job's lease is renewed while its worker polls and whenever it schedules a retry, so an
    expired lease means the worker is gone. A job still queued for a long time (its message lost with a
    broker restart) is resumed too. The rerun adopts the tagged instance if RunInstances already ran.
    """
    now = now or timezone.now()
    queued_before = now - timedelta(seconds=settings.CARREL_LAUNCH_QUEUED_STALE_SECONDS)
    stalled = (
        ProvisionJob.objects.filter(kind="launch", workspace__state=S.LAUNCHING)
        .filter(
            Q(status=ProvisionJob.Status.RUNNING, lease_expires_at__lt=now)
            | Q(status=ProvisionJob.Status.RUNNING, lease_expires_at__isnull=True, updated_at__lt=queued_before)
            | Q(status=ProvisionJob.Status.QUEUED, updated_at__lt=queued_before)
        )
        .order_by("updated_at")[:limit]
    )
    resumed = []
    lease = timedelta(seconds=settings.CARREL_LAUNCH_LEASE_SECONDS)
    for job in stalled:
        # Conditional on the lease we read: of two sweeps running at once, one takes the job.
        taken = ProvisionJob.objects.filter(pk=job.pk, lease_expires_at=job.lease_expires_at, status=job.status).update(
            lease_expires_at=now + lease, attempts=F("attempts") + 1, updated_at=now
        )
        if taken:
            logger.warning("Resuming launch job %s of %s: its worker stopped", job.pk, job.workspace_id)
            dispatch.provision_workspace(job.pk)
            resumed.append(job.workspace_id)
    return resumed
