"""Every route of /api/v1. Unknown paths under /api/ answer the envelope with ROUTE_NOT_FOUND."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import api as accounts_api
from audit import api as audit_api
from platform_site.api import system
from projects import api as projects_api
from templates import api as templates_api

urlpatterns = [
    path("healthcheck", system.HealthcheckView.as_view(), name="healthcheck"),
    path("daemon/status", system.DaemonStatusView.as_view(), name="daemon-status"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Login
    path("auth/providers", accounts_api.AuthProvidersView.as_view(), name="auth-providers"),
    path("auth/login", accounts_api.AuthLoginView.as_view(), name="auth-login"),
    path("auth/logout", accounts_api.AuthLogoutView.as_view(), name="auth-logout"),
    # People
    path("me/profile", accounts_api.MeProfileView.as_view(), name="me-profile"),
    path("users", accounts_api.UserListView.as_view(), name="users"),
    path("users/<str:username>/profile", accounts_api.UserProfileView.as_view(), name="user-profile"),
    # Tokens
    path("tokens", accounts_api.TokenListCreateView.as_view(), name="tokens"),
    path("tokens/purge", accounts_api.TokenPurgeView.as_view(), name="tokens-purge"),
    path("tokens/revoke/<str:digest>", accounts_api.TokenRevokeView.as_view(), name="tokens-revoke"),
    path("tokens/<str:token_id>", accounts_api.TokenDetailView.as_view(), name="token-detail"),
    # Organizations
    path("organizations", accounts_api.OrganizationListCreateView.as_view(), name="organizations"),
    path(
        "organizations/<str:organization_id>",
        accounts_api.OrganizationDetailView.as_view(),
        name="organization-detail",
    ),
    path(
        "organizations/<str:organization_id>/members",
        accounts_api.OrganizationMembersView.as_view(),
        name="organization-members",
    ),
    path(
        "organizations/<str:organization_id>/members/<str:username>",
        accounts_api.OrganizationMemberDetailView.as_view(),
        name="organization-member-detail",
    ),
    # Projects
    path("projects", projects_api.ProjectListCreateView.as_view(), name="projects"),
    path("projects/<str:project_id>", projects_api.ProjectDetailView.as_view(), name="project-detail"),
    path("projects/<str:project_id>/members", projects_api.ProjectMembersView.as_view(), name="project-members"),
    path(
        "projects/<str:project_id>/members/<str:username>",
        projects_api.ProjectMemberDetailView.as_view(),
        name="project-member-detail",
    ),
    # Templates
    path("templates", templates_api.TemplateListView.as_view(), name="templates"),
    path("templates/validate", templates_api.TemplateValidateView.as_view(), name="templates-validate"),
    path("templates/<str:name>/info", templates_api.TemplateInfoView.as_view(), name="template-info"),
    path("templates/<str:name>", templates_api.TemplateDetailView.as_view(), name="template-detail"),
    # Audit
    path("audit", audit_api.AuditEventListView.as_view(), name="audit-events"),
    path("audit/<str:event_id>", audit_api.AuditEventDetailView.as_view(), name="audit-event-detail"),
]
