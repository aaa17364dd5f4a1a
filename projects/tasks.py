"""Project tasks."""

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def compact_project_tallies() -> int:
    """Fold the changes PostgreSQL appended to the kept counts of projects (projects.tallies)."""
    from projects import tallies

    return tallies.compact()
