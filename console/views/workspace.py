"""Workspace page: state and history, lifecycle actions, the connect panel, firewall rules, the console log tail,
usage and cost — with a live region that follows a launch or a state change until it settles.

Every action calls the service the API's route calls (workspaces/api/*.py), with its permission check inside
the service (`require_can_manage`); the page only hides what the person may not do. The workspace is found by
primary key among those the person may see (`visible_or_404` + `selectors.workspaces_for`): a foreign or
missing workspace is the console's 404 page, on every route here, GET or POST."""

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import F, Window
from django.db.models.functions import Coalesce, Lead
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from idle.services.configure import workspace_idle_configure
from idle.services.snooze import workspace_snooze
from platform_site.errors import CarrelError, PermissionDenied, ValidationFailed
from platform_site.tenancy import visible_or_404
from workspaces import cloud, selectors, services, sizing
from workspaces.models import (
    TRANSITIONAL_STATES,
    FirewallRule,
    ProvisionJob,
    StateTransition,
    Workspace,
    WorkspaceState,
)

from .base import NON_FIELD, ConsoleView, done, failed, field_errors
from .idle import idle_panel

S = WorkspaceState
TRANSITIONS_SHOWN = 50
LOG_TAIL_LINES = 100
LIVE_INTERVAL_MS = 2000
WHOLE_NUMBER_RE = re.compile(r"^[0-9]{1,9}$")
# The buttons of form#workspace-actions, in the order they are shown.
STATE_ACTIONS = ("start", "resume", "stop", "hibernate")
ACTION_LABELS = {"start": "Start", "resume": "Resume", "stop": "Stop", "hibernate": "Hibernate"}
ACTION_DONE = {
    "start": "Starting {name}.",
    "resume": "Resuming {name} from hibernation.",
    "stop": "Stopping {name}; its disk is kept.",
    "hibernate": "Hibernating {name}; its memory and disk are kept.",
}
ACTIVE_JOB = (ProvisionJob.Status.QUEUED, ProvisionJob.Status.RUNNING)


def workspace_for(request: HttpRequest, workspace_id: str) -> Workspace:
    """The workspace among those the person may see (the API's scoping), or NotFound (the 404 page)."""
    return visible_or_404(
        Workspace,
        request.user,
        code="INSTANCE_NOT_FOUND",
        message="No such workspace visible to you.",
        refine=lambda queryset: selectors.workspaces_for(user=request.user, queryset=queryset).select_related(
            "cloud_account"
        ),
        pk=workspace_id,
    )


def page_url(workspace: Workspace) -> str:
    return reverse("console:workspace", args=[workspace.pk])


# --- What the page shows -------------------------------------------------------------------------


def latest_job(workspace: Workspace) -> ProvisionJob | None:
    jobs = list(workspace.jobs.all())  # prefetched newest first by selectors.workspaces_for
    return jobs[0] if jobs else None


def live_context(workspace: Workspace) -> dict:
    """The live region: the state, and the provision job's steps while one is under way (or its error when
    the launch failed). Live while the workspace is on its way somewhere."""
    job = latest_job(workspace)
    job_active = job is not None and job.status in ACTIVE_JOB
    job_failed = job is not None and job.status == ProvisionJob.Status.FAILED and workspace.state == S.ERROR
    live = workspace.state in TRANSITIONAL_STATES or workspace.state == S.PENDING or job_active
    return {
        "workspace": workspace,
        "job": job if (job_active or job_failed) else None,
        "job_failed": job_failed,
        "live": live,
        "live_url": reverse("console:workspace-live", args=[workspace.pk]),
        "live_interval": LIVE_INTERVAL_MS,
    }


@dataclass(frozen=True)
class ConsoleLog:
    lines: list[str]
    problem: str = ""


def console_log(workspace: Workspace) -> ConsoleLog:
    """The console output's tail, as GET /logs/{name}?type=console gets it; provider trouble is a sentence."""
    if not workspace.provider_instance_id:
        return ConsoleLog([], "The workspace has no instance yet, so there is no console output.")
    if workspace.state == S.TERMINATED:
        return ConsoleLog([], "The instance is terminated; its console output is gone.")
    try:
        text = services.provider_for(workspace).console_output(workspace.provider_instance_id)
    except cloud.CloudError:
        return ConsoleLog([], "The cloud provider did not return the console output just now. Try again shortly.")
    lines = (text or "").splitlines()[-LOG_TAIL_LINES:]
    if not lines:
        return ConsoleLog([], "The instance has written no console output yet.")
    return ConsoleLog(lines)


