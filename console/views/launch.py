"""Launch: project → template (description, cost card) → size or hardware configuration → name, TTL, idle
defaults → price per hour and per day and the what-if (share of the allocation, runway after) → launch.

The prices come from the code the API's launch dry run and POST /costs/what-if use (`whatif.plan_for`, priced by
`whatif.estimate` for the dry run's 24 hours a day over 30 days); the launch calls `workspaces.services.
workspace_launch` with the arguments InstanceLaunchView.post gives it, the TTL included (`ttl_hours`: the budget
holds the cost of those hours)."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse

from budgets import whatif
from console.templatetags.console import money as dollars
from console.views.base import NON_FIELD, ConsoleView, done, field_errors
from idle.profiles import launch_policy, profiles_for
from idle.services.configure import launch_idle_request
from platform_site.errors import CarrelError
from platform_site.tenancy import visible_by_id_or_name
from projects.models import Project, ProjectRole
from projects.selectors import projects_for
from projects.services import PROJECT_RANKS, effective_project_role
from templates.selectors import TemplateView, templates_for
from workspaces import services, sizing
from workspaces.api.instances import DRY_RUN_DAYS, DRY_RUN_HOURS_PER_DAY
from workspaces.models import Workspace, WorkspacePreference
from workspaces.serializers import LaunchSerializer

CUSTOM = "custom"  # the size choice for a hardware configuration (cpu, memory, GPU)
FORM_FIELDS = ("project", "template", "size", "name", "ttl_hours", "cpu", "memory", "gpu", "idle_profile", "price")
LABELS = {
    "project": "Project",
    "template": "Template",
    "size": "Size",
    "cpu": "vCPUs",
    "memory": "Memory",
    "gpu": "GPU model",
    "name": "Name",
    "ttl_hours": "Time limit",
    "idle_profile": "Idle profile",
    "price": "Price and budget",
}
# Where a service error shows when it carries no `fields` of its own.
CODE_FIELDS = {
    "BUDGET_EXCEEDED": "price",
    "MEMBER_CAP_EXCEEDED": "price",
    "NAME_TAKEN": "name",
    "NAME_LOOKS_LIKE_ID": "name",
    "INVALID_SIZE": "size",
    "NO_MATCHING_INSTANCE_TYPE": "size",
    "UNKNOWN_INSTANCE_TYPE": "size",
    "UNSUPPORTED_REGION": "size",
    "INSUFFICIENT_CAPACITY": "size",
    "TTL_LIMIT_EXCEEDED": "ttl_hours",
    "TEMPLATE_NOT_FOUND": "template",
    "TEMPLATE_INVALID": "template",
    "NO_CLOUD_ACCOUNT": "project",
    "PERMISSION_DENIED": "project",
    "PROJECT_NOT_FOUND": "project",
    "BUDGET_NOT_FOUND": "project",
}
# A service's field names → this form's.
SERVICE_FIELDS = {
    "hours": "ttl_hours",
    "configuration": "size",
    "configuration.cpuCores": "cpu",
    "configuration.memoryGB": "memory",
    "configuration.gpu": "gpu",
    "configuration.region": "size",
    "configuration.storageGB": "size",
    "instance_type": "size",
    "region": "size",
    "workload": "size",
    "idle": "idle_profile",
    "idle.profile": "idle_profile",
    "idle.enabled": "idle_profile",
}


@dataclass
class Choice:
    """What the form says (strings as typed), and what it means once parsed."""

    project: str = ""
    template: str = ""
    size: str = ""
    name: str = ""
    ttl_hours: str | None = None  # None: not given (the default applies); "": no TTL
    cpu: str = ""
    memory: str = ""
    gpu: str = ""
    idle_profile: str = ""  # "": the project's default, else the template's
    idle_enabled: bool | None = None  # None: as the project's default, else the template's, say
    errors: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, data, *, defaults: bool) -> "Choice":
        keys = ("project", "template", "size", "name", "cpu", "memory", "gpu", "idle_profile")
        values: dict = {key: (data.get(key) or "").strip() for key in keys}
        if "idle_form" in data:  # the form's idle fields were on the page: an unticked box is "off"
            values["idle_enabled"] = "idle_enabled" in data
        if "ttl_hours" in data or not defaults:
            values["ttl_hours"] = (data.get("ttl_hours") or "").strip()
        return cls(**values)

    def add_error(self, key: str, text: str) -> None:
        texts = self.errors.setdefault(key, [])
        if text not in texts:
            texts.append(text)

    def configuration(self) -> dict | None:
        """The hardware configuration of a custom size, numbers as numbers (the API's and the sizing rules
        judge them)."""
        if self.size != CUSTOM:
            return None
        configuration = {"cpuCores": _number(self.cpu), "memoryGB": _number(self.memory), "gpu": self.gpu or None}
        return {key: value for key, value in configuration.items() if value is not None} or None

    def idle(self) -> dict | None:
        """The launch's `idle`: what the form chose over the defaults."""
        idle: dict = {}
        if self.idle_profile:
            idle["profile"] = self.idle_profile
        if self.idle_enabled is not None:
            idle["enabled"] = self.idle_enabled
        return idle or None


