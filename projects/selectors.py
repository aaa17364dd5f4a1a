from datetime import datetime

from django.db import connection
from django.db.models import Func, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Membership, User
from projects.models import Project, ProjectMember, ProjectTally
from workspaces.models import LIVE_STATES, Workspace, WorkspaceState

# How many current members a project shows inline (GET /projects, the console); member_count has them all and
# GET /projects/{id}/members pages through them.
MEMBERS_INLINE = 50


def _count_of(rows: QuerySet) -> Subquery:
    """How many of the project's `rows` (workspaces or members) match: a correlated COUNT read from the
    (project, …) index, one per project of the page, instead of COUNT DISTINCT over a join of every project with
    every workspace (which the paginator's count repeated). A bare COUNT(*) with no GROUP BY: grouped by project,
    PostgreSQL may scan another index in project order instead of the (project, state) range."""
    counted = (
        rows.filter(project=OuterRef("pk"))
        .order_by()
        .annotate(n=Func(template="COUNT(*)", output_field=IntegerField()))
    )
    return Subquery(counted.values("n"), output_field=IntegerField())


_MEMBER_PREVIEW_SQL = """
SELECT m.*, u.username AS preview_username, u.email AS preview_email, u.first_name AS preview_first_name,
       u.last_name AS preview_last_name
FROM unnest(%(projects)s::varchar[]) AS p(id)
CROSS JOIN LATERAL (
    SELECT * FROM projects_projectmember pm
    WHERE pm.project_id = p.id AND (pm.expires_at IS NULL OR pm.expires_at > %(now)s)
    ORDER BY pm.joined_at, pm.id
    LIMIT %(limit)s
) m
JOIN accounts_user u ON u.id = m.user_id
ORDER BY m.project_id, m.joined_at, m.id
"""


def member_previews(project_ids: list[str], *, now: datetime | None = None) -> dict[str, list[ProjectMember]]:
    """Each project's first MEMBERS_INLINE current members by join date, with their users: one query, reading
    at most that many rows of each project from the (project, joined_at, id) index, however many members it
    has. (A sliced Prefetch sorts every member of the projects with a window function instead.)"""
    now = now or timezone.now()
    previews: dict[str, list[ProjectMember]] = {project_id: [] for project_id in project_ids}
    if not project_ids:
        return previews
    if connection.vendor != "postgresql":  # the SQLite sandbox: every member, cut in Python
        for member in ProjectMember.objects.current().filter(project_id__in=project_ids).select_related("user"):
            if len(previews[member.project_id]) < MEMBERS_INLINE:
                previews[member.project_id].append(member)
        return previews
    params = {"projects": list(project_ids), "now": now, "limit": MEMBERS_INLINE}
    for member in ProjectMember.objects.raw(_MEMBER_PREVIEW_SQL, params):
        columns = vars(member)  # the user's columns, read along (raw() sets them as attributes)
        member.user = User(
            pk=member.user_id,
            username=columns["preview_username"],
            email=columns["preview_email"],
            first_name=columns["preview_first_name"],
            last_name=columns["preview_last_name"],
        )
        previews[member.project_id].append(member)
    return previews


def _kept(column: str) -> Coalesce:
    """The project's kept count (projects.models.ProjectTally): a row or two read from a covering index."""
    summed = ProjectTally.objects.filter(project=OuterRef("pk")).order_by().values("project").annotate(n=Sum(column))
    return Coalesce(Subquery(summed.values("n"), output_field=IntegerField()), 0)


def _counts() -> dict:
    """member_count, total_instances, live_instances and active_instances of each project."""
    if connection.vendor != "postgresql":  # not kept elsewhere: counted
        return {
            "member_count": _count_of(ProjectMember.objects.current()),
            "total_instances": _count_of(Workspace.objects.all()),
            "live_instances": _count_of(Workspace.objects.filter(state__in=LIVE_STATES)),
            "active_instances": _count_of(Workspace.objects.filter(state=WorkspaceState.RUNNING)),
        }
    # The kept count has every member row; an expired membership the sweep has not removed yet is not a member.
    expired = ProjectMember.objects.filter(expires_at__isnull=False, expires_at__lte=timezone.now())
    return {
        "member_count": _kept("members") - _count_of(expired),
        "total_instances": _kept("workspaces"),
        "live_instances": _kept("live_workspaces"),
        "active_instances": _kept("running_workspaces"),
    }


def projects_for(*, user: User, queryset: QuerySet[Project] | None = None) -> QuerySet[Project]:
    """Projects the user may see, with member and instance counts and the user's roles: constant queries.
    (member_previews reads the members a page shows.)"""
    if queryset is None:
        queryset = Project.objects.visible_to(user)
    return (
        queryset.select_related("organization")
        .annotate(
            caller_project_role=Subquery(
                ProjectMember.objects.current().filter(project=OuterRef("pk"), user=user).values("role")[:1]
            ),
            caller_org_role=Subquery(
                Membership.objects.filter(organization=OuterRef("organization_id"), user=user).values("role")[:1]
            ),
            **_counts(),
        )
        .order_by("name", "id")
    )
