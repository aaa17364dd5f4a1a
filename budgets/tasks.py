"""Money tasks. They take ids and call services (budgets.ledger, budgets.services)."""

import logging
from datetime import date

from celery import Task, shared_task
from django.core.mail import get_connection
from django.utils import timezone

from budgets import ledger
from budgets.models import BudgetAlert
from projects.models import ProjectMember

logger = logging.getLogger("carrel.budgets")


@shared_task(acks_late=True, ignore_result=True)
def close_ledger_days() -> int:
    """Close every workspace's ledger at its organization's last midnight. Each workspace is its own
    transaction under its row lock: a worker killed in the middle loses nothing, and the next run (or a
    redelivery) finishes the rest without writing anything twice."""
    written = 0
    for workspace_id in ledger.workspaces_to_close():
        written += ledger.close_day(workspace_id=workspace_id)
    if written:
        logger.info("Ledger closed at midnight: %d rows", written)
    return written


@shared_task(acks_late=True, ignore_result=True)
def apply_budget_thresholds() -> int:
    """Fire the thresholds crossed in the current periods (each once per period; budgets.services.enforcement)."""
    from budgets.services import enforcement

    return len(enforcement.apply_thresholds())


@shared_task(acks_late=True, ignore_result=True)
def send_cost_digests() -> int:
    """Claim and enqueue today's daily digests (organizations past 07:00 local; once a day each)."""
    from budgets.services import digests

    return len(digests.digests_due())


@shared_task(acks_late=True, ignore_result=True)
def compact_open_spend_sums() -> int:
    """Fold the changes PostgreSQL appended to the kept sums of open intervals (budgets.open_sums)."""
    from budgets import open_sums

    return open_sums.compact()


def backoff(retries: int) -> int:
    delay: int = 30 * 2**retries
    return min(delay, 1800)


@shared_task(bind=True, acks_late=True, max_retries=5, ignore_result=True)
def send_budget_alert_email(self: Task, alert_id: int) -> None:
    """E-mail an alert to whom it concerns, once (`notified_at`); transient mail failures are retried."""
    from budgets import emails

    alert = BudgetAlert.objects.select_related("pool", "project__organization").filter(pk=alert_id).first()
    if alert is None or alert.notified_at is not None:
        return
    messages = emails.alert_emails(alert)
    try:
        if messages:
            get_connection().send_messages(messages)
    except Exception as error:
        logger.warning("Budget alert %s e-mail failed: %s", alert_id, type(error).__name__)
        raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error
    BudgetAlert.objects.filter(pk=alert.pk, notified_at__isnull=True).update(notified_at=timezone.now())
    logger.info("Budget alert %s e-mailed to %d recipient(s)", alert_id, len(messages))


@shared_task(bind=True, acks_late=True, max_retries=5, ignore_result=True)
def send_cost_digest(self: Task, member_id: int, day: str) -> None:
    """Send one daily digest (claimed for `day` by send_cost_digests)."""
    from budgets import emails
    from budgets.services import digests

    member = (
        ProjectMember.objects.select_related("user", "project__organization")
        .filter(pk=member_id, cost_digest=True, project__deleted_at__isnull=True)
        .first()
    )
    if member is None:
        return
    digest = digests.digest_of(project=member.project, today=date.fromisoformat(day))
    try:
        emails.digest_email(digest=digest, to=member.user.email).send()
    except Exception as error:
        logger.warning("Cost digest for member %s failed: %s", member_id, type(error).__name__)
        raise self.retry(exc=error, countdown=backoff(self.request.retries)) from error
