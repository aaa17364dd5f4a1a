"""Provisioning: the launch job's cloud work, resumable after a crash and safe to repeat."""

import logging
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from idle.models import AgentToken
from idle.tokens import agent_token_secret
from templates.cloud_init import render_user_data
from workspaces import cloud, dispatch, sizing
from workspaces.models import (
    ProvisionJob,
    Workspace,
)
from workspaces.services.access import S, StillWaiting
from workspaces.services.firewall import ingress_for
from workspaces.services.profiles import provider_for
from workspaces.services.transitions import record_transition

logger = logging.getLogger("carrel.workspaces")

LAUNCH_STEPS = [
    ("queued", "Queued", 5),
    ("security_group", "Security group ready", 25),
    ("instance", "Instance requested", 50),
    ("running", "Instance running", 100),
]


def initial_launch_steps() -> list[dict]:
    return [
        {"name": name, "description": description, "status": "pending", "at": None}
        for name, description, _ in LAUNCH_STEPS
    ]


def mark_step(job: ProvisionJob, step_name: str, status: str = "done", message: str = "") -> None:
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


def resource_tags(workspace: Workspace) -> dict[str, str]:
    return {
        cloud.WORKSPACE_TAG: workspace.pk,
        cloud.CLOUD_ACCOUNT_TAG: str(workspace.cloud_account_id),  # as the tag list writes it
        cloud.ORGANIZATION_TAG: workspace.organization_id,
        "carrel:project": workspace.project_id,
        "carrel:owner": workspace.owner.email,
        "carrel:template": workspace.template_name,
    }


def launch_timed_out(*, job_id: str) -> bool:
    """Whether the launch has run out of time (CARREL_LAUNCH_TIMEOUT_SECONDS since it was requested)."""
    created = ProvisionJob.objects.filter(pk=job_id).values_list("created_at", flat=True).first()
    limit = timedelta(seconds=settings.CARREL_LAUNCH_TIMEOUT_SECONDS)
    return created is None or timezone.now() - created > limit


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
    provider = provider_for(workspace)
    try:
        if workspace.provider_instance_id:
            # Launched on an earlier run (a retry, or the launch sweep resuming it): the poller waits for it.
            job_renew_lease(job_id=job.pk, seconds=settings.CARREL_LAUNCH_POLL_SECONDS)
            _wait_for_running(workspace)
            return
        # A first attempt cannot have an instance yet; any later one (a retry, a redelivered message after a
        # worker died) must look for the tagged instance before asking for one.
        first_attempt = job.attempts == 0
        ProvisionJob.objects.filter(pk=job.pk).update(status=ProvisionJob.Status.RUNNING, attempts=job.attempts + 1)
        job.status, job.attempts = ProvisionJob.Status.RUNNING, job.attempts + 1
        job_renew_lease(job_id=job.pk, seconds=settings.CARREL_LAUNCH_POLL_SECONDS)
        mark_step(job, "queued")
        try:
            _prepare_security_group(provider, workspace)
            mark_step(job, "security_group")
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
        mark_step(job, "instance", message=instance.instance_id)
        # Not one DescribeInstances per launch: the poller describes every waiting instance of the account
        # and region in one call, and finishes this launch (finish_launch) when EC2 reports it running.
        _wait_for_running(workspace)
    except cloud.PermanentCloudError as error:
        workspace_launch_failed(job_id=job.pk, code=error.code, message=error.message)
    except cloud.TransientCloudError as error:
        job.error_message = str(error)[:2000]
        job.save(update_fields=["error_message", "updated_at"])
        raise


def _wait_for_running(workspace: Workspace) -> None:
    from workspaces.services.poller import cloud_wait  # the poller finishes launches with finish_launch below

    cloud_wait(workspace=workspace)


def spot_rate(provider: cloud.AwsProvider, workspace: Workspace, info: cloud.InstanceInfo) -> dict[str, Any]:
    """For a spot instance that has just started: the spot price in its zone now (EC2's
    DescribeSpotPriceHistory), to record as its rate for this run; no assumed discount. Empty when it is not
    spot; the on-demand rate (an upper bound) when EC2 quotes nothing."""
    if not workspace.spot:
        return {}
    try:
        price = provider.spot_price(workspace.instance_type, info.availability_zone)
    except cloud.CloudError as error:
        logger.warning("No spot price for %s (%s); billing the on-demand rate", workspace.pk, error)
        return {"hourly_rate": sizing.hourly_rate(workspace.instance_type, workspace.region, spot=True)}
    if price is None:
        # Not the previous run's spot price: the on-demand rate, which spot never bills above.
        return {"hourly_rate": sizing.hourly_rate(workspace.instance_type, workspace.region, spot=True)}
    return {"hourly_rate": price.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)}


def finish_launch(job: ProvisionJob, workspace: Workspace, info: cloud.InstanceInfo) -> None:
    """The provider reports the launched instance running (the poller saw it): record it, close the job."""
    moved = record_transition(
        workspace=workspace,
        to_state=S.RUNNING,
        expected_from=[S.LAUNCHING],
        reason="the provider reports running",
        cloud_launch_time=info.launch_time,
        **(spot_rate(provider_for(workspace), workspace, info) if workspace.spot else {}),
        public_ip=info.public_ip,
        private_ip=info.private_ip,
        launch_time=info.launch_time or timezone.now(),
    )
    mark_step(job, "running")
    job.status, job.progress, job.finished_at = ProvisionJob.Status.SUCCEEDED, 100, timezone.now()
    job.lease_expires_at = None
    job.save(update_fields=["status", "progress", "finished_at", "lease_expires_at", "updated_at"])
    if not moved:
        logger.info("Workspace %s left launching while provisioning; nothing more to do", workspace.pk)


