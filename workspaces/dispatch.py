"""The one place that enqueues workspace tasks. Services call these; nothing else imports the tasks.

Each enqueue waits for the surrounding transaction to commit (at once outside one), so a worker never
reads a row that is not there yet, and a rolled-back request enqueues nothing.
"""

from django.db import transaction


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