def _number(text: str | None) -> int | float | str | None:
    """A number as typed: an int or a float when it reads as one, else the text itself (refused by the rules)."""
    if not text:
        return None
    try:
        value = Decimal(text)
    except ArithmeticError:
        return text
    if not value.is_finite():
        return text
    return int(value) if value == value.to_integral_value() else float(value)


def input_errors(errors: dict, prefix: str = "") -> dict[str, list[str]]:
    """The API serializers' errors (the launch's and the TTL's input rules) on this form's fields."""
    shown: dict[str, list[str]] = {}
    for key, texts in errors.items():
        name = f"{prefix}{key}"
        if isinstance(texts, dict):
            for field_name, nested in input_errors(texts, prefix=f"{name}.").items():
                shown.setdefault(field_name, []).extend(nested)
            continue
        target = SERVICE_FIELDS.get(name, name)
        target = target if target in FORM_FIELDS else NON_FIELD
        shown.setdefault(target, []).extend(str(text) for text in texts)
    return shown


def launchable_projects(user) -> list[Project]:
    """The projects the person may launch in (member or higher), one query."""
    projects = list(projects_for(user=user))
    if user.is_superuser:
        return projects
    return [
        project
        for project in projects
        if PROJECT_RANKS.get(
            effective_project_role(project_role=project.caller_project_role, org_role=project.caller_org_role) or "",
            0,
        )
        >= PROJECT_RANKS[ProjectRole.MEMBER]
    ]


def service_errors(error: CarrelError) -> dict[str, list[str]]:
    """A service error next to the field it concerns, in words (the numbers a budget refusal carries too)."""
    code = str(error.code)
    if code in ("BUDGET_EXCEEDED", "MEMBER_CAP_EXCEEDED"):
        extra = error.extra or {}
        if code == "MEMBER_CAP_EXCEEDED" and "cap" in extra:
            words = [
                "This launch would pass your own spending cap in this project.",
                f"Your cap is {dollars(extra['cap'])}: {dollars(extra['spent'])} spent and "
                f"{dollars(extra['reserved'])} held by your running workspaces; this launch holds "
                f"{dollars(extra['estimate'])}.",
            ]
        elif code == "BUDGET_EXCEEDED" and extra.get("limit") and "allocated" in extra:
            words = [
                "This launch would pass the project's budget.",
                f"The allocation is {dollars(extra['allocated'])}: {dollars(extra['spent'])} spent and "
                f"{dollars(extra['reserved'])} held by running workspaces, against a launch limit of "
                f"{dollars(extra['limit'])}; this launch holds {dollars(extra['estimate'])}.",
            ]
        else:  # a pool outside its dates, or a refusal without numbers: the service's own words
            words = [error.message]
        words.append(
            "Choose a smaller size, stop workspaces you are not using, or ask a project or organization owner to "
            "raise the budget."
        )
        return {"price": [" ".join(words)]}
    if code == "NAME_TAKEN":
        return {"name": [f"{error.message} Choose another name."]}
    if error.fields:
        mapped: dict[str, list[str]] = {}
        for key, texts in error.fields.items():
            target = SERVICE_FIELDS.get(key, key)
            mapped.setdefault(target if target in FORM_FIELDS else NON_FIELD, []).extend(texts)
        return mapped
    return field_errors(error, code_fields=CODE_FIELDS)


def _workspace_url(workspace: Workspace) -> str:
    try:
        return reverse("console:workspace", args=[workspace.pk])
    except NoReverseMatch:  # the workspace page's route lands with its own page
        return f"/workspaces/{workspace.pk}/"


