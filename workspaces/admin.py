from django.contrib import admin

from workspaces.models import Workspace


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "state", "owner", "project", "organization", "created_at"]
    list_filter = ["state", "organization"]
    search_fields = ["name", "id", "owner__email", "project__name"]
    list_select_related = ["owner", "project", "organization"]
    readonly_fields = ["id", "created_at"]
    autocomplete_fields = ["owner", "project", "organization"]
