from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Case, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from workspaces import sizing
from workspaces.models import COMPUTE_BILLED_STATES, ProvisionJob, StateTransition, Workspace, WorkspaceState

HOUR = Decimal(3600)
CENTS = Decimal("0.0001")


def workspaces_for(*, user) -> QuerySet:
    """Visible workspaces with what a list needs, in a constant number of queries."""
    return (
        Workspace.objects.visible_to(user)
        .select_related("project", "owner", "organization")
        .prefetch_related(
            Prefetch("transitions", queryset=StateTransition.objects.order_by("created_at", "id")),
            Prefetch("jobs", queryset=ProvisionJob.objects.order_by("-created_at")),
        )
    )


def workspace_by_reference(*, user, reference: str) -> Workspace | None:
    """By name, workspace id or instance id; a live workspace wins over terminated ones of the same name."""
    return (
        workspaces_for(user=user)
        .filter(Q(name=reference) | Q(pk=reference) | Q(provider_instance_id=reference))
        .annotate(
            is_terminated=Case(
                When(state=WorkspaceState.TERMINATED, then=Value(1)), default=Value(0), output_field=IntegerField()
            )
        )
        .order_by("is_terminated", "-created_at")
        .first()
    )


@dataclass(frozen=True)
class Usage:
    cpu_hours: Decimal
    gpu_hours: Decimal
    memory_gb_hours: Decimal
    cost_usd: Decimal
    billed_hours: Decimal
    period_start: datetime | None
    period_end: datetime


def _q(value: Decimal) -> Decimal:
    return value.quantize(CENTS, rounding=ROUND_HALF_UP)


def workspace_usage(workspace: Workspace, *, until: datetime | None = None) -> Usage:
    """Usage and cost from the recorded transitions: each interval is billed at the rate it recorded."""
    until = until or timezone.now()
    transitions = list(workspace.transitions.all())
    cpu = gpu = memory = cost = hours_total = Decimal(0)
    for current, following in zip(transitions, [*transitions[1:], None], strict=False):
        if current.to_state not in COMPUTE_BILLED_STATES:
            continue
        end = following.created_at if following else until
        seconds = Decimal(str(max(0.0, (end - current.created_at).total_seconds())))
        hours = seconds / HOUR
        hours_total += hours
        cost += hours * current.hourly_rate
        spec = sizing.instance_types().get(current.instance_type)
        if spec is None:  # a type retired from the catalog: its cost is still the recorded rate
            continue
        cpu += hours * spec.vcpu
        gpu += hours * spec.gpu_count
        memory += hours * Decimal(str(spec.memory_gib))
    return Usage(
        cpu_hours=_q(cpu),
        gpu_hours=_q(gpu),
        memory_gb_hours=_q(memory),
        cost_usd=_q(cost),
        billed_hours=_q(hours_total),
        period_start=transitions[0].created_at if transitions else None,
        period_end=until,
    )


def last_transition_to(workspace: Workspace, state: str) -> StateTransition | None:
    matches = [t for t in workspace.transitions.all() if t.to_state == state]
    return matches[-1] if matches else None
