"""The one place that enqueues invitation tasks (after the surrounding transaction commits)."""

from django.db import transaction


def send_invitation_email(invitation_id: str) -> None:
    from invitations import tasks

    transaction.on_commit(lambda: tasks.send_invitation_email.delay(invitation_id))
