"""Reading idle history and what it saved. Selectors only; each answers in a constant number of queries.

An action's estimated savings: the compute rate it stopped paying (IdleEvent.hourly_rate, the workspace's rate
less the organization's discount) times the hours from the action until the workspace next left its rest
(a transition to starting, resuming or terminating), or until now while it still rests; capped at the
workspace's TTL (`expires_at`), which would have stopped it anyway. Computed in SQL, one subquery per row."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Greatest, Least
from django.utils import timezone

from idle.models import IdleEvent
from workspaces.models import StateTransition, WorkspaceState

S = WorkspaceState
ACTIONS = (IdleEvent.Kind.HIBERNATED, IdleEvent.Kind.STOPPED)
# Leaving the rest an idle action put the workspace in.
WAKING = (S.STARTING, S.RESUMING, S.TERMINATING)
MONEY: DecimalField = DecimalField(max_digits=18, decimal_places=8)
HOURS: DecimalField = DecimalField(max_digits=14, decimal_places=6)


class SecondsBetween(Func):
    """(end - start) in seconds, as a float: EXTRACT(EPOCH …) on PostgreSQL, julianday arithmetic on SQLite
    (rounded to the millisecond, past which a julianday's double is noise)."""

    arity = 2
    output_field = FloatField()

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:  # type: ignore[override]
        return super().as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))", arg_joiner=" - ", **extra_context
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return super().as_sql(
            compiler,
            connection,
            template="ROUND((julianday(%(expressions)s)) * 86400.0, 3)",
            arg_joiner=") - julianday(",
            **extra_context,
        )


def with_savings(queryset: QuerySet, *, now: datetime | None = None) -> QuerySet:
    """`queryset` of IdleEvents annotated with `estimated_savings` (USD; null for warnings and snoozes)."""
    now = now or timezone.now()
    woke = Subquery(
        StateTransition.objects.filter(
            workspace_id=OuterRef("workspace_id"), created_at__gte=OuterRef("created_at"), to_state__in=WAKING
        )
        .order_by("created_at")
        .values("created_at")[:1]
    )
    rested_until = Coalesce(woke, Value(now))
    until = Least(rested_until, Coalesce(F("workspace__expires_at"), rested_until))
    hours = Greatest(SecondsBetween(until, F("created_at")), Value(0.0)) / Value(3600.0)
    savings = ExpressionWrapper(F("hourly_rate") * Cast(hours, HOURS), output_field=MONEY)
    annotated: QuerySet = queryset.annotate(
        estimated_savings=Case(When(kind__in=ACTIONS, then=savings), default=Value(None), output_field=MONEY)
    )
    return annotated


def idle_history(
    *, user: Any, project: Any = None, workspace: Any = None, kind: str | None = None, now: datetime | None = None
) -> QuerySet:
    """The idle events the user can see (their organizations' projects), newest first, with estimated savings."""
    queryset = IdleEvent.objects.visible_to(user).select_related("workspace", "project", "actor")
    if project is not None:
        queryset = queryset.filter(project=project)
    if workspace is not None:
        queryset = queryset.filter(workspace=workspace)
    if kind:
        queryset = queryset.filter(kind=kind)
    return with_savings(queryset.order_by("-created_at", "-id"), now=now)


# idle_savings on PostgreSQL: with_savings' arithmetic over the project's actions, written once as SQL (every
# budget report asks; building and compiling the queryset cost several times running it). A test compares the two.
_SAVINGS_SQL = """
SELECT SUM(e.hourly_rate * (GREATEST(EXTRACT(EPOCH FROM (
           LEAST(rest.until, COALESCE(w.expires_at, rest.until)) - e.created_at)), 0.0) / 3600.0)::numeric(14, 6)),
       COUNT(*)
FROM idle_idleevent e
JOIN workspaces_workspace w ON w.id = e.workspace_id
CROSS JOIN LATERAL (
    SELECT COALESCE((
        SELECT t.created_at FROM workspaces_statetransition t
        WHERE t.workspace_id = e.workspace_id AND t.created_at >= e.created_at AND t.to_state = ANY(%(waking)s)
        ORDER BY t.created_at LIMIT 1
    ), %(now)s) AS until
) rest
WHERE e.project_id = %(project)s AND e.kind = ANY(%(actions)s)
  AND (%(since)s::timestamptz IS NULL OR e.created_at >= %(since)s)
"""


def idle_savings(*, project: Any, since: datetime | None = None, now: datetime | None = None) -> dict:
    """What the project's idle actions saved ({"total_usd", "actions"}); with `since`, the actions taken since."""
    if connection.vendor == "postgresql":
        params = {
            "project": project.pk,
            "since": since,
            "now": now or timezone.now(),
            "waking": [str(state) for state in WAKING],
            "actions": [str(kind) for kind in ACTIONS],
        }
        with connection.cursor() as cursor:
            cursor.execute(_SAVINGS_SQL, params)
            total, actions = cursor.fetchone()
        return {"total_usd": Decimal(total or 0).quantize(Decimal("0.0001")), "actions": actions}
    queryset = IdleEvent.objects.filter(project=project, kind__in=ACTIONS)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    totals = with_savings(queryset, now=now).aggregate(
        total=Sum("estimated_savings"), actions=Count("id", filter=Q(kind__in=ACTIONS))
    )
    total = totals["total"] or Decimal(0)
    return {"total_usd": Decimal(total).quantize(Decimal("0.0001")), "actions": totals["actions"] or 0}
