from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_label", "action", "target_type", "target_label", "organization", "ip"]
    list_filter = ["action", "target_type", "organization"]
    search_fields = ["actor_label", "action", "target_id", "target_label", "request_id", "ip"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    # The trail is append-only: nobody edits or deletes history from the admin.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
