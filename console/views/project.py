"""The project page: members and roles, invitations, the budget with its chart, budget alerts, top spenders and the
project's newest workspaces.

Each part calls what the API calls: `projects.api` (the project, its members; project_member_update and
project_member_remove), `invitations.api` (send, bulk, resend, revoke; the list for owners and admins),
`budgets.api.costs` (budgets.reports.project_budget and project_cost_analysis; budgets.history.cost_history for
the days of the chart and the members' spend). The forms are parsed by the API's own serializers where it has
them, so the same input is refused the same way; the services decide the rest, and their errors show in words
next to the form. A project the person may not see (another tenant's, or none) is the 404 page, on every route.
"""

import re
from datetime import timedelta
from decimal import Decimal

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone

from budgets import history, ledger, reports
from budgets.models import BudgetAlert
from budgets.selectors import workspace_costs
from budgets.selectors_pools import project_budget_briefs
from console.views.base import NON_FIELD, ConsoleView, done, failed, field_errors, serializer_errors
from console.views.project_chart import budget_chart
from invitations import services as invitation_services
from invitations.api import SendSerializer
from invitations.models import DeliveryStatus, Invitation, InvitationStatus
from platform_site.errors import CarrelError, ValidationFailed
from platform_site.tenancy import visible_or_404
from projects import services as project_services
from projects.models import PROJECT_ROLE_RANK, Project, ProjectMember, ProjectRole
from projects.selectors import projects_for
from projects.serializers import ProjectMemberUpdateSerializer
from workspaces.models import Workspace

MANAGERS = {ProjectRole.OWNER, ProjectRole.ADMIN}
# The page lists this many of the project's newest workspaces and invitations; the API lists them all.
WORKSPACES_SHOWN = 20
INVITATIONS_SHOWN = 50
TOP_MEMBERS = 5
# An unfunded project has no period: its members' spend is shown over the last 30 days (the API's default range).
UNFUNDED_DAYS = 30
# budgets.history answers at most a year of days at once; a longer period's earlier days are carried as one sum.
MAX_CHART_DAYS = 366
# Service errors without `fields`, and the form field they concern.
CODE_FIELDS = {
    "ALREADY_MEMBER": "email",
    "INVITATION_EXISTS": "email",
    "ROLE_TOO_HIGH": "role",
}
# E-mails on their way: the invitations list follows them until they are sent or have failed.
DELIVERING = {DeliveryStatus.QUEUED, DeliveryStatus.RETRYING}
EMAILS_SPLIT = re.compile(r"[\s,;]+")


def status_of(error: CarrelError) -> int:
    return error.status_code if 400 <= error.status_code < 500 else 400


def pasted_emails(text: str) -> list[str]:
    """Addresses pasted one per line or separated by commas (or semicolons, or spaces), in their order."""
    return [email for email in EMAILS_SPLIT.split(text or "") if email]


