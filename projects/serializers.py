from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from budgets.selectors_pools import ProjectBudgetBrief, project_budget_briefs
from platform_site.api import fields as strict
from platform_site.api.representation import represent
from projects.models import Project, ProjectMember, ProjectRole
from projects.selectors import MEMBERS_INLINE, MemberPreview, member_previews
from projects.services import effective_project_role


class CurrentMembersListSerializer(serializers.ListSerializer):
    """Lists only memberships in force: one whose access expired is not shown, even before it is swept.
    Filters in Python so that prefetched members cost no query."""

    def to_representation(self, data):
        members = data.all() if hasattr(data, "all") else data
        now = timezone.now()
        return super().to_representation([m for m in members if m.expires_at is None or m.expires_at > now])


class ProjectMemberSerializer(serializers.ModelSerializer):
    username = strict.CharField(source="user.username")
    email = strict.EmailField(source="user.email")
    name = strict.CharField(source="user.display_name")
    join_date = strict.DateTimeField(source="joined_at")

    class Meta:
        model = ProjectMember
        fields = ["username", "email", "name", "role", "join_date"]
        read_only_fields = fields
        list_serializer_class = CurrentMembersListSerializer


_JOIN_DATE = ProjectMemberSerializer._declared_fields["join_date"]


def member_json(member: MemberPreview) -> dict:
    """ProjectMemberSerializer's output for a member a project list shows inline, written by plain code: a page of
    projects shows up to 50 members each, and DRF's fields cost several times more per row."""
    return {
        "username": member.username,
        "email": member.email,
        "name": member.name,
        "role": member.role,
        "join_date": _JOIN_DATE.to_representation(member.joined_at),
    }


class ProjectBudgetBriefSerializer(serializers.Serializer):
    allocation_id = strict.CharField()
    pool_id = strict.CharField()
    total_allocated = strict.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=False)
    current_spend = strict.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=False)
    remaining = strict.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=False)
    utilization_rate = strict.DecimalField(max_digits=12, decimal_places=4, coerce_to_string=False, allow_null=True)
    status = strict.CharField(help_text="ok, warning (past the first alert threshold) or exceeded.")


def budget_brief_json(brief: ProjectBudgetBrief) -> dict:
    """ProjectBudgetBriefSerializer's output, without building a serializer for every project of a list."""
    return represent(ProjectBudgetBriefSerializer, brief)


class ProjectSerializer(serializers.ModelSerializer):
    organization = strict.CharField(source="organization_id", read_only=True)
    organization_name = strict.CharField(source="organization.name", read_only=True)
    members = serializers.SerializerMethodField(
        help_text=f"The first {MEMBERS_INLINE} current members by join date; member_count counts them all, and "
        "GET /api/v1/projects/{id}/members pages through them.",
    )
    member_count = strict.IntegerField(read_only=True, help_text="Current members of the project.")
    role = serializers.SerializerMethodField(help_text="The caller's effective role in the project.")
    active_instances = strict.IntegerField(read_only=True)
    live_instances = strict.IntegerField(read_only=True)
    total_instances = strict.IntegerField(read_only=True)
    budget = serializers.SerializerMethodField(
        help_text="The project's allocation and its spend in the pool's current period; null when unfunded."
    )

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "max_ttl_hours",
            "organization",
            "organization_name",
            "role",
            "members",
            "member_count",
            "active_instances",
            "live_instances",
            "total_instances",
            "budget",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, project):
        if not hasattr(project, "member_preview"):
            # Every project of the list (or page) at once, as the budget: one query, however long the list.
            listed = self.parent.instance if isinstance(self.parent, serializers.ListSerializer) else [project]
            previews = member_previews([item.pk for item in listed])
            for item in listed:
                item.member_preview = previews.get(item.pk, [])
        return super().to_representation(project)

    @extend_schema_field(ProjectMemberSerializer(many=True))
    def get_members(self, project) -> list[dict]:
        return [member_json(member) for member in project.member_preview]

    @extend_schema_field(ProjectBudgetBriefSerializer(allow_null=True))
    def get_budget(self, project) -> dict | None:
        briefs = self.context.get("_project_budgets")
        if briefs is None or (project.pk not in briefs and project.pk not in self.context["_project_budgets_asked"]):
            # Every project of the list (or page) at once: a constant number of queries, however long the list.
            listed = self.parent.instance if isinstance(self.parent, serializers.ListSerializer) else [project]
            asked = {item.pk for item in listed}
            briefs = self.context["_project_budgets"] = project_budget_briefs(asked)
            self.context["_project_budgets_asked"] = asked
        brief = briefs.get(project.pk)
        return budget_brief_json(brief) if brief is not None else None

    @extend_schema_field(strict.ChoiceField(choices=ProjectRole.choices, allow_null=True))
    def get_role(self, project) -> str | None:
        return effective_project_role(
            project_role=getattr(project, "caller_project_role", None),
            org_role=getattr(project, "caller_org_role", None),
        )


class ProjectMemberInputSerializer(serializers.Serializer):
    email = strict.EmailField()
    role = strict.ChoiceField(choices=ProjectRole.choices, default=ProjectRole.MEMBER)


class ProjectCreateSerializer(serializers.Serializer):
    name = strict.CharField(max_length=200)
    description = strict.CharField(required=False, allow_blank=True, default="")
    organization = strict.CharField(
        required=False, help_text="Organization id; may be omitted when the caller belongs to exactly one."
    )
    members = ProjectMemberInputSerializer(many=True, required=False, default=list)


class ProjectUpdateSerializer(serializers.Serializer):
    name = strict.CharField(max_length=200, required=False)
    description = strict.CharField(required=False, allow_blank=True)
    max_ttl_hours = strict.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=8760,
        help_text="Owners only: the longest TTL an extension may set from now (null: the platform's limit).",
    )


class ProjectMemberUpdateSerializer(serializers.Serializer):
    role = strict.ChoiceField(choices=ProjectRole.choices)
