"""Celery tasks: they take ids, call services, are safe to run twice, and retry transient trouble."""

import logging

from celery import Task, shared_task
from django.conf import settings
from django.core.cache import cache

from workspaces import cloud, dispatch, services
from workspaces.models import CloudAccount
from workspaces.services import poller, reconcile

logger = logging.getLogger("carrel.workspaces")
RETRYABLE = (cloud.TransientCloudError, services.StillWaiting)


# A launch retries sooner than other work: a dead worker's launch is resumed only once its lease (renewed up
# to the next retry) has run out, and that must happen well within two minutes.
LAUNCH_MAX_BACKOFF = 30


def backoff(retries: int, ceiling: int = 60) -> int:
    delay: int = 2 ** (retries + 1)  # int ** int is typed Any (a negative exponent gives a float)
    return min(delay, ceiling)


# Waiting is never a sleep: a task that has asked the cloud for something hands the wait to the poller
# (services.poller), whose tick describes every waiting instance of a cloud account and region in one call.
# Errors retry with backoff, at most MAX_ERRORS in a row; waiting is bounded by time (a launch by
# CARREL_LAUNCH_TIMEOUT_SECONDS, an action by CARREL_TRANSITION_STUCK_SECONDS, then the reconciler's).
MAX_ERRORS = 10


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def provision_workspace(self: Task, job_id: str, errors: int = 0) -> None:
    try:
        services.workspace_provision(job_id=job_id)
    except cloud.TransientCloudError as error:
        if errors + 1 >= MAX_ERRORS or services.launch_timed_out(job_id=job_id):
            services.workspace_launch_failed(job_id=job_id, code=error.code, message=str(error))
            return
        countdown = backoff(errors, LAUNCH_MAX_BACKOFF)
        # The job stays leased while the retry waits, so the launch sweep does not take it over.
        services.job_renew_lease(job_id=job_id, seconds=countdown)
        logger.info("Launch job %s will retry in %ss: %s", job_id, countdown, error)
        raise self.retry(exc=error, countdown=countdown, kwargs={"errors": errors + 1}) from error


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def drive_workspace(self: Task, workspace_id: str, action: str, issued: bool = False, errors: int = 0) -> None:
    try:
        services.workspace_drive(workspace_id=workspace_id, action=action, issued=issued)
    except cloud.TransientCloudError as error:
        if errors + 1 >= MAX_ERRORS:
            logger.error("Giving up %s of %s: %s; the reconciler will repair it", action, workspace_id, error)
            return
        raise self.retry(
            exc=error, countdown=backoff(errors), kwargs={"issued": issued, "errors": errors + 1}
        ) from error
    except cloud.PermanentCloudError as error:
        # The provider refused; the reconciler puts the workspace back in the state the cloud reports.
        logger.error("%s of %s refused by the provider: %s", action, workspace_id, error)


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def poll_cloud(self: Task, account_id: str, region: str, errors: int = 0) -> None:
    """One tick of the cloud poller for one account and region (scheduled by dispatch.poll_cloud, at most
    one at a time); schedules the next while workspaces still wait."""
    # No longer scheduled: from here on, a wait handed over after this tick has read the workspaces
    # schedules the next tick itself.
    cache.delete(dispatch.poll_scheduled_key(account_id, region))
    try:
        report = poller.cloud_poll(account_id=account_id, region=region)
    except cloud.CloudError as error:
        if errors + 1 >= MAX_ERRORS:
            # The beat sweep schedules a fresh tick; launches meanwhile end at their timeout.
            logger.error("Polling %s/%s gave up after %d errors: %s", account_id, region, errors + 1, error)
            return
        countdown = backoff(errors)
        # Marked scheduled while the retry waits, so that handed-over waits do not schedule more ticks.
        cache.set(dispatch.poll_scheduled_key(account_id, region), 1, timeout=countdown + 60)
        logger.info("Polling %s/%s will retry in %ss: %s", account_id, region, countdown, error)
        raise self.retry(exc=error, countdown=countdown, kwargs={"errors": errors + 1}) from error
    if report.locked or report.waiting:
        # Still waiting, or another tick was running (it may have read the workspaces before the wait that
        # scheduled this one): look again after the interval.
        dispatch.poll_cloud(account_id, region)


@shared_task(acks_late=True, ignore_result=True)
def finish_cloud_waits(account_id: str, region: str, reports: list[dict]) -> None:
    """Record the moves a tick found. Should it fail, the workspaces still wait and the next tick looks again."""
    poller.cloud_waits_finish(account_id=account_id, region=region, reports=reports)


@shared_task(ignore_result=True)
def poll_cloud_accounts() -> None:
    """Beat's safety net: a tick for every account and region with a workspace waiting for the cloud, in case
    a scheduled tick was lost with its worker (one is scheduled at most once)."""
    poller.cloud_poll_schedule_all()


@shared_task(bind=True, acks_late=True, max_retries=10, ignore_result=True)
def resize_workspace(self: Task, job_id: str) -> None:
    try:
        services.workspace_resize_apply(job_id=job_id)
    except cloud.TransientCloudError as error:
        if self.max_retries is not None and self.request.retries >= self.max_retries:
            services.workspace_resize_failed(job_id=job_id, code=error.code, message=str(error))
            return
        raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error
    except cloud.PermanentCloudError as error:
        services.workspace_resize_failed(job_id=job_id, code=error.code, message=error.message)


@shared_task(bind=True, acks_late=True, max_retries=120, ignore_result=True)
def release_security_group(self: Task, workspace_id: str) -> None:
    try:
        services.workspace_release_security_group(workspace_id=workspace_id)
    except RETRYABLE as error:
        raise self.retry(exc=error, countdown=max(settings.CARREL_LAUNCH_POLL_SECONDS, 5)) from error


@shared_task(bind=True, acks_late=True, max_retries=10, ignore_result=True)
def sync_workspace_firewall(self: Task, workspace_id: str) -> None:
    try:
        services.workspace_sync_firewall(workspace_id=workspace_id)
    except cloud.TransientCloudError as error:
        raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error


@shared_task(ignore_result=True)
def stop_expired_workspaces() -> None:
    stopped = services.workspaces_stop_expired()
    if stopped:
        logger.info("Stopped %d workspace(s) whose TTL passed", len(stopped))


@shared_task(ignore_result=True)
def reconcile_workspaces() -> None:
    """Fan out: one task per cloud account, so a slow or broken account delays nobody else."""
    for account_id in CloudAccount.objects.order_by("pk").values_list("pk", flat=True):
        reconcile_cloud_account.delay(account_id)


@shared_task(ignore_result=True)
def reconcile_cloud_account(account_id: str) -> None:
    report = reconcile.cloud_account_reconcile(account_id=account_id)
    logger.info(
        "Reconciled cloud account %s: %d workspaces, %d repaired, %d orphans (%d terminated)%s",
        account_id,
        report.checked,
        len(report.repaired),
        len(report.orphans),
        len(report.orphans_terminated),
        f"; failed: {report.failed[account_id]}" if account_id in report.failed else "",
    )


@shared_task(ignore_result=True)
def resume_stalled_launches() -> None:
    resumed = reconcile.launches_resume_stalled()
    if resumed:
        logger.warning("Resumed %d launch(es) whose worker stopped: %s", len(resumed), ", ".join(resumed))