class ProjectView(ConsoleView):
    """A project the person may see (projects.api's lookup), with their role in it."""

    def load(self, request: HttpRequest, project_id: str) -> Project:
        user = request.user
        project = visible_or_404(
            Project,
            user,
            code="PROJECT_NOT_FOUND",
            message="No such project visible to you.",
            # The project page lists every member (the API shows a preview and pages through them).
            refine=lambda queryset: (
                projects_for(user=user, queryset=queryset)
                .select_related("allocation__pool")
                .prefetch_related(Prefetch("members", queryset=ProjectMember.objects.select_related("user")))
            ),
            pk=project_id,
        )
        if user.is_superuser:
            project.my_role = ProjectRole.OWNER
        else:
            project.my_role = project_services.effective_project_role(
                project_role=project.caller_project_role, org_role=project.caller_org_role
            )
        self.project = project
        return project

    def url(self, fragment: str = "") -> str:
        return reverse("console:project", args=[self.project.pk]) + fragment

    # --- The page ---------------------------------------------------------------------------------------------

    def page(self, request: HttpRequest, *, status: int = 200, **extra) -> HttpResponse:
        project = self.project
        manage = project.my_role in MANAGERS
        now = timezone.now()
        members = current_members(project, now)
        my_rank = PROJECT_ROLE_RANK.get(project.my_role, 0) if manage else 0
        for member in members:
            # What the forms offer (never a role above one's own); the services check again.
            member.manageable = member.user_id != request.user.pk and PROJECT_ROLE_RANK[member.role] <= my_rank
        budget = reports.project_budget(project, now=now)
        analysis = reports.project_cost_analysis(project, now=now)
        brief = project_budget_briefs([project.pk], now=now).get(project.pk)
        money_view = budget_view(request, project, budget, analysis, brief, now)
        workspaces = list(
            Workspace.objects.visible_to(request.user)
            .filter(project=project)
            .select_related("organization", "owner")
            .order_by("-created_at", "-id")[: WORKSPACES_SHOWN + 1]
        )
        more_workspaces = len(workspaces) > WORKSPACES_SHOWN
        workspaces = workspaces[:WORKSPACES_SHOWN]
        costs = workspace_costs(workspaces, now=now)
        for workspace in workspaces:
            workspace.cost_so_far = costs.get(workspace.pk)
        listed = invitations_of(project) if manage else {}
        invite_errors = extra.pop("invite_errors", {})
        bulk_errors = extra.pop("bulk_errors", {})
        # Someone who may not invite sees no invitation forms: a refusal of theirs is shown at the top instead.
        refused = (
            [] if manage else [text for texts in (*invite_errors.values(), *bulk_errors.values()) for text in texts]
        )
        context = {
            "project": project,
            "manage": manage,
            "is_owner": project.my_role == ProjectRole.OWNER,
            "members": members,
            "roles": ProjectRole.choices,
            "grantable_roles": grantable_roles(project.my_role),
            "workspaces": workspaces,
            "more_workspaces": more_workspaces,
            "workspaces_shown": WORKSPACES_SHOWN,
            **listed,
            "invite_form": extra.pop("invite_form", {"role": ProjectRole.MEMBER}),
            "invite_errors": invite_errors,
            "invite_form_errors": invite_errors.get(NON_FIELD, []),
            "bulk_form": extra.pop("bulk_form", {"role": ProjectRole.MEMBER}),
            "bulk_errors": bulk_errors,
            "bulk_form_errors": bulk_errors.get(NON_FIELD, []),
            "bulk_result": extra.pop("bulk_result", None),
            "bulk_max": invitation_services.bulk_max(),
            "message_max": invitation_services.MESSAGE_MAX_LENGTH,
            "refused": refused,
            **money_view,
            **extra,
        }
        return render(request, "console/project/page.html", context, status=status)


def invitations_of(project: Project) -> dict:
    """The project's newest invitations (invitations.api lists them to owners and admins), and whether any e-mail
    is still on its way (the list then refreshes itself)."""
    invitations = list(
        Invitation.objects.filter(project=project)
        .select_related("invited_by")
        .order_by("-invited_at", "-id")[: INVITATIONS_SHOWN + 1]
    )
    shown = invitations[:INVITATIONS_SHOWN]
    return {
        "invitations": shown,
        "more_invitations": len(invitations) > INVITATIONS_SHOWN,
        "invitations_shown": INVITATIONS_SHOWN,
        "invitations_changing": any(
            invitation.status == InvitationStatus.PENDING and invitation.delivery_status in DELIVERING
            for invitation in shown
        ),
    }


def current_members(project: Project, now) -> list[ProjectMember]:
    """Memberships in force (the prefetched members, filtered as the API's serializer does), owners first."""
    members = [m for m in project.members.all() if m.expires_at is None or m.expires_at > now]
    members.sort(key=lambda m: (-PROJECT_ROLE_RANK[m.role], m.user.email))
    return members


def grantable_roles(role: str | None) -> list[tuple[str, str]]:
    """The roles the person could grant (never above their own); the services check again."""
    if role is None:
        return []
    return [
        (value, label) for value, label in ProjectRole.choices if PROJECT_ROLE_RANK[value] <= PROJECT_ROLE_RANK[role]
    ]


