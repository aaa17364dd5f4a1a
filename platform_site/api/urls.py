"""Every route of /api/v1. Unknown paths under /api/ answer the envelope with ROUTE_NOT_FOUND."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import api as accounts_api
from audit import api as audit_api
from budgets.urls import urlpatterns as budget_urls
from idle.api import agent as agent_api
from idle.api import policies as idle_api
from invitations import api as invitations_api
from platform_site.api import system
from projects import api as projects_api
from templates import api as templates_api
from workspaces import api as workspaces_api

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
    # Workspaces (Prism-compatible paths)
    path("instances", workspaces_api.InstanceListView.as_view(), name="instances"),
    path("instances/launch", workspaces_api.InstanceLaunchView.as_view(), name="instances-launch"),
    path("instances/<str:name>", workspaces_api.InstanceDetailView.as_view(), name="instance-detail"),
    path("instances/<str:name>/stop", workspaces_api.InstanceStopView.as_view(), name="instance-stop"),
    path("instances/<str:name>/start", workspaces_api.InstanceStartView.as_view(), name="instance-start"),
    path("instances/<str:name>/hibernate", workspaces_api.InstanceHibernateView.as_view(), name="instance-hibernate"),
    path("instances/<str:name>/resume", workspaces_api.InstanceResumeView.as_view(), name="instance-resume"),
    path("instances/<str:name>/terminate", workspaces_api.InstanceTerminateView.as_view(), name="instance-terminate"),
    path(
        "instances/<str:name>/hibernation-status",
        workspaces_api.HibernationStatusView.as_view(),
        name="instance-hibernation-status",
    ),
    path("instances/<str:name>/connect", workspaces_api.ConnectView.as_view(), name="instance-connect"),
    path("instances/<str:name>/extend", workspaces_api.ExtendView.as_view(), name="instance-extend"),
    path("instances/<str:name>/usage", workspaces_api.UsageView.as_view(), name="instance-usage"),
    path("instances/<str:name>/sysinfo", workspaces_api.SysinfoView.as_view(), name="instance-sysinfo"),
    path("instances/<str:name>/firewall", workspaces_api.FirewallView.as_view(), name="instance-firewall"),
    path("jobs/<str:job_id>", workspaces_api.JobDetailView.as_view(), name="job-detail"),
    path("logs", workspaces_api.LogListView.as_view(), name="logs"),
    path("logs/<str:name>/types", workspaces_api.LogTypesView.as_view(), name="log-types"),
    path("logs/<str:name>", workspaces_api.LogView.as_view(), name="log"),
    path("profiles", workspaces_api.ProfileListView.as_view(), name="profiles"),
    path("profiles/current", workspaces_api.ProfileCurrentView.as_view(), name="profile-current"),
    path("profiles/switch", workspaces_api.ProfileSwitchView.as_view(), name="profile-switch"),
    # Invitations
    path("invitations/send", invitations_api.InvitationSendView.as_view(), name="invitations-send"),
    path("invitations/bulk", invitations_api.InvitationBulkView.as_view(), name="invitations-bulk"),
    path("invitations/me", invitations_api.MyInvitationsView.as_view(), name="invitations-me"),
    path(
        "invitations/project/<str:project_id>",
        invitations_api.ProjectInvitationsView.as_view(),
        name="invitations-project",
    ),
    path("invitations/<str:invitation_id>", invitations_api.InvitationDetailView.as_view(), name="invitation-detail"),
    path(
        "invitations/<str:invitation_id>/accept",
        invitations_api.InvitationAcceptView.as_view(),
        name="invitation-accept",
    ),
    path(
        "invitations/<str:invitation_id>/decline",
        invitations_api.InvitationDeclineView.as_view(),
        name="invitation-decline",
    ),
    path(
        "invitations/<str:invitation_id>/resend",
        invitations_api.InvitationResendView.as_view(),
        name="invitation-resend",
    ),
    # Audit
    path("audit", audit_api.AuditEventListView.as_view(), name="audit-events"),
    path("audit/<str:event_id>", audit_api.AuditEventDetailView.as_view(), name="audit-event-detail"),
    # Idle detection (policies, state, warnings, history)
    path("idle/profiles", idle_api.IdleProfilesView.as_view(), name="idle-profiles"),
    path("idle/instances/<str:name>", idle_api.IdleInstanceView.as_view(), name="idle-instance"),
    path(
        "idle/instances/<str:name>/configure",
        idle_api.IdleInstanceConfigureView.as_view(),
        name="idle-instance-configure",
    ),
    path("idle/instances/<str:name>/snooze", idle_api.IdleInstanceSnoozeView.as_view(), name="idle-instance-snooze"),
    path("idle/history", idle_api.IdleHistoryView.as_view(), name="idle-history"),
    path("idle/warnings", idle_api.IdleWarningsView.as_view(), name="idle-warnings"),
    path("projects/<str:project_id>/idle-policy", idle_api.ProjectIdlePolicyView.as_view(), name="project-idle-policy"),
    # Idle detection (agent)
    path("agent/heartbeat", agent_api.HeartbeatView.as_view(), name="agent-heartbeat"),
    path("agent/script", agent_api.AgentScriptView.as_view(), name="agent-script"),
    # Money: budget pools and allocations, project money, costs (budgets/urls.py)
    *budget_urls,
]