def hours_by_state(workspace: Workspace, now: datetime) -> list[tuple[str, Decimal]]:
    """Hours spent in each state since launch, from the transition rows (each row lasts until the next), in
    one query. The ledger's own times (effective_at) where recorded, else when Carrel saw the change."""
    at = Coalesce("effective_at", "created_at")
    rows = (
        StateTransition.objects.filter(workspace_id=workspace.pk)
        .annotate(at=at, until=Window(Lead(at), order_by=[at.asc(), F("id").asc()]))
        .order_by("at", "id")
        .values_list("to_state", "at", "until")
    )
    seconds: dict[str, float] = defaultdict(float)
    for state, start, end in rows:
        if state == S.TERMINATED:
            continue
        seconds[state] += max(0.0, ((end or now) - start).total_seconds())
    return [
        (state, (Decimal(str(total)) / 3600).quantize(Decimal("0.01")))
        for state, total in sorted(seconds.items(), key=lambda item: -item[1])
        if total > 0
    ]


def resize_choices(workspace: Workspace) -> list[dict]:
    """The sizes on the template's workload ladder, with their instance type and price (from the catalog)."""
    workload = (workspace.template_snapshot.get("instance_defaults") or {}).get("workload") or "general"
    choices = []
    for size in sizing.SIZES:
        try:
            spec = sizing.size_instance_type(size, workload)
            hourly = sizing.hourly_rate(spec, workspace.region, spot=workspace.spot)
        except CarrelError:
            continue
        choices.append(
            {
                "size": size,
                "instance_type": spec.name,
                "vcpu": spec.vcpu,
                "memory": spec.memory_gib,
                "rate": hourly,
                "current": spec.name == workspace.instance_type,
            }
        )
    return choices


def page_context(request: HttpRequest, workspace: Workspace, *, errors=None, values=None) -> dict:
    now = timezone.now()
    manage = services.can_manage(user=request.user, workspace=workspace)
    state = workspace.state
    allowed = [
        action
        for action in STATE_ACTIONS
        if state in services.ACTIONS[action].allowed_from and (action != "hibernate" or workspace.hibernation_capable)
    ]
    transitions = list(
        StateTransition.objects.filter(workspace_id=workspace.pk)
        .select_related("actor")
        .order_by("-created_at", "-id")[:TRANSITIONS_SHOWN]
    )
    usage = selectors.workspace_usage(workspace, until=now)
    return {
        **live_context(workspace),
        "manage": manage,
        "actions": [(action, ACTION_LABELS[action]) for action in allowed] if manage else [],
        "can_extend": manage and state != S.TERMINATED,
        "can_resize": manage and state == S.STOPPED,
        "can_terminate": manage and state in services.ACTIONS["terminate"].allowed_from,
        "can_edit_firewall": manage and state != S.TERMINATED,
        "connect": selectors.connect_info(workspace),
        "transitions": transitions,
        "transitions_limit": TRANSITIONS_SHOWN,
        "rules": list(FirewallRule.objects.filter(workspace_id=workspace.pk).order_by("position")),
        "log": console_log(workspace),
        "usage": usage,
        "hours_by_state": hours_by_state(workspace, now),
        "max_ttl_hours": services.max_ttl_hours(workspace),
        "default_extension_hours": settings.CARREL_DEFAULT_TTL_EXTENSION_HOURS,
        "resize_choices": resize_choices(workspace) if state == S.STOPPED else [],
        "protocols": FirewallRule.Protocol.choices,
        "client_cidr": services.single_host_cidr(getattr(request, "client_ip", None)),
        "errors": errors or {},
        "values": values or {},
        **idle_panel(request, workspace, manage=manage),
    }


def render_page(request, workspace, *, errors=None, values=None, status=200) -> HttpResponse:
    context = page_context(request, workspace, errors=errors, values=values)
    return render(request, "console/workspace/page.html", context, status=status)


# --- Pages ---------------------------------------------------------------------------------------


class WorkspaceView(ConsoleView):
    def get(self, request, workspace_id: str):
        return render_page(request, workspace_for(request, workspace_id))


class WorkspaceLiveView(ConsoleView):
    """The live region alone (polled by console.js while the workspace is on its way somewhere)."""

    def get(self, request, workspace_id: str):
        workspace = workspace_for(request, workspace_id)
        return render(request, "console/workspace/live.html", live_context(workspace))


# --- Actions -------------------------------------------------------------------------------------


