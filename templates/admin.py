from django.contrib import admin

from templates.models import WorkspaceTemplate


@admin.register(WorkspaceTemplate)
class WorkspaceTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "organization", "source", "updated_at"]
    list_filter = ["source", "organization"]
    search_fields = ["name", "slug", "description"]
    list_select_related = ["organization"]
    readonly_fields = ["created_at", "updated_at"]
