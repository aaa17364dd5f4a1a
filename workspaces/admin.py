from django.contrib import admin, messages

from platform_site.errors import CarrelError
from workspaces import services
from workspaces.models import (
    CloudAccount,
    FirewallRule,
    OrphanedInstance,
    ProvisionJob,
    StateTransition,
    Workspace,
    WorkspacePreference,
)


class StateTransitionInline(admin.TabularInline):
    model = StateTransition
    extra = 0
    can_delete = False
    fields = ["created_at", "from_state", "to_state", "actor", "reason", "instance_type", "hourly_rate"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class FirewallRuleInline(admin.TabularInline):
    model = FirewallRule
    extra = 0
    fields = ["position", "protocol", "from_port", "to_port", "cidr", "description"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "state",
        "owner",
        "project",
        "instance_type",
        "hourly_rate",
        "region",
        "provider_instance_id",
        "created_at",
    ]
    list_filter = ["state", "region", "instance_type", "spot", "organization"]
    search_fields = ["name", "id", "provider_instance_id", "owner__email", "project__name"]
    list_select_related = ["owner", "project", "organization"]
    readonly_fields = [field.name for field in Workspace._meta.fields if field.name not in ("name", "expires_at")]
    inlines = [StateTransitionInline, FirewallRuleInline]
    actions = ["stop_selected", "hibernate_selected", "terminate_selected"]

    def _act(self, request, queryset, action: str) -> None:
        done, refused = 0, []
        for workspace in queryset.select_related("project", "owner"):
            try:
                services.workspace_act(actor=request.user, workspace=workspace, action=action, reason="admin action")
                done += 1
            except CarrelError as error:
                refused.append(f"{workspace.name}: {error.message}")
        self.message_user(request, f"{action}: {done} workspace(s) requested.", messages.SUCCESS)
        if refused:
            self.message_user(request, "; ".join(refused), messages.WARNING)

    @admin.action(description="Stop selected workspaces")
    def stop_selected(self, request, queryset):
        self._act(request, queryset, "stop")

    @admin.action(description="Hibernate selected workspaces")
    def hibernate_selected(self, request, queryset):
        self._act(request, queryset, "hibernate")

    @admin.action(description="Terminate selected workspaces")
    def terminate_selected(self, request, queryset):
        self._act(request, queryset, "terminate")


@admin.register(CloudAccount)
class CloudAccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "organization",
        "provider",
        "region",
        "credential_source",
        "endpoint_url",
        "is_default",
        "last_reconciled_at",
        "reconcile_healthy",
    ]
    list_filter = ["provider", "region", "credential_source", "organization"]
    search_fields = ["name", "id", "role_arn", "organization__name"]
    list_select_related = ["organization"]
    readonly_fields = ["id", "created_at", "last_reconciled_at", "last_reconcile_error", "last_reconcile_error_at"]

    @admin.display(boolean=True, description="Reconciles")
    def reconcile_healthy(self, account: CloudAccount) -> bool | None:
        if account.last_reconciled_at is None:
            return None
        return not account.last_reconcile_error


@admin.register(StateTransition)
class StateTransitionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "workspace", "from_state", "to_state", "actor", "hourly_rate", "reason"]
    list_filter = ["to_state", "from_state"]
    search_fields = ["workspace__name", "workspace__id", "reason"]
    list_select_related = ["workspace", "actor"]
    readonly_fields = [field.name for field in StateTransition._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ProvisionJob)
class ProvisionJobAdmin(admin.ModelAdmin):
    list_display = ["id", "workspace", "kind", "status", "progress", "attempts", "error_code", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["id", "workspace__name", "error_message"]
    list_select_related = ["workspace"]
    readonly_fields = [field.name for field in ProvisionJob._meta.fields]


@admin.register(FirewallRule)
class FirewallRuleAdmin(admin.ModelAdmin):
    list_display = ["workspace", "position", "protocol", "from_port", "to_port", "cidr", "description"]
    list_filter = ["protocol"]
    search_fields = ["workspace__name", "cidr"]
    list_select_related = ["workspace"]


@admin.register(OrphanedInstance)
class OrphanedInstanceAdmin(admin.ModelAdmin):
    list_display = ["instance_id", "cloud_account", "workspace_tag", "state", "first_seen_at", "terminated_at"]
    list_filter = ["cloud_account", ("terminated_at", admin.EmptyFieldListFilter)]
    search_fields = ["instance_id", "workspace_tag"]


@admin.register(WorkspacePreference)
class WorkspacePreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "cloud_account", "project", "updated_at"]
    search_fields = ["user__email"]
    list_select_related = ["user", "cloud_account", "project"]