class LaunchView(ConsoleView):
    template_name = "console/launch/page.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request, Choice.read(request.GET, defaults=True))

    def post(self, request: HttpRequest) -> HttpResponse:
        choice = Choice.read(request.POST, defaults=False)
        if "launch" not in request.POST:  # "Update price", or a refresh by launch.js
            return self.page(request, choice)
        return self.launch(request, choice)

    def launch(self, request: HttpRequest, choice: Choice) -> HttpResponse:
        projects = launchable_projects(request.user)
        if not projects:  # nowhere to launch: the page says how to get a project
            return self.page(request, choice, status=403)
        # As the API: a project the person cannot see is a 404 (ConsoleView renders the 404 page).
        project = visible_by_id_or_name(Project, request.user, choice.project or "-", code="PROJECT_NOT_FOUND")
        payload: dict = {"name": choice.name, "template": choice.template, "project": choice.project}
        if choice.size == CUSTOM:
            payload["configuration"] = choice.configuration() or {}
        elif choice.size:
            payload["size"] = choice.size
        if choice.ttl_hours:
            payload["ttl_hours"] = _number(choice.ttl_hours)
        if choice.idle():
            payload["idle"] = choice.idle()
        form = LaunchSerializer(data=payload)
        if not form.is_valid():
            for key, texts in input_errors(form.errors).items():
                for text in texts:
                    choice.add_error(key, text)
        if choice.errors:
            return self.page(request, choice, status=400)
        data = form.validated_data
        configuration = dict(data["configuration"]) if data.get("configuration") else None
        ttl = data.get("ttl_hours")
        try:
            idle = launch_idle_request(organization_id=project.organization_id, requested=data.get("idle"))
            with transaction.atomic():
                result = services.workspace_launch(
                    actor=request.user,
                    project=project,
                    name=data["name"],
                    template=data["template"],
                    size=data.get("size"),
                    instance_type=None,
                    configuration=configuration,
                    spot=False,
                    region=None,
                    storage=None,
                    budget=None,
                    cloud_account=None,
                    client_ip=getattr(request, "client_ip", None),
                    ttl_hours=ttl,
                    idle=idle,
                )
        except CarrelError as error:
            if error.status_code == 404 and str(error.code) == "PROJECT_NOT_FOUND":
                raise
            choice.errors = service_errors(error)
            # The form again, answered with the refusal's own status (403 budget, 409 name taken, ...); a name that
            # matches nothing (a template) is an input error on the form.
            status = error.status_code if error.status_code in (403, 409) else 400
            return self.page(request, choice, status=status)
        workspace = result.workspace
        return done(
            request, f"Launching {workspace.name}: this page follows it until it is ready.", _workspace_url(workspace)
        )

    def page(self, request: HttpRequest, choice: Choice, *, status: int = 200) -> HttpResponse:
        user = request.user
        projects = launchable_projects(user)
        if not projects:
            return render(request, "console/launch/no_project.html", {}, status=status)
        project = _pick_project(user, projects, choice)
        region = whatif.default_region(user=user, project=project)
        views = [
            view
            for view in templates_for(user=user)
            if view.resolved is not None
            and view.report.valid
            and view.template.organization_id in (None, project.organization_id)
        ]
        # An organization's own template shadows a catalog one of the same slug or name (as template_for resolves).
        own = {key for v in views if v.template.organization_id for key in (v.template.slug, v.template.name)}
        views = [v for v in views if v.template.organization_id or not {v.template.slug, v.template.name} & own]
        view = next((v for v in views if choice.template in (v.template.slug, v.template.name)), None)
        if view is None and choice.template and "template" not in choice.errors:
            choice.add_error("template", f"No template named '{choice.template}' here.")
        rates = _Rates(region)
        cards = [_template_card(v, rates) for v in views]
        if view is None and cards:  # none chosen yet: the cheapest to start with
            view = min(cards, key=lambda card: (card["rate"] is None, card["rate"] or 0))["view"]
        choice.template = view.template.slug if view else ""
        defaults = view.resolved.instance_defaults if view else {}
        sizes = _sizes(defaults, rates)
        if not choice.size or (choice.size not in [s["value"] for s in sizes]):
            choice.size = _default_size(defaults)
        configuration = choice.configuration() if choice.size == CUSTOM else None
        cap = services.max_ttl_hours(Workspace(project=project, template_snapshot={"instance_defaults": defaults}))
        if choice.ttl_hours is None:
            choice.ttl_hours = str(max(1, min(int(settings.CARREL_BUDGET_RESERVATION_HOURS), cap)))
        estimate = plan = None
        if view is not None and not ({"cpu", "memory", "size"} & set(choice.errors)):
            try:
                plan = whatif.plan_for(
                    user=user,
                    project=project,
                    template=view.template.slug,
                    size=None if choice.size in ("", CUSTOM) else choice.size,
                    configuration=configuration,
                )
                estimate = whatif.estimate(
                    project=project, plan=plan, hours_per_day=DRY_RUN_HOURS_PER_DAY, days=DRY_RUN_DAYS
                )
            except CarrelError as error:
                for key, texts in service_errors(error).items():
                    for text in texts:
                        choice.add_error(key, text)
        spec = sizing.instance_types().get(plan.instance_type) if plan else None
        context = {
            "choice": choice,
            "errors": choice.errors,
            "form_errors": choice.errors.get(NON_FIELD, []),
            "projects": projects,
            "project": project,
            "region": region,
            "cards": cards,
            "template_view": view,
            "sizes": sizes,
            "custom": CUSTOM,
            "ttl_cap": cap,
            **_idle_context(project, view, choice),
            "plan": plan,
            "spec": spec,
            "estimate": estimate,
            "dry_run_days": DRY_RUN_DAYS,
            "hold_hours": f"{settings.CARREL_BUDGET_RESERVATION_HOURS:g}",
            "error_links": [(key, LABELS.get(key, key)) for key in choice.errors if key != NON_FIELD],
            "discount": project.organization.discount_percent or 0,
        }
        return render(request, self.template_name, context, status=status)