# The name bench/lists_load.py calls to leave rows shaped as real launches leave them.
_finish_launch = finish_launch


def _prepare_security_group(provider: cloud.AwsProvider, workspace: Workspace) -> None:
    created = False
    if not workspace.security_group_id:
        group_id, created = provider.ensure_security_group(workspace.pk, resource_tags(workspace))
        Workspace.objects.filter(pk=workspace.pk).update(security_group_id=group_id)
        workspace.security_group_id = group_id
    provider.set_ingress(workspace.security_group_id, ingress_for(workspace), current=[] if created else None)


def _adopt_or_launch(
    provider: cloud.AwsProvider, workspace: Workspace, *, look_for_existing: bool = True
) -> cloud.InstanceInfo:
    """The instance tagged with this workspace's id if one exists (a retry or a dead worker), else a new one."""
    account_id = workspace.cloud_account_id
    assert account_id is not None  # launch refuses a workspace without a cloud account (NO_CLOUD_ACCOUNT)
    existing = provider.find_workspace_instances(workspace.pk, account_id) if look_for_existing else []
    if existing:
        instance = min(existing, key=lambda info: (info.launch_time is None, info.launch_time, info.instance_id))
        for extra in existing:
            if extra.instance_id != instance.instance_id:
                logger.warning("Terminating duplicate instance %s of %s", extra.instance_id, workspace.pk)
                provider.terminate(extra.instance_id)
    else:
        snapshot = workspace.template_snapshot
        account = workspace.cloud_account
        assert account is not None
        instance = provider.launch(
            cloud.LaunchSpec(
                workspace_id=workspace.pk,
                name=workspace.name,
                image_id=provider.image_for(snapshot.get("base_os") or "ubuntu-24.04"),
                instance_type=workspace.instance_type,
                security_group_id=workspace.security_group_id,
                user_data=render_user_data(snapshot, workspace_id=workspace.pk, agent_token=_agent_secret(workspace)),
                tags=resource_tags(workspace),
                root_volume_gb=workspace.root_volume_gb,
                root_volume_type=workspace.root_volume_type,
                root_volume_iops=workspace.root_volume_iops,
                root_volume_throughput=workspace.root_volume_throughput,
                hibernate=workspace.hibernation_capable,
                spot=workspace.spot,
                subnet_id=account.subnet_id,
                key_name=account.key_name,
            )
        )
    if workspace.provider_instance_id != instance.instance_id:
        Workspace.objects.filter(pk=workspace.pk).update(provider_instance_id=instance.instance_id)
        workspace.provider_instance_id = instance.instance_id
    return instance


def _agent_secret(workspace: Workspace) -> str:
    """The agent token the user data installs (derived from the row the launch wrote, so a retried launch
    renders the same user data); empty for a workspace launched before idle detection, which gets no agent."""
    token = AgentToken.objects.filter(workspace_id=workspace.pk).first()
    return agent_token_secret(token) if token is not None else ""


def workspace_launch_failed(*, job_id: str, code: str, message: str) -> None:
    """A launch that cannot succeed: record the provider's message and leave nothing behind in the cloud."""
    job = ProvisionJob.objects.select_related("workspace__cloud_account").get(pk=job_id)
    workspace = job.workspace
    provider = provider_for(workspace)
    cleanup_errors = []
    launched_at = None
    try:
        instances = provider.find_workspace_instances(workspace.pk, workspace.cloud_account_id)
        # An instance that did exist is billed from its launch (the ledger), not from the request.
        launched_at = min((info.launch_time for info in instances if info.launch_time), default=None)
        for instance in instances:
            provider.terminate(instance.instance_id)
        if instances:
            # The group can go once the instances are gone: a task looks again after a countdown.
            dispatch.release_security_group(workspace.pk)
        elif workspace.security_group_id:
            provider.delete_security_group(workspace.security_group_id)
    except cloud.CloudError as error:
        cleanup_errors.append(str(error))
        logger.warning("Cleanup after failed launch of %s incomplete: %s", workspace.pk, error)
    record_transition(
        workspace=workspace,
        to_state=S.ERROR,
        expected_from=[S.LAUNCHING, S.PENDING],
        reason=f"launch failed: {code}",
        cloud_launch_time=launched_at,
        error_message=f"{code}: {message}",
    )
    job.status, job.finished_at, job.lease_expires_at = ProvisionJob.Status.FAILED, timezone.now(), None
    job.error_code, job.error_message = (
        code,
        message + (f" (cleanup: {'; '.join(cleanup_errors)})" if cleanup_errors else ""),
    )
    job.save(update_fields=["status", "finished_at", "lease_expires_at", "error_code", "error_message", "updated_at"])


def workspace_release_security_group(*, workspace_id: str) -> None:
    """Delete the security group of a workspace whose launch failed, once its instances are terminated.
    StillWaiting while they are shutting down (EC2 refuses to delete a group still in use)."""
    workspace = Workspace.objects.select_related("cloud_account").get(pk=workspace_id)
    if not workspace.security_group_id or workspace.state not in (S.ERROR, S.TERMINATED):
        return
    provider = provider_for(workspace)
    remaining = provider.find_workspace_instances(workspace.pk, workspace.cloud_account_id)
    for instance in remaining:
        provider.terminate(instance.instance_id)
    if remaining:
        raise StillWaiting(f"{len(remaining)} instance(s) of {workspace.pk} still shutting down")
    try:
        provider.delete_security_group(workspace.security_group_id)
    except cloud.PermanentCloudError as error:
        if error.code == "DependencyViolation":
            raise StillWaiting(f"{workspace.security_group_id} is still in use") from error
        raise
    Workspace.objects.filter(pk=workspace.pk).update(security_group_id="")
