from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import Membership, User
from projects.models import Project, ProjectMember
from workspaces.models import LIVE_STATES, Workspace, WorkspaceState


def _count_of(workspaces: QuerySet[Workspace]) -> Coalesce:
    """How many of the project's workspaces match: a correlated COUNT read from the (project, state) index,
    one per project of the page, instead of COUNT DISTINCT over a join of every project with every workspace
    (which the paginator's count repeated)."""
    counted = workspaces.filter(project=OuterRef("pk")).order_by().values("project").annotate(n=Count("pk"))
    return Coalesce(Subquery(counted.values("n"), output_field=IntegerField()), 0)


def projects_for(*, user: User, queryset: QuerySet[Project] | None = None) -> QuerySet[Project]:
    """Projects the user may see, with members, instance counts and the user's roles: constant queries."""
    if queryset is None:
        queryset = Project.objects.visible_to(user)
    return (
        queryset.select_related("organization")
        .prefetch_related(Prefetch("members", queryset=ProjectMember.objects.select_related("user")))
        .annotate(
            caller_project_role=Subquery(
                ProjectMember.objects.current().filter(project=OuterRef("pk"), user=user).values("role")[:1]
            ),
            caller_org_role=Subquery(
                Membership.objects.filter(organization=OuterRef("organization_id"), user=user).values("role")[:1]
            ),
            total_instances=_count_of(Workspace.objects.all()),
            live_instances=_count_of(Workspace.objects.filter(state__in=LIVE_STATES)),
            active_instances=_count_of(Workspace.objects.filter(state=WorkspaceState.RUNNING)),
        )
        .order_by("name", "id")
    )
