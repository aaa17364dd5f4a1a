"""The one place that enqueues workspace tasks. Services call these; nothing else imports the tasks.

Each enqueue waits for the surrounding transaction to commit (at once outside one), so a worker never
reads a row that is not there yet, and a rolled-back request enqueues nothing.
"""

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

# A scheduled poll that never ran (lost with its worker) stops blocking new ones this long after it was due.
POLL_SCHEDULE_GRACE_SECONDS = 30


def provision_workspace(job_id: str) -> None:
    from workspaces import tasks

    transaction.on_commit(lambda: tasks.provision_workspace.delay(job_id))


def drive_workspace(workspace_id: str, action: str) -> None:
    from workspaces import tasks

    transaction.on_commit(lambda: tasks.drive_workspace.delay(workspace_id, action))


def resize_workspace(job_id: str) -> None:
    from workspaces import tasks

    transaction.on_commit(lambda: tasks.resize_workspace.delay(job_id))


def sync_workspace_firewall(workspace_id: str) -> None:
    from workspaces import tasks

    transaction.on_commit(lambda: tasks.sync_workspace_firewall.delay(workspace_id))


def release_security_group(workspace_id: str) -> None:
    from workspaces import tasks

    transaction.on_commit(lambda: tasks.release_security_group.delay(workspace_id))


def poll_scheduled_key(account_id: str, region: str) -> str:
    """Set while a tick of the cloud poller for this account and region is scheduled."""
    return f"poller:scheduled:{account_id}:{region}"


def poll_cloud(account_id: str, region: str, *, countdown: float | None = None) -> None:
    """Schedule one tick of the cloud poller for this account and region, after `countdown` seconds
    (CARREL_LAUNCH_POLL_SECONDS by default), unless one is scheduled already: a burst of launches shares it."""
    from workspaces import tasks

    delay = settings.CARREL_LAUNCH_POLL_SECONDS if countdown is None else countdown

    def enqueue() -> None:
        if cache.add(poll_scheduled_key(account_id, region), 1, timeout=int(delay + POLL_SCHEDULE_GRACE_SECONDS)):
            tasks.poll_cloud.apply_async((account_id, region), countdown=delay)

    transaction.on_commit(enqueue)


def finish_cloud_waits(account_id: str, region: str, reports: list[dict]) -> None:
    """Record moves the cloud poller's tick found (the provider's reports go with them)."""
    from workspaces import tasks

    transaction.on_commit(lambda: tasks.finish_cloud_waits.delay(account_id, region, reports))
