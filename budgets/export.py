"""The ledger as CSV (GET /api/v1/costs/export): one line per CostEntry row, streamed as it is read."""

import csv
from collections.abc import Iterator
from datetime import date

from accounts.models import User
from budgets.models import CostEntry
from projects.models import Project

COLUMNS = (
    "id",
    "day",
    "start",
    "end",
    "organization",
    "project",
    "project_name",
    "workspace",
    "workspace_name",
    "member_email",
    "kind",
    "item",
    "quantity",
    "unit",
    "rate",
    "discount_percent",
    "amount",
)
FIELDS = (
    "id",
    "day",
    "start",
    "end",
    "organization_id",
    "project_id",
    "project__name",
    "workspace_id",
    "workspace__name",
    "member__email",
    "kind",
    "item",
    "quantity",
    "unit",
    "rate",
    "discount_percent",
    "amount",
)
CHUNK = 2000


class _Line:
    """A file-like object whose write returns the line, for csv.writer inside a generator."""

    def write(self, value: str) -> str:
        return value


def ledger_rows(*, user: User, start: date, end: date, project: Project | None = None) -> Iterator[tuple]:
    """The caller's visible ledger rows between two local dates (inclusive), oldest first, read in chunks
    (a server-side cursor on PostgreSQL): memory stays flat whatever the period."""
    # Ids rather than a subquery: the planner then reads the date range once (see history.cost_history).
    project_ids = [project.pk] if project else list(Project.objects.visible_to(user).values_list("pk", flat=True))
    return (
        CostEntry.objects.filter(project_id__in=project_ids, day__gte=start, day__lte=end)
        .order_by("day", "start", "id")
        .values_list(*FIELDS)
        .iterator(chunk_size=CHUNK)
    )


def csv_lines(rows: Iterator[tuple]) -> Iterator[str]:
    """The header, then one CSV line per row: times in ISO 8601 (UTC), numbers exactly as stored."""
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


# A text cell a spreadsheet would read as a formula (names are chosen by members) is written as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
