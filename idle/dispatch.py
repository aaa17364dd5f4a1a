"""The one place that enqueues idle-detection tasks. Each enqueue waits for the surrounding transaction to
commit (at once outside one), so a worker never reads a row that is not there yet."""

from datetime import datetime

from django.db import transaction


def act_on_idle_workspace(workspace_id: str) -> None:
    from idle import tasks

    transaction.on_commit(lambda: tasks.act_on_idle_workspace.delay(workspace_id))


def send_idle_warning(workspace_id: str, warned_at: datetime) -> None:
    from idle import tasks

    stamp = warned_at.isoformat()
    transaction.on_commit(lambda: tasks.send_idle_warning.delay(workspace_id, stamp))


def fetch_cloudwatch_signals(cloud_account_id: str, region: str) -> None:
    from idle import tasks

    transaction.on_commit(lambda: tasks.fetch_cloudwatch_signals.delay(cloud_account_id, region))