def _idle_context(project: Project, view: TemplateView | None, choice: Choice) -> dict:
    """The idle profiles to choose from, and the settings the workspace would start with (launch_policy: this
    form's choice over the project's default over the template's)."""
    profiles = profiles_for(organization_ids=[project.organization_id])
    if choice.idle_profile and choice.idle_profile not in {profile.name for profile in profiles}:
        choice.add_error("idle_profile", f"No idle profile named '{choice.idle_profile}'.")
    policy = launch_policy(
        organization_id=project.organization_id,
        project_id=project.pk,
        template_defaults=view.resolved.idle_defaults if view else None,
        requested=choice.idle(),
    )
    return {"idle_profiles": profiles, "idle_policy": policy, "idle_enabled": policy.enabled}


def _pick_project(user, projects: list[Project], choice: Choice) -> Project:
    if choice.project:
        for project in projects:
            if choice.project in (str(project.pk), project.name):
                choice.project = str(project.pk)
                return project
        # Visible but not launchable (a viewer), or not visible at all: the latter is the API's 404.
        visible = visible_by_id_or_name(Project, user, choice.project, code="PROJECT_NOT_FOUND")
        choice.add_error(
            "project", f"You cannot launch in {visible.name}: it needs the member role or higher. Pick another project."
        )
    # None chosen: the profile's project (as the API's launch defaults to it), else the first.
    preferred = WorkspacePreference.objects.filter(user=user).values_list("project_id", flat=True).first()
    project = next((project for project in projects if project.pk == preferred), projects[0])
    choice.project = str(project.pk)
    return project


def _default_size(defaults: dict) -> str:
    if defaults.get("instance_type"):
        return ""  # the template's own instance type
    return defaults.get("size") or sizing.DEFAULT_SIZE


class _Rates:
    """sizing.hourly_rate (one price-book query each), asked once per instance type for the page."""

    def __init__(self, region: str):
        self.region = region
        self.known: dict[str, Decimal] = {}

    def __call__(self, spec: sizing.InstanceType) -> Decimal:
        if spec.name not in self.known:
            self.known[spec.name] = sizing.hourly_rate(spec, self.region)
        return self.known[spec.name]


def _template_card(view: TemplateView, rates: _Rates) -> dict:
    defaults = view.resolved.instance_defaults if view.resolved else {}
    try:
        chosen = sizing.choose_instance_type(region=rates.region, template_defaults=defaults)
        rate = rates(chosen)
    except CarrelError:
        chosen, rate = None, None
    return {"view": view, "instance_type": chosen, "rate": rate, "defaults": defaults}


def _sizes(defaults: dict, rates: _Rates) -> list[dict]:
    workload = defaults.get("workload") or sizing.DEFAULT_WORKLOAD
    sizes = []
    if defaults.get("instance_type"):
        spec = sizing.get_instance_type(defaults["instance_type"])
        sizes.append({"value": "", "label": "Template's", "spec": spec, "rate": rates(spec)})
    for size in sizing.SIZES:
        spec = sizing.size_instance_type(size, workload)
        sizes.append({"value": size, "label": size, "spec": spec, "rate": rates(spec)})
    sizes.append({"value": CUSTOM, "label": "Custom", "spec": None, "rate": None})
    return sizes


urlpatterns = [path("launch/", LaunchView.as_view(), name="launch")]
