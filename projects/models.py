from django.conf import settings
from django.db import models
from django.db.models import BooleanField, Expression, F, Q
from django.utils import timezone

from platform_site.ids import new_project_id
from platform_site.tenancy import ScopedQuerySet


class ProjectRole(models.TextChoices):
    """owner: everything, including delete and budget. admin: members and every workspace.
    member: launches and manages their own workspaces. viewer: read-only."""

    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


PROJECT_ROLE_RANK = {ProjectRole.VIEWER: 1, ProjectRole.MEMBER: 2, ProjectRole.ADMIN: 3, ProjectRole.OWNER: 4}


class ProjectQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "ProjectQuerySet":
        """Projects the user is a member of (a current membership: ProjectMemberQuerySet.current), and every
        project of organizations they own or administer."""
        return self.filter(deleted_at__isnull=True).filter(_VisibleTo(user.pk, timezone.now()))


class _VisibleTo(Expression):
    """The condition of ProjectQuerySet.visible_to on a project row, written as one fixed piece of SQL.

    Every list scoped by project (workspaces, jobs, costs, members) carries it, often twice a request (the count
    and the page): built from querysets, its two subqueries cost about 0.8 ms to build and 0.6 ms to compile each
    time; this costs microseconds. tests/projects/test_visibility_sql.py checks it against the same rule written
    with the ORM (memberships owner/admin; current project memberships), user by user."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, user_id, now):
        super().__init__()
        self.user_id, self.now = user_id, now
        self.organization, self.project = F("organization_id"), F("id")

    def get_source_expressions(self):
        return [self.organization, self.project]

    def set_source_expressions(self, exprs):
        self.organization, self.project = exprs

    def as_sql(self, compiler, connection):
        from accounts.models import Membership, OrgRole

        organization, organization_params = compiler.compile(self.organization)
        project, project_params = compiler.compile(self.project)
        quote = connection.ops.quote_name
        # Interpolated: compiled column references and quoted table names; every value is a parameter.
        sql = (
            f"({organization} IN (SELECT carrel_m.organization_id FROM {quote(Membership._meta.db_table)} carrel_m"  # noqa: S608
            " WHERE carrel_m.user_id = %s AND carrel_m.role IN (%s, %s))"
            f" OR {project} IN (SELECT carrel_pm.project_id FROM {quote(ProjectMember._meta.db_table)} carrel_pm"
            " WHERE carrel_pm.user_id = %s AND (carrel_pm.expires_at IS NULL OR carrel_pm.expires_at > %s)))"
        )
        now = connection.ops.adapt_datetimefield_value(self.now)
        params = [*organization_params, self.user_id, OrgRole.OWNER.value, OrgRole.ADMIN.value]
        return sql, [*params, *project_params, self.user_id, now]


class Project(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_project_id, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    max_ttl_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Project policy: the longest TTL a workspace extension may set from now (owners set it).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # Deleted projects are archived, not removed: their workspaces' cost history must survive.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                condition=Q(deleted_at__isnull=True),
                name="project_unique_name_per_org",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ProjectMemberQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "ProjectMemberQuerySet":
        return self.filter(project__in=Project.objects.visible_to(user))

    def current(self) -> "ProjectMemberQuerySet":
        """Memberships in force now. One whose `expires_at` has passed grants nothing, even before the
        periodic task (invitations.tasks) deletes it: every role check and visibility query uses this."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))


class ProjectMember(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships")
    role = models.CharField(max_length=16, choices=ProjectRole.choices, default=ProjectRole.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)
    # Visiting collaborators and course members: the membership ends then (a periodic task removes it).
    expires_at = models.DateTimeField(null=True, blank=True)
    # The daily cost digest (owners and admins opt in: PUT /api/v1/projects/{id}/cost-digest), and the
    # organization-local day it was last sent: the hourly task claims a day with a conditional update.
    cost_digest = models.BooleanField(default=False)
    cost_digest_sent_on = models.DateField(null=True, blank=True)

    objects = ProjectMemberQuerySet.as_manager()

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="project_member_unique_user"),
        ]
        # A project's first members in order (the project's inline preview) without sorting all of them.
        indexes = [
            models.Index(fields=["project", "joined_at", "id"], name="project_member_order"),
            # The expired memberships the sweep has not removed yet (subtracted from the kept member counts).
            models.Index(
                fields=["project", "expires_at"], condition=Q(expires_at__isnull=False), name="project_member_expiring"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class ProjectTally(models.Model):
    """Kept counts of a project's workspaces and member rows, so that a list of projects reads a few rows per
    project instead of counting every workspace and member (GET /api/v1/projects at 10,000 workspaces).

    PostgreSQL's triggers on workspaces and project members (migration 0006) append a row of changes per
    change, never updating a shared row, so writers of one project never wait for each other;
    projects.tallies.compact() folds them into one row per project. The sums count every member row, expired
    or not: projects.selectors subtracts the expired ones still waiting for the sweep. PostgreSQL only; other
    databases count directly. No foreign key: a change appended while a project is deleted must not fail the
    delete (compaction drops the rows of projects that are gone).
    """

    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False
    )
    workspaces = models.IntegerField(default=0)
    live_workspaces = models.IntegerField(default=0)
    running_workspaces = models.IntegerField(default=0)
    members = models.IntegerField(default=0)

    class Meta:
        # The project's rows summed from the index alone.
        indexes = [
            models.Index(
                fields=["project"],
                include=["workspaces", "live_workspaces", "running_workspaces", "members"],
                name="project_tally_sums",
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id}: {self.workspaces} workspaces, {self.members} members"
