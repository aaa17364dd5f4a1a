from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery

from accounts.models import Membership, User
from projects.models import Project, ProjectMember
from workspaces.models import LIVE_STATES, WorkspaceState


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
            total_instances=Count("workspaces", distinct=True),
            live_instances=Count("workspaces", filter=Q(workspaces__state__in=LIVE_STATES), distinct=True),
            active_instances=Count("workspaces", filter=Q(workspaces__state=WorkspaceState.RUNNING), distinct=True),
        )
        .order_by("name", "id")
    )
