from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the services (or the database's triggers) write: viewed in the admin, never added, edited or
    deleted there."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