def budget_view(request, project: Project, budget: dict, analysis: dict, brief, now) -> dict:
    """What the budget card, the chart, the alerts and the top spenders show."""
    zone = ledger.zone_of(project.organization.time_zone)
    today = now.astimezone(zone).date()
    funded = budget["total_allocated"] is not None
    if funded:
        first = budget["period_start"].astimezone(zone).date()
        # period_end is the midnight after the period's last day.
        last = (budget["period_end"] - timedelta(microseconds=1)).astimezone(zone).date()
        through = min(today, last)
        start = max(first, through - timedelta(days=MAX_CHART_DAYS - 1))
    else:
        first = last = None
        through = today
        start = today - timedelta(days=UNFUNDED_DAYS - 1)
    days = (
        history.cost_history(
            user=request.user,
            start=start,
            end=through,
            granularity="daily",
            group_by="member",
            project=project,
            now=now,
        )
        if start <= through
        else {"daily_costs": []}
    )
    daily = [(bucket["date"], bucket["cost"]) for bucket in days["daily_costs"]]
    by_member: dict[str, dict] = {}
    for bucket in days["daily_costs"]:
        for item in bucket["breakdown"]:
            row = by_member.setdefault(item["id"], {"name": item["name"], "cost": Decimal(0)})
            row["cost"] += item["cost"]
    top_members = sorted(
        (row for row in by_member.values() if row["cost"] > 0), key=lambda row: (-row["cost"], row["name"])
    )[:TOP_MEMBERS]
    spent = budget["current_spend"]
    for row in top_members:
        row["percentage"] = reports.percent(row["cost"], spent) if funded else None
    chart = None
    if funded and first is not None and last is not None and first <= today:
        in_window = sum((cost for _, cost in daily), Decimal(0))
        carried = max(Decimal(0), spent - in_window) if start > first else Decimal(0)
        chart = budget_chart(
            daily=daily,
            carried=carried,
            start=first if start == first else start,
            end=last,
            now=now.astimezone(zone),
            today=today,
            allocation=budget["total_allocated"],
            spent=spent,
            burn=analysis["burn_rate_daily"],
        )
    alerts = budget["alerts"]
    kinds = dict(BudgetAlert.Kind.choices)
    for alert in alerts:
        alert["kind_label"] = kinds.get(alert["kind"], alert["kind"])
    return {
        "funded": funded,
        "budget": budget,
        "analysis": analysis,
        "budget_status": brief.status if brief else None,
        "chart": chart,
        "alerts": alerts,
        "top_workspaces": budget["top_spending_instances"],
        "top_members": top_members,
        "members_window": "this period" if funded else f"the last {UNFUNDED_DAYS} days",
    }


class ProjectPageView(ProjectView):
    def get(self, request: HttpRequest, project_id: str) -> HttpResponse:
        self.load(request, project_id)
        return self.page(request)


class InvitationsLiveView(ProjectView):
    """The invitations table alone, for the page's live region while e-mails are on their way."""

    def get(self, request: HttpRequest, project_id: str) -> HttpResponse:
        project = self.load(request, project_id)
        if project.my_role not in MANAGERS:
            return HttpResponse("Only the project's owners and admins see its invitations.", status=403)
        context = {"project": project, **invitations_of(project)}
        return render(request, "console/project/invitations_table.html", context)


# --- Members ------------------------------------------------------------------------------------------------------


class MemberView(ProjectView):
    """Change a member's role, or remove them (projects.api.ProjectMemberDetailView: the same services)."""

    def post(self, request: HttpRequest, project_id: str, username: str, action: str) -> HttpResponse:
        project = self.load(request, project_id)
        member = visible_or_404(
            ProjectMember,
            request.user,
            code="MEMBER_NOT_FOUND",
            message="No such member of this project.",
            refine=lambda queryset: queryset.current().select_related("user", "project__organization"),
            project_id=project.pk,
            user__username=username,
        )
        back = self.url("#members")
        who = member.user.email
        try:
            if action == "remove":
                project_services.project_member_remove(actor=request.user, member=member)
            else:
                parsed = ProjectMemberUpdateSerializer(data={"role": request.POST.get("role", "")})
                if not parsed.is_valid():
                    texts = serializer_errors(parsed.errors)
                    return failed(request, ValidationFailed(" ".join(sum(texts.values(), []))), back)
                project_services.project_member_update(actor=request.user, member=member, **parsed.validated_data)
        except CarrelError as error:
            return failed(request, error, back)
        if action == "remove":
            if member.user_id == request.user.pk:
                return done(request, f"You left {project.name}.", reverse("console:home"))
            return done(request, f"{who} was removed from {project.name}.", back)
        return done(request, f"{who} is now {member.role} of {project.name}.", back)


# --- Invitations --------------------------------------------------------------------------------------------------


class InviteView(ProjectView):
    """Send one invitation (invitations.api.InvitationSendView: SendSerializer, then invitation_send)."""

    def post(self, request: HttpRequest, project_id: str) -> HttpResponse:
        project = self.load(request, project_id)
        form = {
            "email": request.POST.get("email", "").strip(),
            "role": request.POST.get("role", ProjectRole.MEMBER),
            "message": request.POST.get("message", ""),
        }
        parsed = SendSerializer(data={**form, "project_id": project.pk})
        if not parsed.is_valid():
            return self.page(request, invite_form=form, invite_errors=serializer_errors(parsed.errors), status=400)
        data = parsed.validated_data
        try:
            invitation = invitation_services.invitation_send(
                actor=request.user, project=project, email=data["email"], role=data["role"], message=data["message"]
            )
        except CarrelError as error:
            errors = field_errors(error, code_fields=CODE_FIELDS)
            return self.page(request, invite_form=form, invite_errors=errors, status=status_of(error))
        return done(request, f"Invitation sent to {invitation.email} as {invitation.role}.", self.url("#invitations"))


