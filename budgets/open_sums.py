"""The kept sums of open intervals (budgets.models.OpenSpendSum): PostgreSQL's trigger on workspaces appends a
row per change; compact() folds them into one row per (project, month), so that reading a project's open spend
stays a handful of rows. Beat runs it every few minutes (budgets.tasks.compact_open_spend_sums)."""

from django.db import connection, transaction

# One statement: the rows it deletes are those of its snapshot, so a change appended meanwhile by another
# transaction is neither lost nor counted twice, and a reader sees either the rows before or the folded ones.
_COMPACT_SQL = """
WITH folded AS (
    DELETE FROM budgets_openspendsum RETURNING project_id, month, billed_rate, billed_rate_epoch, storage_rate,
        storage_epoch
)
INSERT INTO budgets_openspendsum (project_id, month, billed_rate, billed_rate_epoch, storage_rate, storage_epoch)
SELECT project_id, month, SUM(billed_rate), SUM(billed_rate_epoch), SUM(storage_rate), SUM(storage_epoch)
FROM folded
GROUP BY project_id, month
-- A month whose workspaces have all closed (or left) sums to zero: nothing to keep.
HAVING SUM(billed_rate) <> 0 OR SUM(billed_rate_epoch) <> 0 OR SUM(storage_rate) <> 0 OR SUM(storage_epoch) <> 0
"""


def compact() -> int:
    """Fold the appended changes into one row per project and month; returns the rows kept. PostgreSQL only (the
    sums are not kept elsewhere)."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_COMPACT_SQL)
        return cursor.rowcount