class _Action(ConsoleView):
    """A POST on the workspace. A refusal of the person (not allowed), of the state or of the budget comes back as
    a message on the page; an error about what was typed (one with `fields`) re-renders the page with it next to
    the field of the form `form` names."""

    form = ""
    fields: tuple[str, ...] = ()

    def post(self, request, workspace_id: str):
        workspace = workspace_for(request, workspace_id)
        try:
            return self.act(request, workspace)
        except PermissionDenied as error:
            return failed(request, error, page_url(workspace))
        except CarrelError as error:
            if not self.form or not error.fields:
                # About the workspace (its state, the budget, a rule gone), not what was typed: a message.
                return failed(request, error, page_url(workspace))
            return render_page(
                request,
                workspace_for(request, workspace.pk),  # afresh: the refused action changed nothing
                errors={self.form: self.form_errors(error)},
                values={self.form: request.POST},
                status=error.status_code if 400 <= error.status_code < 500 else 400,
            )

    def get(self, request, workspace_id: str):
        """An action's address opened in the browser: the workspace's page (the 404 page for a foreign one)."""
        return HttpResponseRedirect(page_url(workspace_for(request, workspace_id)))

    def form_errors(self, error: CarrelError) -> dict[str, list[str]]:
        """The error by field of this form; a field the form does not have goes to the form as a whole."""
        shown: dict[str, list[str]] = {"non_field": []}
        for field, texts in field_errors(error).items():
            if field in self.fields:
                shown[field] = texts
            elif field == NON_FIELD:
                shown["non_field"].extend(texts)
            else:
                shown["non_field"].extend([error.message, *texts] if error.message not in texts else texts)
        return shown

    def act(self, request, workspace: Workspace) -> HttpResponse:
        raise NotImplementedError


class ActView(_Action):
    """Stop, start, hibernate or resume (POST /instances/{name}/{action})."""

    def act(self, request, workspace):
        action = request.POST.get("action", "")
        if action not in STATE_ACTIONS:
            raise ValidationFailed("Choose stop, start, hibernate or resume.", fields={NON_FIELD: ["Unknown action."]})
        result = services.workspace_act(actor=request.user, workspace=workspace, action=action)
        text = result.message if result.already_under_way else ACTION_DONE[action].format(name=workspace.name)
        return done(request, text, page_url(workspace))


class ExtendView(_Action):
    """Extend the TTL (POST /instances/{name}/extend)."""

    form = "extend"
    fields = ("hours",)

    def act(self, request, workspace):
        raw = request.POST.get("hours", "").strip()
        try:
            hours = float(raw) if raw else None
        except ValueError:
            hours = -1.0
        if hours is not None and (hours != hours or hours <= 0 or hours > 8760):  # NaN, negative, absurd
            raise ValidationFailed(fields={"hours": ["A number of hours above 0."]})
        updated = services.workspace_extend(actor=request.user, workspace=workspace, hours=hours)
        expires = timezone.localtime(updated.expires_at).strftime("%Y-%m-%d %H:%M %Z")
        return done(request, f"{workspace.name} now runs until {expires}.", page_url(workspace))


class ResizeView(_Action):
    """Change the size or instance type while stopped (PATCH /instances/{name})."""

    form = "resize"
    fields = ("size", "instance_type")

    def act(self, request, workspace):
        size = request.POST.get("size", "").strip() or None
        instance_type = request.POST.get("instance_type", "").strip() or None
        if not size and not instance_type:
            raise ValidationFailed(fields={"size": ["Choose a size, or type an instance type."]})
        result = services.workspace_update(
            actor=request.user, workspace=workspace, size=size, instance_type=instance_type
        )
        if result.resize_job is None:
            return done(request, f"{workspace.name} already has that instance type.", page_url(workspace))
        new_type = result.resize_job.parameters.get("instance_type", "")
        return done(request, f"Resizing {workspace.name} to {new_type}.", page_url(workspace))


class TerminateView(_Action):
    """Terminate for good (POST /instances/{name}/terminate), confirmed by typing the workspace's name."""

    form = "terminate"
    fields = ("confirm_name",)

    def act(self, request, workspace):
        if request.POST.get("confirm_name", "").strip() != workspace.name:
            raise ValidationFailed(
                "Termination destroys all data; confirm it.",
                code="CONFIRMATION_REQUIRED",
                fields={"confirm_name": [f"Type the workspace's name, {workspace.name}, to confirm."]},
            )
        result = services.workspace_act(actor=request.user, workspace=workspace, action="terminate")
        text = result.message if result.already_under_way else f"Terminating {workspace.name}."
        return done(request, text, page_url(workspace))


def _port(raw: str):
    raw = raw.strip()
    return int(raw) if WHOLE_NUMBER_RE.match(raw) else raw


