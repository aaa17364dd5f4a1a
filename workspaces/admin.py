"""Django admin for workspaces. Everything that changes a workspace or the cloud goes through the services,
as the API and the console do: launches happen through the API/console (no "Add"), a workspace is never deleted
(termination is an action, and its transitions are the cost history), lifecycle actions call
`services.workspace_act`, and firewall rules are added and removed through `services.firewall_add` /
`services.firewall_clear`, so that the security group follows."""

import contextlib

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from platform_site.admin import ReadOnlyAdmin
from platform_site.errors import CarrelError, NotFound
from workspaces import services
from workspaces.forms import TERMINATE_CONFIRMATION, FirewallRuleAddForm, TerminateConfirmationForm
from workspaces.models import (
    CloudAccount,
    FirewallRule,
    OrphanedInstance,
    ProvisionJob,
    StateTransition,
    Workspace,
    WorkspacePreference,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class StateTransitionInline(ReadOnlyInline):
    model = StateTransition
    fields = ["created_at", "from_state", "to_state", "actor", "reason", "instance_type", "hourly_rate"]
    readonly_fields = fields


class FirewallRuleInline(ReadOnlyInline):
    """Shown here; added and removed under Firewall rules (through the services)."""

    model = FirewallRule
    fields = ["position", "protocol", "from_port", "to_port", "cidr", "description"]
    readonly_fields = fields


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
    readonly_fields = [field.name for field in Workspace._meta.fields]
    inlines = [StateTransitionInline, FirewallRuleInline]
    actions = ["stop_selected", "start_selected", "hibernate_selected", "resume_selected", "terminate_selected"]

    # Launches go through the API or the console (services.workspace_launch); there is nothing to add here.
    def has_add_permission(self, request) -> bool:
        return False

    # Terminating is an action; deleting the row would erase the transitions (the cost history) and leave
    # the instance running.
    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        """The change page is read-only (renames and TTLs go through the API or the console); the list's
        lifecycle actions, which call the services, need the change permission."""
        if obj is not None:
            return False
        return super().has_change_permission(request)

    def _act(self, request, queryset, action: str) -> None:
        """Ask for `action` on each workspace through the service, and say what became of each."""
        for workspace in queryset.select_related("project", "owner", "organization").order_by("name"):
            try:
                result = services.workspace_act(
                    actor=request.user, workspace=workspace, action=action, reason="admin action"
                )
            except CarrelError as error:
                self.message_user(request, f"{workspace.name}: {action} refused: {error.message}", messages.ERROR)
                continue
            if result.already_under_way:
                self.message_user(request, f"{workspace.name}: already {result.new_state}.", messages.INFO)
            else:
                self.message_user(
                    request,
                    f"{workspace.name}: {result.previous_state} → {result.new_state}. {result.message}.",
                    messages.SUCCESS,
                )

    @admin.action(description="Stop selected workspaces", permissions=["change"])
    def stop_selected(self, request, queryset):
        self._act(request, queryset, "stop")

    @admin.action(description="Start selected workspaces", permissions=["change"])
    def start_selected(self, request, queryset):
        self._act(request, queryset, "start")

    @admin.action(description="Hibernate selected workspaces", permissions=["change"])
    def hibernate_selected(self, request, queryset):
        self._act(request, queryset, "hibernate")

    @admin.action(description="Resume selected workspaces from hibernation", permissions=["change"])
    def resume_selected(self, request, queryset):
        self._act(request, queryset, "resume")

    @admin.action(description="Terminate selected workspaces…", permissions=["change"])
    def terminate_selected(self, request, queryset):
        """Like Django's delete confirmation: list the workspaces, and terminate only once DELETE is typed
        (what the API asks for too)."""
        workspaces = list(queryset.select_related("project", "owner").order_by("name"))
        form = TerminateConfirmationForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            self._act(request, queryset, "terminate")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Terminate workspaces?",
            "subtitle": None,
            "opts": self.opts,
            "workspaces": workspaces,
            "form": form,
            "confirmation": TERMINATE_CONFIRMATION,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/workspaces/workspace/terminate_selected_confirmation.html", context)


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
    # An endpoint typed without a scheme is https (Django 6's default, and what a real endpoint speaks).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(boolean=True, description="Reconciles")
    def reconcile_healthy(self, account: CloudAccount) -> bool | None:
        if account.last_reconciled_at is None:
            return None
        return not account.last_reconcile_error


@admin.register(StateTransition)
class StateTransitionAdmin(ReadOnlyAdmin):
    """The cost history: the ledger is computed from these rows, so they are never edited or deleted."""

    list_display = ["created_at", "workspace", "from_state", "to_state", "actor", "hourly_rate", "reason"]
    list_filter = ["to_state", "from_state"]
    search_fields = ["workspace__name", "workspace__id", "reason"]
    list_select_related = ["workspace", "actor"]


@admin.register(ProvisionJob)
class ProvisionJobAdmin(ReadOnlyAdmin):
    """Launch and resize jobs, written by the services and their tasks."""

    list_display = ["id", "workspace", "kind", "status", "progress", "attempts", "error_code", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["id", "workspace__name", "error_message"]
    list_select_related = ["workspace"]


@admin.register(FirewallRule)
class FirewallRuleAdmin(admin.ModelAdmin):
    """Rules are added through `services.firewall_add` (the API's checks, world-open SSH included) and removed
    through `services.firewall_clear`; each dispatches a sync of the security group once the change commits.
    A rule is never edited in place: remove it and add another, as with the API."""

    list_display = ["workspace", "position", "protocol", "from_port", "to_port", "cidr", "description", "created_by"]
    list_filter = ["protocol"]
    search_fields = ["workspace__name", "workspace__id", "cidr"]
    list_select_related = ["workspace", "created_by"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in FirewallRule._meta.fields]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # The service decides who manages a workspace's rules (platform superusers manage every workspace).
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or services.can_manage(user=request.user, workspace=obj.workspace))

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = FirewallRuleAddForm(request.POST if request.method == "POST" else None, admin_site=self.admin_site)
        if form.is_bound and form.is_valid():
            workspace = form.cleaned_data["workspace"]
            try:
                created = services.firewall_add(
                    actor=request.user,
                    workspace=workspace,
                    rules=[form.rule()],
                    allow_world_ssh=form.cleaned_data["allow_world_ssh"],
                )
            except CarrelError as error:
                form.add_carrel_error(error)
            else:
                for rule in created:
                    self.log_addition(request, rule, [{"added": {}}])
                if created:
                    self.message_user(
                        request,
                        f"{workspace.name}: added {created[0]}; the security group follows.",
                        messages.SUCCESS,
                    )
                else:
                    self.message_user(request, f"{workspace.name} already has this rule.", messages.INFO)
                return HttpResponseRedirect(reverse("admin:workspaces_firewallrule_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Add firewall rule",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/workspaces/firewallrule/add_rule.html", context)

    def delete_model(self, request, obj: FirewallRule) -> None:
        # A rule removed meanwhile (NotFound) is what was asked for.
        with contextlib.suppress(NotFound):
            services.firewall_clear(actor=request.user, workspace=obj.workspace, position=obj.position)

    def delete_queryset(self, request, queryset) -> None:
        for rule in queryset.select_related("workspace__project", "workspace__owner"):
            self.delete_model(request, rule)


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
