"""Celery tasks: they take ids, call services, are safe to run twice, and retry transient trouble."""

import logging

from celery import shared_task

from workspaces import cloud, services

logger = logging.getLogger("carrel.workspaces")
RETRYABLE = (cloud.TransientCloudError, services.StillWaiting)


def backoff(retries: int) -> int:
    return min(2 ** (retries + 1), 60)


@shared_task(bind=True, acks_late=True, max_retries=10, ignore_result=True)
def provision_workspace(self, job_id: str) -> None:
    try:
        services.workspace_provision(job_id=job_id)
    except RETRYABLE as error:
        if self.request.retries >= self.max_retries:
            code = getattr(error, "code", "LAUNCH_TIMEOUT")
            services.workspace_launch_failed(job_id=job_id, code=code, message=str(error))
            return
        logger.info("Launch job %s will retry: %s", job_id, error)
        raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error


@shared_task(bind=True, acks_late=True, max_retries=10, ignore_result=True)
def drive_workspace(self, workspace_id: str, action: str) -> None:
    try:
        services.workspace_drive(workspace_id=workspace_id, action=action)
    except RETRYABLE as error:
        if self.request.retries >= self.max_retries:
            logger.error("Giving up %s of %s: %s; the reconciler will repair it", action, workspace_id, error)
            return
        raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error
    except cloud.PermanentCloudError as error:
        # The provider refused; the reconciler puts the workspace back in the state the cloud reports.
        logger.error("%s of %s refused by the provider: %s", action, workspace_id, error)


@shared_task(bind=True, acks_late=True, max_retries=10, ignore_result=True)
def sync_workspace_firewall(self, workspace_id: str) -> None:
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
    report = services.workspaces_reconcile()
    logger.info(
        "Reconciled %d workspaces: %d repaired, %d adopted, %d relaunched, %d orphans (%d terminated)",
        report.checked,
        len(report.repaired),
        len(report.adopted),
        len(report.relaunched),
        len(report.orphans),
        len(report.orphans_terminated),
    )
