from django.contrib import admin
from django.db.models import Count

from platform_site.admin import ReadOnlyAdmin
from projects.models import Project, ProjectMember, ProjectTally


class ProjectMemberInline(admin.TabularInline):
    model = ProjectMember
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "organization", "member_count", "created_by", "created_at", "deleted_at"]
    list_filter = ["organization", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "id", "description", "organization__name"]
    list_select_related = ["organization", "created_by"]
    readonly_fields = ["id", "created_at", "updated_at"]
    autocomplete_fields = ["organization", "created_by"]
    inlines = [ProjectMemberInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(ordering="member_count")
    def member_count(self, project) -> int:
        return project.member_count


@admin.register(ProjectMember)
class ProjectMemberAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "joined_at"]
    list_filter = ["role", "project__organization"]
    search_fields = ["user__email", "user__username", "project__name"]
    list_select_related = ["user", "project"]
    autocomplete_fields = ["user", "project"]


@admin.register(ProjectTally)
class ProjectTallyAdmin(ReadOnlyAdmin):
    """Kept counts of projects (appended by PostgreSQL triggers, folded by projects.tallies.compact)."""

    list_display = ["project_id", "workspaces", "live_workspaces", "running_workspaces", "members"]
    search_fields = ["project__id"]