class BulkInviteView(ProjectView):
    """Invite many pasted addresses at once (invitations.services.bulk.invitation_bulk): each address succeeds or
    fails on its own, and the page lists what happened to each."""

    def post(self, request: HttpRequest, project_id: str) -> HttpResponse:
        project = self.load(request, project_id)
        form = {
            "emails": request.POST.get("emails", ""),
            "role": request.POST.get("role", ProjectRole.MEMBER),
            "message": request.POST.get("message", ""),
        }
        emails = pasted_emails(form["emails"])
        if not emails:
            errors = {"emails": ["Paste at least one e-mail address, one per line or separated by commas."]}
            return self.page(request, bulk_form=form, bulk_errors=errors, status=400)
        if form["role"] not in ProjectRole.values:
            return self.page(
                request, bulk_form=form, bulk_errors={"role": [f"One of {', '.join(ProjectRole.values)}."]}, status=400
            )
        try:
            result = invitation_services.invitation_bulk(
                actor=request.user,
                project=project,
                rows=[{"email": email} for email in emails],
                default_role=form["role"],
                default_message=form["message"],
            )
        except CarrelError as error:
            errors = field_errors(error, code_fields={"default_message": "message"})
            if "invitations" in errors:
                errors["emails"] = errors.pop("invitations")
            if "default_message" in errors:
                errors["message"] = errors.pop("default_message")
            return self.page(request, bulk_form=form, bulk_errors=errors, status=status_of(error))
        summary = result.summary
        if summary["failed"] or summary["skipped"]:
            # Show what happened to each address, and keep the ones that did not go out in the box.
            kept = [row["email"] for row in result.results if row["status"] == "failed"]
            return self.page(
                request,
                bulk_form={**form, "emails": "\n".join(kept)},
                bulk_result=result,
                status=200,
            )
        return done(
            request,
            f"{summary['sent']} invitation{'s' if summary['sent'] != 1 else ''} sent.",
            self.url("#invitations"),
        )


class InvitationView(ProjectView):
    """Resend or revoke one of the project's invitations (invitations.api: the same services)."""

    def post(self, request: HttpRequest, project_id: str, invitation_id: str, action: str) -> HttpResponse:
        project = self.load(request, project_id)
        invitation = visible_or_404(
            Invitation,
            request.user,
            code="INVITATION_NOT_FOUND",
            refine=lambda queryset: queryset.select_related("project", "project__organization", "invited_by"),
            project_id=project.pk,
            pk=invitation_id,
        )
        back = self.url("#invitations")
        try:
            if action == "resend":
                invitation_services.invitation_resend(actor=request.user, invitation=invitation)
            else:
                invitation_services.invitation_revoke(actor=request.user, invitation=invitation)
        except CarrelError as error:
            return failed(request, error, back)
        if action == "resend":
            return done(request, f"Invitation to {invitation.email} sent again, with a new link.", back)
        return done(request, f"Invitation to {invitation.email} revoked: its link no longer works.", back)


urlpatterns = [
    path("projects/<str:project_id>/", ProjectPageView.as_view(), name="project"),
    path(
        "projects/<str:project_id>/members/<str:username>/role",
        MemberView.as_view(),
        {"action": "role"},
        name="project-member-role",
    ),
    path(
        "projects/<str:project_id>/members/<str:username>/remove",
        MemberView.as_view(),
        {"action": "remove"},
        name="project-member-remove",
    ),
    path("projects/<str:project_id>/invitations/live", InvitationsLiveView.as_view(), name="project-invitations-live"),
    path("projects/<str:project_id>/invitations/send", InviteView.as_view(), name="project-invite"),
    path("projects/<str:project_id>/invitations/bulk", BulkInviteView.as_view(), name="project-invite-bulk"),
    path(
        "projects/<str:project_id>/invitations/<str:invitation_id>/resend",
        InvitationView.as_view(),
        {"action": "resend"},
        name="project-invitation-resend",
    ),
    path(
        "projects/<str:project_id>/invitations/<str:invitation_id>/revoke",
        InvitationView.as_view(),
        {"action": "revoke"},
        name="project-invitation-revoke",
    ),
]
