from django.contrib import admin, messages

from invitations import services
from invitations.models import Invitation, InvitationResend
from platform_site.errors import CarrelError


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "project",
        "role",
        "status",
        "invited_by",
        "invited_at",
        "expires_at",
        "resend_count",
        "delivery_status",
    ]
    list_filter = ["status", "role", "delivery_status", "organization"]
    search_fields = ["email", "id", "project__name", "invited_by__email"]
    list_select_related = ["project", "invited_by"]
    date_hierarchy = "invited_at"
    exclude = ["token_salt", "token_hash"]
    readonly_fields = [f.name for f in Invitation._meta.fields if f.name not in ("token_salt", "token_hash")]
    actions = ["resend_selected", "revoke_selected"]

    def has_add_permission(self, request) -> bool:
        return False  # invitations are sent from the API or the console, with their e-mail

    def _each(self, request, queryset, service, verb: str) -> None:
        done, refused = 0, []
        for invitation in queryset.select_related("project"):
            try:
                service(actor=request.user, invitation=invitation)
                done += 1
            except CarrelError as error:
                refused.append(f"{invitation.email}: {error.message}")
        self.message_user(request, f"{verb} {done} invitation(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, "; ".join(refused), messages.WARNING)

    @admin.action(description="Resend selected invitations (new links)")
    def resend_selected(self, request, queryset):
        self._each(request, queryset, services.invitation_resend, "Resent")

    @admin.action(description="Revoke selected invitations")
    def revoke_selected(self, request, queryset):
        self._each(request, queryset, services.invitation_revoke, "Revoked")


@admin.register(InvitationResend)
class InvitationResendAdmin(admin.ModelAdmin):
    """Resends, as the daily sending limits count them. Read-only: they are written by the resend service."""

    list_display = ["invitation", "organization", "resent_by", "resent_at"]
    list_filter = ["organization"]
    search_fields = ["invitation__email", "invitation__id", "resent_by__email", "organization__name"]
    list_select_related = ["invitation", "organization", "resent_by"]
    date_hierarchy = "resent_at"
    readonly_fields = ["invitation", "organization", "resent_by", "resent_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
