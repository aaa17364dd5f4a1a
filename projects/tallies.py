"""The kept counts of projects (projects.models.ProjectTally): PostgreSQL's triggers on workspaces and project
members append a row of changes per change; compact() folds them into one row per project, so that reading a
project's counts stays a row or two. Beat runs it every few minutes (projects.tasks.compact_project_tallies)."""

from django.db import connection, transaction

# One statement: the rows it deletes are those of its snapshot, so a change appended meanwhile by another
# transaction is neither lost nor counted twice, and a reader sees either the rows before or the folded one.
_COMPACT_SQL = """
WITH folded AS (
    DELETE FROM projects_projecttally
    RETURNING project_id, workspaces, live_workspaces, running_workspaces, members
)
INSERT INTO projects_projecttally (project_id, workspaces, live_workspaces, running_workspaces, members)
SELECT f.project_id, SUM(f.workspaces), SUM(f.live_workspaces), SUM(f.running_workspaces), SUM(f.members)
FROM folded f
-- A project removed outright (not archived) leaves nothing to count.
WHERE EXISTS (SELECT 1 FROM projects_project p WHERE p.id = f.project_id)
GROUP BY f.project_id
HAVING SUM(f.workspaces) <> 0 OR SUM(f.live_workspaces) <> 0 OR SUM(f.running_workspaces) <> 0 OR SUM(f.members) <> 0
"""


def compact() -> int:
    """Fold the appended changes into one row per project; returns the rows kept. PostgreSQL only (the counts
    are not kept elsewhere)."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_COMPACT_SQL)
        return cursor.rowcount
