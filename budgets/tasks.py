"""Money tasks. They take ids and call services (budgets.ledger, budgets.services)."""

import logging

from celery import shared_task

from budgets import ledger

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
def apply_budget_thresholds() -> None:
    """Placeholder until enforcement lands (budgets/services/enforcement.py)."""


@shared_task(acks_late=True, ignore_result=True)
def send_cost_digests() -> None:
    """Placeholder until the daily digest lands (budgets/services/enforcement.py)."""
