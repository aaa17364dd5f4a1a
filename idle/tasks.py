"""Idle-detection tasks: they take ids, call services, and are safe to run twice."""

import logging

from celery import Task, shared_task
from django.utils.dateparse import parse_datetime

from idle import dispatch
from idle.models import WorkspaceIdle
from workspaces.cloud import CloudError
from workspaces.models import WorkspaceState

logger = logging.getLogger("carrel.idle")


def backoff(retries: int) -> int:
    delay: int = 30 * 2**retries
    return min(delay, 1800)


@shared_task(acks_late=True, ignore_result=True)
def sweep_idle_workspaces() -> int:
    """Every minute (beat): warn, clear warnings, and enqueue the actions (idle.services.sweep)."""
    from idle.services.sweep import idle_sweep

    result = idle_sweep()
    return len(result.warned) + len(result.acting)


@shared_task(acks_late=True, ignore_result=True)
def act_on_idle_workspace(workspace_id: str) -> None:
    """Hibernate or stop one workspace the sweep found idle, if it still is (idle.services.actions)."""
    from idle.services.actions import idle_act

    idle_act(workspace_id=workspace_id)


@shared_task(bind=True, acks_late=True, max_retries=5, ignore_result=True)
def send_idle_warning(self: Task, workspace_id: str, warned_at: str) -> None:
    """E-mail the owner the warning given at `warned_at`, unless it no longer holds (snoozed, used, acted on)."""
    from idle.emails import idle_warning_email

    state = (
        WorkspaceIdle.objects.select_related("workspace__owner", "workspace__project")
        .filter(pk=workspace_id, workspace__state=WorkspaceState.RUNNING)
        .first()
    )
    if state is None or state.warned_at is None or state.warned_at != parse_datetime(warned_at):
        return
    email = idle_warning_email(state=state)
    try:
        email.send()
    except Exception as error:
        logger.warning("Idle warning e-mail for %s failed: %s", workspace_id, type(error).__name__)
        raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error
    logger.info("Idle warning e-mailed for %s", workspace_id)


@shared_task(ignore_result=True)
def fetch_cloudwatch() -> int:
    """Every 5 minutes (beat): fan out one task per cloud account and region with workspaces to fetch for, so a
    slow or broken account delays nobody else."""
    from idle.cloudwatch import cloudwatch_targets

    targets = cloudwatch_targets()
    for account_id, region in targets:
        dispatch.fetch_cloudwatch_signals(account_id, region)
    return len(targets)


@shared_task(acks_late=True, ignore_result=True)
def fetch_cloudwatch_signals(cloud_account_id: str, region: str) -> None:
    from idle.cloudwatch import cloudwatch_fetch

    try:
        cloudwatch_fetch(cloud_account_id=cloud_account_id, region=region)
    except CloudError as error:
        # The next run (5 minutes) tries again; until then the data only grows staler, which is never idle.
        logger.warning("CloudWatch fetch for %s/%s failed: %s", cloud_account_id, region, error)
