"""The one place that enqueues money tasks. Services call these; nothing else imports budgets.tasks.

Each enqueue waits for the surrounding transaction to commit, so the worker reads the alert (or the claimed
digest day) that was written, and a rolled-back run enqueues nothing."""

from django.db import transaction


def send_alert_email(alert_id: int) -> None:
    from budgets import tasks

    transaction.on_commit(lambda: tasks.send_budget_alert_email.delay(alert_id))


def send_cost_digest(member_id: int, day: str) -> None:
    from budgets import tasks

    transaction.on_commit(lambda: tasks.send_cost_digest.delay(member_id, day))
