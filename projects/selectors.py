from datetime import datetime
from typing import NamedTuple

from django.db import connection
from django.db.models import CharField, Field, Func, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.models import Membership, User, display_name_of
from projects.models import Project, ProjectMember
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
SELECT m.project_id, u.username, u.email, u.first_name, u.last_name, m.role, m.joined_at
FROM unnest(%(projects)s::varchar[]) AS p(id)
CROSS JOIN LATERAL (
    SELECT pm.project_id, pm.user_id, pm.role, pm.joined_at, pm.id FROM projects_projectmember pm
    WHERE pm.project_id = p.id AND (pm.expires_at IS NULL OR pm.expires_at > %(now)s)
    ORDER BY pm.joined_at, pm.id
    LIMIT %(limit)s
) m
JOIN accounts_user u ON u.id = m.user_id
ORDER BY m.project_id, m.joined_at, m.id
"""


class MemberPreview(NamedTuple):
    """A member as a project list shows it inline: the membership's and the user's columns, no model objects."""

    project_id: str
    username: str
    email: str
    first_name: str
    last_name: str
    role: str
    joined_at: datetime

    @property
    def name(self) -> str:
        return display_name_of(first_name=self.first_name, last_name=self.last_name, username=self.username)


def member_previews(project_ids: list[str], *, now: datetime | None = None) -> dict[str, list[MemberPreview]]:
    """Each project's first MEMBERS_INLINE current members by join date: one query, reading at most that many
    rows of each project from the (project, joined_at, id) index, however many members it has. (A sliced
    Prefetch sorts every member of the projects with a window function instead.)"""
    now = now or timezone.now()
    previews: dict[str, list[MemberPreview]] = {project_id: [] for project_id in project_ids}
    if not project_ids:
        return previews
    if connection.vendor != "postgresql":  # the SQLite sandbox: every member, cut in Python
        members = ProjectMember.objects.current().filter(project_id__in=project_ids).select_related("user")
        for member in members:
            if len(previews[member.project_id]) < MEMBERS_INLINE:
                user = member.user
                previews[member.project_id].append(
                    MemberPreview(
                        member.project_id,
                        user.username,
                        user.email,
                        user.first_name,
                        user.last_name,
                        member.role,
                        member.joined_at,
                    )
                )
        return previews
    with connection.cursor() as cursor:
        cursor.execute(_MEMBER_PREVIEW_SQL, {"projects": list(project_ids), "now": now, "limit": MEMBERS_INLINE})
        for row in cursor.fetchall():
            previews[row[0]].append(MemberPreview(*row))
    return previews


# On PostgreSQL each figure is a correlated subquery written once as SQL: the same plans as the querysets below
# (a row or two from an index per project), without building and compiling six nested querysets on every request
# (about 3 ms of a /projects request's CPU). `projects_project` is the outer query's table: projects_for's querysets
# are only ever the outermost query (pages, counts, the console), never a subquery.
_FIGURES_SQL: dict[str, tuple[str, Field]] = {
    "caller_project_role": (
        "SELECT pm.role FROM projects_projectmember pm WHERE pm.project_id = projects_project.id AND pm.user_id = %s"
        " AND (pm.expires_at IS NULL OR pm.expires_at > %s)",
        CharField(),
    ),
    "caller_org_role": (
        "SELECT m.role FROM accounts_membership m"
        " WHERE m.organization_id = projects_project.organization_id AND m.user_id = %s",
        CharField(),
    ),
    # The kept count (projects.models.ProjectTally) has every member row; an expired membership the sweep has not
    # removed yet is not a member (read from the project_member_expiring index).
    "member_count": (
        "SELECT COALESCE(SUM(t.members), 0) - (SELECT COUNT(*) FROM projects_projectmember pm"
        " WHERE pm.project_id = projects_project.id AND pm.expires_at IS NOT NULL AND pm.expires_at <= %s)"
        " FROM projects_projecttally t WHERE t.project_id = projects_project.id",
        IntegerField(),
    ),
    "total_instances": (
        "SELECT COALESCE(SUM(t.workspaces), 0) FROM projects_projecttally t WHERE t.project_id = projects_project.id",
        IntegerField(),
    ),
    "live_instances": (
        "SELECT COALESCE(SUM(t.live_workspaces), 0) FROM projects_projecttally t"
        " WHERE t.project_id = projects_project.id",
        IntegerField(),
    ),
    "active_instances": (
        "SELECT COALESCE(SUM(t.running_workspaces), 0) FROM projects_projecttally t"
        " WHERE t.project_id = projects_project.id",
        IntegerField(),
    ),
}


def _figures(user: User) -> dict:
    """The caller's roles in each project, its member count and its three instance counts."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        params = {
            "caller_project_role": (user.pk, now),
            "caller_org_role": (user.pk,),
            "member_count": (now,),
        }
        return {
            name: RawSQL(f"({sql})", params.get(name, ()), output_field=field)  # noqa: S611 (constant SQL)
            for name, (sql, field) in _FIGURES_SQL.items()
        }
    # SQLite (the sandbox, the quick tests): the same figures as querysets, counted directly (nothing is kept).
    return {
        "caller_project_role": Subquery(
            ProjectMember.objects.current().filter(project=OuterRef("pk"), user=user).values("role")[:1]
        ),
        "caller_org_role": Subquery(
            Membership.objects.filter(organization=OuterRef("organization_id"), user=user).values("role")[:1]
        ),
        "member_count": _count_of(ProjectMember.objects.current()),
        "total_instances": _count_of(Workspace.objects.all()),
        "live_instances": _count_of(Workspace.objects.filter(state__in=LIVE_STATES)),
        "active_instances": _count_of(Workspace.objects.filter(state=WorkspaceState.RUNNING)),
    }


def projects_for(*, user: User, queryset: QuerySet[Project] | None = None) -> QuerySet[Project]:
    """Projects the user may see, with member and instance counts and the user's roles: constant queries.
    (member_previews reads the members a page shows.)"""
    if queryset is None:
        queryset = Project.objects.visible_to(user)
    return queryset.select_related("organization").annotate(**_figures(user)).order_by("name", "id")