class FirewallAddView(_Action):
    """Add a rule (POST /instances/{name}/firewall). An empty address is the person's own, as the API does."""

    form = "firewall"
    fields = ("from_port", "to_port", "protocol", "cidr", "description", "allow_world_ssh")

    def act(self, request, workspace):
        data = request.POST
        cidr = data.get("cidr", "").strip() or services.single_host_cidr(getattr(request, "client_ip", None))
        if not cidr:
            raise ValidationFailed(fields={"cidr": ["An address or network, e.g. 203.0.113.7/32."]})
        if not data.get("from_port", "").strip():
            raise ValidationFailed(fields={"from_port": ["A port in 1–65535."]})
        rule = {
            "cidr": cidr,
            "protocol": data.get("protocol", "tcp"),
            "from_port": _port(data.get("from_port", "")),
            "description": data.get("description", "").strip(),
        }
        if data.get("to_port", "").strip():
            rule["to_port"] = _port(data["to_port"])
        added = services.firewall_add(
            actor=request.user, workspace=workspace, rules=[rule], allow_world_ssh=data.get("allow_world_ssh") == "on"
        )
        text = "Rule added." if added else "That rule was already there."
        return done(request, text, page_url(workspace) + "#firewall")


class FirewallRemoveView(_Action):
    """Remove the rule at a position (DELETE /instances/{name}/firewall?position=N)."""

    def act(self, request, workspace):
        position = request.POST.get("position", "")
        if not WHOLE_NUMBER_RE.match(position):
            raise ValidationFailed("Which rule? Its position is a whole number.")
        services.firewall_clear(actor=request.user, workspace=workspace, position=int(position))
        return done(request, "Rule removed.", page_url(workspace) + "#firewall")


class SnoozeView(_Action):
    """Put the idle action off by an hour (POST /idle/instances/{name}/snooze), from the banner on this page or on
    the home page (`next`: where to go back to)."""

    def act(self, request, workspace):
        state = workspace_snooze(actor=request.user, workspace=workspace)
        until = timezone.localtime(state.snoozed_until).strftime("%H:%M %Z")
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
            back = page_url(workspace)
        return done(request, f"Snoozed: {workspace.name} is left alone until at least {until}.", back)


class IdleConfigureView(_Action):
    """Change the idle settings (POST /idle/instances/{name}/configure). The profile's thresholds apply only when
    another profile is chosen; the window and the action given override them."""

    form = "idle"
    fields = ("enabled", "profile", "idle_threshold_minutes", "action")

    def act(self, request, workspace):
        data = request.POST
        changes: dict = {"enabled": data.get("enabled") == "on"}
        current = getattr(workspace, "idle", None)  # None: a workspace launched before idle detection
        profile = data.get("profile", "").strip()
        if profile and (current is None or profile != current.profile):
            changes["profile"] = profile
        minutes = data.get("idle_threshold_minutes", "").strip()
        if minutes:
            if not WHOLE_NUMBER_RE.match(minutes):
                raise ValidationFailed(fields={"idle_threshold_minutes": ["A whole number of minutes."]})
            changes["idle_threshold_minutes"] = int(minutes)
        if data.get("action", "").strip():
            changes["action"] = data["action"].strip()
        workspace_idle_configure(actor=request.user, workspace=workspace, **changes)
        return done(
            request,
            f"Idle settings of {workspace.name} saved; its idle window starts again.",
            page_url(workspace) + "#idle",
        )


urlpatterns = [
    path("workspaces/<str:workspace_id>/", WorkspaceView.as_view(), name="workspace"),
    path("workspaces/<str:workspace_id>/live", WorkspaceLiveView.as_view(), name="workspace-live"),
    path("workspaces/<str:workspace_id>/act", ActView.as_view(), name="workspace-act"),
    path("workspaces/<str:workspace_id>/extend", ExtendView.as_view(), name="workspace-extend"),
    path("workspaces/<str:workspace_id>/resize", ResizeView.as_view(), name="workspace-resize"),
    path("workspaces/<str:workspace_id>/terminate", TerminateView.as_view(), name="workspace-terminate"),
    path("workspaces/<str:workspace_id>/firewall/add", FirewallAddView.as_view(), name="workspace-firewall-add"),
    path(
        "workspaces/<str:workspace_id>/firewall/remove", FirewallRemoveView.as_view(), name="workspace-firewall-remove"
    ),
    path("workspaces/<str:workspace_id>/snooze", SnoozeView.as_view(), name="workspace-snooze"),
    path("workspaces/<str:workspace_id>/idle", IdleConfigureView.as_view(), name="workspace-idle"),
]
