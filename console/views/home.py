"""Home: my workspaces with live state and cost so far, my projects with their budgets (bar, burn, runway),
invitations waiting for me, and a first step for a person who belongs to no project yet."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views import View

from accounts.models import Organization
from budgets.selectors import workspace_costs
from budgets.selectors_burn import project_burns
from console.views.base import ConsoleView, done, failed, field_errors, not_found
from console.views.idle import home_warnings
from invitations import services as invitation_services
from invitations.models import Invitation, InvitationStatus
from platform_site.errors import CarrelError
from platform_site.tenancy import visible_or_404
from projects.selectors import projects_for
from projects.services import project_create
from workspaces.models import Workspace, WorkspaceState
from workspaces.selectors import workspaces_for

# The home page lists this many of my newest live workspaces; the API lists them all.
WORKSPACES_SHOWN = 50
# States in which something is changing: the list then refreshes every few seconds.
CHANGING = {
    WorkspaceState.PENDING,
    WorkspaceState.LAUNCHING,
    WorkspaceState.STARTING,
    WorkspaceState.STOPPING,
    WorkspaceState.HIBERNATING,
    WorkspaceState.RESUMING,
    WorkspaceState.RESIZING,
    WorkspaceState.TERMINATING,
}
FAST, SLOW = 3000, 20000  # ms: while something changes; while something runs (its cost grows)


def my_workspaces(user) -> dict:
    queryset = Workspace.objects.visible_to(user).filter(owner=user).exclude(state=WorkspaceState.TERMINATED)
    workspaces = list(
        workspaces_for(user=user, queryset=queryset).order_by("-created_at", "id")[: WORKSPACES_SHOWN + 1]
    )
    more = len(workspaces) > WORKSPACES_SHOWN
    workspaces = workspaces[:WORKSPACES_SHOWN]
    costs = workspace_costs(workspaces)
    for workspace in workspaces:
        workspace.cost_so_far = costs.get(workspace.pk)
    states = {workspace.state for workspace in workspaces}
    interval = FAST if states & CHANGING else SLOW if WorkspaceState.RUNNING in states else None
    return {"workspaces": workspaces, "more_workspaces": more, "live_interval": interval}


def workspaces_fragment(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponse(status=403)
    return render(request, "console/home/workspaces.html", my_workspaces(request.user))


class HomeView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated:
            return render(request, "console/home/welcome.html")
        return self.page(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        """Create a project (the first step of a person who runs an organization)."""
        if not request.user.is_authenticated:
            return HttpResponse(status=403)
        form = {"name": request.POST.get("name", ""), "organization": request.POST.get("organization", "")}
        try:
            organization = visible_or_404(
                Organization, request.user, code="ORGANIZATION_NOT_FOUND", pk=form["organization"]
            )
            project = project_create(
                actor=request.user,
                organization=organization,
                name=form["name"],
                description=request.POST.get("description", ""),
            )
        except CarrelError as error:
            if error.status_code == 404:  # an organization the person cannot see: as if it did not exist
                return not_found(request, error)
            errors = field_errors(error)
            return self.page(request, project_form=form, project_errors=errors, status=400)
        return done(request, f"Project {project.name} created.", f"/projects/{project.pk}/")

    def page(self, request: HttpRequest, *, status: int = 200, **extra) -> HttpResponse:
        user = request.user
        projects = list(projects_for(user=user))
        burns = project_burns(projects)
        for project in projects:
            project.burn = burns.get(project.pk)
            project.my_role = project.caller_project_role or (
                f"organization {project.caller_org_role}" if project.caller_org_role else ""
            )
        invitations = list(
            Invitation.objects.addressed_to(user)
            .filter(status=InvitationStatus.PENDING)
            .select_related("project", "project__organization", "invited_by")
            .order_by("-invited_at")
        )
        organizations = list(Organization.objects.visible_to(user).order_by("name"))
        context = {
            **my_workspaces(user),
            "idle_warnings": home_warnings(user),
            "projects": projects,
            "invitations": invitations,
            "organizations": organizations,
            "project_form": {},
            "project_errors": {},
            **extra,
        }
        return render(request, "console/home/page.html", context, status=status)


class InvitationAnswerView(ConsoleView):
    """Accept or decline an invitation addressed to one of my verified e-mail addresses."""

    def post(self, request: HttpRequest, invitation_id: str, answer: str) -> HttpResponse:
        invitation = (
            Invitation.objects.addressed_to(request.user).filter(pk=invitation_id).select_related("project").first()
        )
        if invitation is None:
            return not_found(request)
        try:
            if answer == "accept":
                invitation_services.invitation_accept(actor=request.user, invitation=invitation)
            else:
                invitation_services.invitation_decline(actor=request.user, invitation=invitation)
        except CarrelError as error:
            return failed(request, error, reverse("console:home"))
        if answer == "accept":
            return done(request, f"You joined {invitation.project.name}.", f"/projects/{invitation.project_id}/")
        return done(request, f"You declined the invitation to {invitation.project.name}.", reverse("console:home"))


urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("home/workspaces", workspaces_fragment, name="home-workspaces"),
    path(
        "home/invitations/<str:invitation_id>/accept",
        InvitationAnswerView.as_view(),
        {"answer": "accept"},
        name="home-invitation-accept",
    ),
    path(
        "home/invitations/<str:invitation_id>/decline",
        InvitationAnswerView.as_view(),
        {"answer": "decline"},
        name="home-invitation-decline",
    ),
]
