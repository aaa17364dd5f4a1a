import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from platform_site.errors import Conflict
from platform_site.sql import among
from workspaces import sizing
from workspaces.models import LIVE_STATES, ProvisionJob, StateTransition, Workspace, WorkspaceState

HOUR = Decimal(3600)
CENTS = Decimal("0.0001")


def workspaces_for(*, user: User, queryset: QuerySet[Workspace] | None = None) -> QuerySet[Workspace]:
    """Visible workspaces (or `queryset`, already scoped) with what a list needs, in a constant number of
    queries."""
    if queryset is None:
        queryset = Workspace.objects.visible_to(user)
    # Cost comes from the ledger in one query for the whole list (budgets.selectors.workspace_costs), so the
    # transitions are not loaded here.
    return queryset.select_related("project", "owner", "organization").prefetch_related(
        Prefetch("jobs", queryset=ProvisionJob.objects.order_by("-created_at")),
    )


# The columns GET /instances shows (workspaces.serializers.workspace_list_json) and what its cost is priced from
# (budgets.selectors.COST_ROW_FIELDS); never the template snapshot or other wide columns.
LIST_ROW_FIELDS = (
    "name",
    "provider_instance_id",
    "public_ip",
    "private_ip",
    "instance_type",
    "size",
    "region",
    "spot",
    "template_name",
    "project_id",
    "project__name",
    "owner__email",
    "launch_time",
    "hibernation_capable",
    "root_volume_gb",
    "expires_at",
    "error_message",
    "created_at",
)


def workspace_list_rows(queryset: QuerySet[Workspace]) -> QuerySet:
    """`queryset` (already scoped) as rows of values for the list: the project's name and owner's e-mail by join,
    the latest job's progress by a correlated subquery (one index probe per row of the page, only for the rows
    the page returns), so a page is one query and builds no model object."""
    from budgets.selectors import COST_ROW_FIELDS

    latest_progress = (
        ProvisionJob.objects.filter(workspace_id=OuterRef("pk")).order_by("-created_at").values("progress")[:1]
    )
    fields = dict.fromkeys((*COST_ROW_FIELDS, *LIST_ROW_FIELDS))
    progress = Coalesce(Subquery(latest_progress), 0, output_field=IntegerField())
    rows: QuerySet = queryset.values(*fields, launch_progress=progress)
    return rows


INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8,17}$")


def workspace_by_reference(*, user: User, reference: str, project: str | None = None) -> Workspace | None:
    """The workspace `reference` names among those the user may see, or None.

    Ids resolve before names: a workspace id, then an EC2 instance id, then a name. Names are unique among
    live workspaces of one organization only, so a name may match several the user can see (one per
    organization): that raises AMBIGUOUS_REFERENCE listing the candidates, and `project` (an id or a
    name) narrows the search. A live workspace wins over terminated ones of the same name; among
    terminated ones of one project, the newest wins.
    """
    visible = workspaces_for(user=user)
    if project:
        visible = visible.filter(Q(project_id=project) | Q(project__name=project))
    if reference.startswith("ws_"):
        found: Workspace | None = visible.filter(pk=reference).first()
        if found is not None:
            return found
    if INSTANCE_ID_RE.match(reference):
        found = _one(list(visible.filter(provider_instance_id=reference).order_by("-created_at")[:5]), reference)
        if found is not None:
            return found
    named = list(visible.filter(name=reference).order_by("-created_at")[:20])
    live = [workspace for workspace in named if workspace.state != WorkspaceState.TERMINATED]
    if live:
        return _one(live, reference)
    if not named:
        return None
    if len({workspace.project_id for workspace in named}) > 1:
        return _one(named, reference)
    return named[0]


def _one(candidates: list[Workspace], reference: str) -> Workspace | None:
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    raise Conflict(
        f"'{reference}' names {len(candidates)} workspaces you can see.",
        code="AMBIGUOUS_REFERENCE",
        details="; ".join(f"{w.pk} in project {w.project.name} ({w.project_id})" for w in candidates),
        remediation="Use the workspace id (ws_…) instead of the name, or add ?project=<project id>.",
        extra={
            "candidates": [
                {
                    "workspace_id": w.pk,
                    "name": w.name,
                    "state": w.state,
                    "project": w.project_id,
                    "project_name": w.project.name,
                    "organization": w.organization_id,
                }
                for w in candidates
            ]
        },
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
    """Usage and cost from the ledger (closed rows and the open interval priced now)."""
    from budgets.selectors import workspace_compute_usage

    until = until or timezone.now()
    usage = workspace_compute_usage(workspace, now=until)
    cpu = gpu = memory = hours_total = Decimal(0)
    for instance_type, seconds in usage.seconds_by_type.items():
        hours = seconds / HOUR
        hours_total += hours
        spec = sizing.instance_types().get(instance_type)
        if spec is None:  # a type retired from the catalog: its cost is still in the ledger
            continue
        cpu += hours * spec.vcpu
        gpu += hours * spec.gpu_count
        memory += hours * Decimal(str(spec.memory_gib))
    return Usage(
        cpu_hours=_q(cpu),
        gpu_hours=_q(gpu),
        memory_gb_hours=_q(memory),
        cost_usd=_q(usage.cost),
        billed_hours=_q(hours_total),
        period_start=workspace.created_at,
        period_end=until,
    )


def last_transition_to(workspace: Workspace, state: str) -> StateTransition | None:
    return workspace.transitions.filter(to_state=state).order_by("-created_at", "-id").first()


def connect_info(workspace: Workspace) -> dict | None:
    """How to reach a running workspace: host, SSH user and command, and each template service's URL and SSH
    tunnel (GET /instances/{name}/connect and the console's connect panel). None until it runs with an address."""
    host = workspace.public_ip or workspace.private_ip
    if workspace.state != WorkspaceState.RUNNING or not host:
        return None
    users = workspace.template_snapshot.get("users") or []
    user = users[0]["name"] if users else "ec2-user"
    key_name = workspace.cloud_account.key_name if workspace.cloud_account else ""
    identity = f"-i ~/.ssh/{key_name}.pem " if key_name else ""
    services = [
        {
            "name": service["name"],
            "url": f"http://{host}:{service['port']}",
            "port": service["port"],
            "local_forward": f"ssh -L {service['port']}:localhost:{service['port']} {identity}{user}@{host}",
        }
        for service in workspace.template_snapshot.get("services", [])
        if service.get("port")
    ]
    return {"host": host, "user": user, "ssh": f"ssh {identity}{user}@{host}", "services": services}


# The instance counts each project keeps (projects.models.ProjectTally), by the states they count.
_KEPT_COUNTS = {
    None: "workspaces",
    frozenset({WorkspaceState.RUNNING.value}): "running_workspaces",
    frozenset(LIVE_STATES): "live_workspaces",
}


def kept_workspace_count(*, user: User, states: frozenset[str] | None) -> int | None:
    """How many workspaces `user` may see (those in `states`, all when None), from their projects' kept counts:
    a row or two per project from a covering index instead of counting every workspace on every page. None
    where no count is kept: SQLite, or a set of states the projects do not count."""
    from projects.models import Project, ProjectTally

    column = _KEPT_COUNTS.get(states)
    if column is None or connection.vendor != "postgresql":
        return None
    # The same scope as Workspace.objects.visible_to: the workspaces of the projects the user may see.
    projects = Project.objects.visible_to(user).values("pk")
    kept = ProjectTally.objects.filter(among("project_id", projects)).aggregate(n=Sum(column))
    return int(kept["n"] or 0)
