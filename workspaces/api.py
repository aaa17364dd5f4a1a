"""The Prism-compatible workspace API (/instances, /jobs, /logs, /profiles). Thin: services do the work."""

import re
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_site.api import fields as strict
from platform_site.api.system import format_duration
from platform_site.api.views import ScopedAPIView
from platform_site.errors import Conflict, NotFound, ProviderUnavailable, ValidationFailed
from platform_site.tenancy import scoped_queryset, visible_by_id_or_name
from projects.models import Project
from workspaces import cloud, selectors, services, sizing
from workspaces.models import CloudAccount, ProvisionJob, Workspace, WorkspacePreference, WorkspaceState
from workspaces.serializers import (
    FIREWALL_RULES,
    ActionResponseSerializer,
    ExtendSerializer,
    FirewallAddSerializer,
    FirewallRuleSerializer,
    JobSerializer,
    LaunchResponseSerializer,
    LaunchSerializer,
    ProfileSerializer,
    ProfileSwitchSerializer,
    TerminateSerializer,
    UpdateSerializer,
    WorkspaceSerializer,
)

READY_ESTIMATE = timedelta(minutes=3)


# --- Helpers ------------------------------------------------------------------------------------


PROJECT_PARAMETER = OpenApiParameter(
    "project", str, description="Project id or name: picks among workspaces of the same name in several projects."
)
WHOLE_NUMBER_RE = re.compile(r"^[0-9]{1,9}$")  # ASCII digits only: str.isdigit() accepts '²' and '٣'


def _workspace_or_404(request, reference: str) -> Workspace:
    workspace = selectors.workspace_by_reference(
        user=request.user, reference=reference, project=request.query_params.get("project") or None
    )
    if workspace is None:
        raise NotFound(
            f"Workspace '{reference}' not found.",
            code="INSTANCE_NOT_FOUND",
            details="Check the workspace name; workspaces of other organizations are not visible.",
            remediation="GET /api/v1/instances lists your workspaces.",
        )
    return workspace


def _project_for_launch(request, reference: str | None) -> Project:
    if reference:
        return visible_by_id_or_name(Project, request.user, reference, code="PROJECT_NOT_FOUND")
    projects = scoped_queryset(Project, request.user)
    preference = WorkspacePreference.objects.filter(user=request.user).first()
    if preference and preference.project_id:
        project = projects.filter(pk=preference.project_id).first()
        if project:
            return project
    mine = list(projects[:2])
    if len(mine) == 1:
        return mine[0]
    raise ValidationFailed(fields={"project": ["Required: name the project (or switch your profile to one)."]})


def _account_for_launch(request, project: Project, reference: str | None) -> CloudAccount | None:
    if not reference:
        return None
    return visible_by_id_or_name(
        CloudAccount,
        request.user,
        reference,
        code="PROFILE_NOT_FOUND",
        refine=lambda qs: qs.filter(organization=project.organization),
    )


# --- Instances ---------------------------------------------------------------------------------


class InstanceListView(mixins.ListModelMixin, ScopedAPIView):
    model = Workspace
    serializer_class = WorkspaceSerializer

    def refine_queryset(self, queryset):
        return selectors.workspaces_for(user=self.request.user, queryset=queryset).order_by("-created_at", "id")

    def filter_queryset(self, queryset):
        params = self.request.query_params
        if state := params.get("state"):
            queryset = queryset.filter(state__in=state.split(","))
        if project := params.get("project"):
            queryset = queryset.filter(project_id=project) | queryset.filter(project__name=project)
        if template := params.get("template"):
            queryset = queryset.filter(template_name=template) | queryset.filter(template__slug=template)
        if owner := params.get("owner"):
            queryset = queryset.filter(owner__email=owner.lower()) | queryset.filter(owner__username=owner)
        return queryset

    @extend_schema(
        summary="Workspaces visible to the caller.",
        parameters=[
            OpenApiParameter("state", str, description="Comma-separated states, e.g. running,stopped."),
            OpenApiParameter("project", str, description="Project id or name."),
            OpenApiParameter("template", str, description="Template name or slug."),
            OpenApiParameter("owner", str, description="Owner e-mail or username."),
        ],
        tags=["instances"],
    )
    def get(self, request):
        return self.list(request)


class InstanceLaunchView(APIView):
    @extend_schema(
        summary="Launch a workspace. Answers 202 at once; a job does the cloud work (GET /api/v1/jobs/{id}).",
        request=LaunchSerializer,
        responses={202: LaunchResponseSerializer},
        tags=["instances"],
    )
    def post(self, request):
        form = LaunchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        project = _project_for_launch(request, data.get("project"))
        result = services.workspace_launch(
            actor=request.user,
            project=project,
            name=data["name"],
            template=data["template"],
            size=data.get("size"),
            instance_type=data.get("instance_type"),
            configuration=data.get("configuration"),
            spot=data["spot"],
            region=data.get("region"),
            storage=data.get("storage"),
            cloud_account=_account_for_launch(request, project, data.get("profile")),
            client_ip=getattr(request._request, "client_ip", None),
        )
        workspace, job = result.workspace, result.job
        return Response(
            {
                "name": workspace.name,
                "instance_id": workspace.provider_instance_id or None,
                "workspace_id": workspace.pk,
                "job_id": job.pk,
                "state": workspace.state,
                "estimated_ready_time": workspace.created_at + READY_ESTIMATE,
                "hourly_rate": workspace.hourly_rate,
                "launch_progress": job.progress,
            },
            status=status.HTTP_202_ACCEPTED,
        )


class InstanceDetailView(APIView):
    @extend_schema(
        summary="One workspace, by name, workspace id or instance id.",
        responses=WorkspaceSerializer,
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        return Response(WorkspaceSerializer(_workspace_or_404(request, name)).data)

    @extend_schema(
        summary=(
            "Rename (200), or change size / instance type / configuration while stopped (202: the workspace is "
            "`resizing` until a job has changed the instance type; `job_id` follows it)."
        ),
        request=UpdateSerializer,
        responses={200: WorkspaceSerializer, 202: WorkspaceSerializer},
        parameters=[PROJECT_PARAMETER],
        tags=["instances"],
    )
    def patch(self, request, name: str):
        workspace = _workspace_or_404(request, name)
        form = UpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        result = services.workspace_update(actor=request.user, workspace=workspace, **form.validated_data)
        body = WorkspaceSerializer(selectors.workspaces_for(user=request.user).get(pk=workspace.pk)).data
        if result.resize_job is None:
            return Response(body)
        return Response({**body, "job_id": result.resize_job.pk}, status=status.HTTP_202_ACCEPTED)


def _action_response(result: services.ActionResult, **extra) -> Response:
    body = {
        "name": result.workspace.name,
        "previous_state": result.previous_state,
        "new_state": result.new_state,
        "state": result.new_state,
        "message": result.message,
        **extra,
    }
    return Response(body, status=status.HTTP_200_OK if result.already_under_way else status.HTTP_202_ACCEPTED)


class _ActionView(APIView):
    action_name = ""

    def act(self, request, name: str, **extra):
        workspace = _workspace_or_404(request, name)
        result = services.workspace_act(actor=request.user, workspace=workspace, action=self.action_name)
        return _action_response(result, **extra)


def _action_view(action: str, summary: str):
    class View(_ActionView):
        action_name = action

        @extend_schema(
            summary=summary,
            request=None,
            responses={202: ActionResponseSerializer, 200: ActionResponseSerializer},
            tags=["instances"],
            parameters=[PROJECT_PARAMETER],
        )
        def post(self, request, name: str):
            extra = {}
            if action in ("start", "resume"):
                extra["estimated_ready_time"] = timezone.now() + READY_ESTIMATE
            if action == "hibernate":
                workspace = _workspace_or_404(request, name)
                extra["hibernation_supported"] = workspace.hibernation_capable
                extra["estimated_savings"] = f"${workspace.hourly_rate}/hour during hibernation"
            return self.act(request, name, **extra)

    View.__name__ = f"Instance{action.title()}View"
    View.__qualname__ = View.__name__
    return View


InstanceStopView = _action_view("stop", "Stop a running workspace (keeps its disk).")
InstanceStartView = _action_view("start", "Start a stopped workspace.")
InstanceHibernateView = _action_view(
    "hibernate", "Hibernate a running workspace (keeps RAM and disk); 409 HIBERNATION_NOT_SUPPORTED where it cannot."
)
InstanceResumeView = _action_view("resume", "Resume a hibernated workspace.")


class InstanceTerminateView(_ActionView):
    action_name = "terminate"

    @extend_schema(
        summary='Terminate a workspace for good. The body must be {"confirm": "DELETE"}.',
        request=TerminateSerializer,
        responses={202: ActionResponseSerializer, 200: ActionResponseSerializer},
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def post(self, request, name: str):
        form = TerminateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if form.validated_data["confirm"] != "DELETE":
            raise ValidationFailed(
                "Termination destroys all data; confirm it.",
                code="CONFIRMATION_REQUIRED",
                fields={"confirm": ['Must be "DELETE".']},
            )
        return self.act(request, name)


class HibernationStatusView(APIView):
    @extend_schema(
        summary="Whether the workspace can hibernate, and for how long it has been hibernated.",
        responses=inline_serializer(
            "HibernationStatus",
            {
                "hibernation_supported": strict.BooleanField(),
                "current_state": strict.CharField(),
                "hibernation_time": strict.DateTimeField(allow_null=True),
                "estimated_savings": strict.FloatField(),
                "hibernation_duration": strict.CharField(allow_null=True),
            },
        ),
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        workspace = _workspace_or_404(request, name)
        hibernated = (
            selectors.last_transition_to(workspace, WorkspaceState.HIBERNATED)
            if workspace.state == WorkspaceState.HIBERNATED
            else None
        )
        seconds = (timezone.now() - hibernated.created_at).total_seconds() if hibernated else 0
        return Response(
            {
                "hibernation_supported": workspace.hibernation_capable,
                "current_state": workspace.state,
                "hibernation_time": hibernated.created_at if hibernated else None,
                "estimated_savings": round(float(workspace.hourly_rate) * seconds / 3600, 4),
                "hibernation_duration": format_duration(seconds) if hibernated else None,
            }
        )


def _ssh_user(workspace: Workspace) -> str:
    users = workspace.template_snapshot.get("users") or []
    return users[0]["name"] if users else "ec2-user"


class ConnectView(APIView):
    @extend_schema(
        summary="How to connect: the SSH command and each template service's URL.",
        responses=inline_serializer(
            "ConnectInfo", {"ssh": serializers.DictField(), "services": serializers.DictField()}
        ),
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        workspace = _workspace_or_404(request, name)
        host = workspace.public_ip or workspace.private_ip
        if workspace.state != WorkspaceState.RUNNING or not host:
            raise Conflict(
                f"Workspace '{workspace.name}' is {workspace.state}; connect when it is running.", code="INVALID_STATE"
            )
        user = _ssh_user(workspace)
        key = f"~/.ssh/{workspace.cloud_account.key_name}.pem" if workspace.cloud_account.key_name else None
        identity = f"-i {key} " if key else ""
        services_info = {}
        for service in workspace.template_snapshot.get("services", []):
            port = service.get("port")
            if port:
                services_info[service["name"]] = {
                    "url": f"http://{host}:{port}",
                    "port": port,
                    "local_forward": f"ssh -L {port}:localhost:{port} {identity}{user}@{host}",
                }
        return Response(
            {
                "ssh": {"command": f"ssh {identity}{user}@{host}", "host": host, "user": user, "port": 22},
                "services": services_info,
            }
        )


class ExtendView(APIView):
    @extend_schema(
        summary="Extend the workspace's TTL by `hours` (default 4); it is stopped when the TTL passes.",
        request=ExtendSerializer,
        responses={204: None},
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def post(self, request, name: str):
        form = ExtendSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.workspace_extend(
            actor=request.user, workspace=_workspace_or_404(request, name), hours=form.validated_data.get("hours")
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class UsageView(APIView):
    @extend_schema(
        summary="Usage and cost since launch, computed from the recorded state transitions.",
        responses=inline_serializer(
            "Usage",
            {
                "name": strict.CharField(),
                "cpuHours": strict.FloatField(),
                "gpuHours": strict.FloatField(),
                "memoryGBHours": strict.FloatField(),
                "costUSD": strict.FloatField(),
                "billedHours": strict.FloatField(),
                "periodStart": strict.DateTimeField(allow_null=True),
                "periodEnd": strict.DateTimeField(),
            },
        ),
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        workspace = _workspace_or_404(request, name)
        usage = selectors.workspace_usage(workspace)
        return Response(
            {
                "name": workspace.name,
                "cpuHours": usage.cpu_hours,
                "gpuHours": usage.gpu_hours,
                "memoryGBHours": usage.memory_gb_hours,
                "costUSD": usage.cost_usd,
                "billedHours": usage.billed_hours,
                "periodStart": usage.period_start,
                "periodEnd": usage.period_end,
            }
        )


class SysinfoView(APIView):
    @extend_schema(
        summary="The workspace's CPU, memory, GPU and disk, from its instance type.",
        responses=inline_serializer(
            "Sysinfo",
            {
                "cpu": serializers.DictField(),
                "memory": serializers.DictField(),
                "gpu": serializers.DictField(),
                "disk": serializers.DictField(),
            },
        ),
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        workspace = _workspace_or_404(request, name)
        spec = sizing.get_instance_type(workspace.instance_type)
        return Response(
            {
                "instance_type": spec.name,
                "cpu": {"cores": spec.vcpu, "architecture": spec.architecture},
                "memory": {"total_gb": spec.memory_gib},
                "gpu": {"count": spec.gpu_count, "model": spec.gpu_model or None, "memory_gb": spec.gpu_memory_gib},
                "disk": {"root_gb": workspace.root_volume_gb, "type": workspace.root_volume_type},
            }
        )


class FirewallView(APIView):
    @extend_schema(
        summary="The workspace's ordered ingress rules.",
        responses=FIREWALL_RULES,
        tags=["firewall"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        workspace = _workspace_or_404(request, name)
        return Response(
            {"rules": FirewallRuleSerializer(workspace.firewall_rules.order_by("position"), many=True).data}
        )

    @extend_schema(
        summary=(
            "Append rules (201); rules already there are not added again (200 when nothing was new). With no rules, "
            "allow SSH from the caller's address. SSH open to more than a /4's worth of addresses, all rules "
            "together, needs allow_world_ssh."
        ),
        request=FirewallAddSerializer,
        responses={201: FIREWALL_RULES, 200: FIREWALL_RULES},
        tags=["firewall"],
        parameters=[PROJECT_PARAMETER],
    )
    def post(self, request, name: str):
        workspace = _workspace_or_404(request, name)
        form = FirewallAddSerializer(data=request.data or {})
        form.is_valid(raise_exception=True)
        rules = [dict(rule) for rule in form.validated_data.get("rules") or []]
        if not rules:
            cidr = services.single_host_cidr(getattr(request._request, "client_ip", None))
            rules = [{"cidr": cidr, "port": services.SSH_PORT, "description": "ssh from the caller"}]
        added = services.firewall_add(
            actor=request.user, workspace=workspace, rules=rules, allow_world_ssh=form.validated_data["allow_world_ssh"]
        )
        return Response(
            {"rules": FirewallRuleSerializer(workspace.firewall_rules.order_by("position"), many=True).data},
            status=status.HTTP_201_CREATED if added else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Remove every rule (or the one at ?position=N): the default is to drop all incoming traffic.",
        parameters=[PROJECT_PARAMETER, OpenApiParameter("position", int)],
        responses={204: None},
        tags=["firewall"],
    )
    def delete(self, request, name: str):
        workspace = _workspace_or_404(request, name)
        position = request.query_params.get("position")
        if position is not None and not WHOLE_NUMBER_RE.match(position):
            raise ValidationFailed(fields={"position": ["A whole number."]})
        services.firewall_clear(
            actor=request.user, workspace=workspace, position=int(position) if position is not None else None
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Jobs ---------------------------------------------------------------------------------------


class JobDetailView(ScopedAPIView):
    model = ProvisionJob
    serializer_class = JobSerializer

    not_found_code = "JOB_NOT_FOUND"
    not_found_message = "No such job visible to you."
    lookup_url_kwarg = "job_id"

    def refine_queryset(self, queryset):
        return queryset.select_related("workspace")

    @extend_schema(summary="A provisioning job: steps, progress 0–100 and errors.", tags=["jobs"])
    def get(self, request, job_id: str):
        return Response(self.get_serializer(self.get_object()).data)


# --- Logs ---------------------------------------------------------------------------------------

LOG_TYPES = {"console": "The instance's serial console output, from EC2."}


class LogListView(APIView):
    @extend_schema(
        operation_id="logs_list",
        summary="Workspaces with log availability.",
        responses=inline_serializer(
            "LogAvailability", {"instances": serializers.ListField(child=serializers.DictField())}
        ),
        tags=["logs"],
    )
    def get(self, request):
        workspaces = scoped_queryset(Workspace, request.user).exclude(state=WorkspaceState.TERMINATED)
        return Response(
            {
                "instances": [
                    {
                        "name": w.name,
                        "id": w.provider_instance_id or None,
                        "state": w.state,
                        "log_types": list(LOG_TYPES) if w.provider_instance_id else [],
                    }
                    for w in workspaces.order_by("name")
                ]
            }
        )


class LogTypesView(APIView):
    @extend_schema(
        summary="Log types available for a workspace.",
        responses=inline_serializer(
            "LogTypes",
            {"instance": strict.CharField(), "types": serializers.ListField(child=serializers.DictField())},
        ),
        tags=["logs"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        workspace = _workspace_or_404(request, name)
        return Response(
            {
                "instance": workspace.name,
                "types": [
                    {"type": key, "description": value, "available": bool(workspace.provider_instance_id)}
                    for key, value in LOG_TYPES.items()
                ],
            }
        )


class LogView(APIView):
    @extend_schema(
        summary="A workspace's log, e.g. ?type=console&tail=100.",
        parameters=[
            PROJECT_PARAMETER,
            OpenApiParameter("type", str, enum=list(LOG_TYPES)),
            OpenApiParameter("tail", int),
        ],
        responses=inline_serializer(
            "Log",
            {
                "instance": strict.CharField(),
                "type": strict.CharField(),
                "lines": serializers.ListField(child=strict.CharField()),
            },
        ),
        tags=["logs"],
    )
    def get(self, request, name: str):
        workspace = _workspace_or_404(request, name)
        log_type = request.query_params.get("type", "console")
        if log_type not in LOG_TYPES:
            raise ValidationFailed(fields={"type": [f"One of: {', '.join(LOG_TYPES)}."]}, code="UNKNOWN_LOG_TYPE")
        tail = request.query_params.get("tail")
        if tail is not None and (not WHOLE_NUMBER_RE.match(tail) or int(tail) > 10000):
            raise ValidationFailed(fields={"tail": ["A whole number up to 10000."]})
        if not workspace.provider_instance_id:
            raise NotFound("The workspace has no instance yet.", code="LOG_NOT_AVAILABLE")
        try:
            text = services.provider_for(workspace).console_output(workspace.provider_instance_id)
        except cloud.CloudError as error:
            raise ProviderUnavailable(
                "The cloud provider did not return the log.", details=f"{error.operation}: {error.code}"
            ) from error
        lines = text.splitlines()
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) else []
        return Response({"instance": workspace.name, "type": log_type, "lines": lines})


# --- Profiles -----------------------------------------------------------------------------------


def _active_account(request) -> tuple[CloudAccount | None, WorkspacePreference | None]:
    preference = WorkspacePreference.objects.filter(user=request.user).select_related("cloud_account").first()
    visible = scoped_queryset(CloudAccount, request.user)
    if preference and preference.cloud_account_id and visible.filter(pk=preference.cloud_account_id).exists():
        return preference.cloud_account, preference
    return visible.order_by("-is_default", "created_at").first(), preference


class ProfileListView(APIView):
    @extend_schema(
        summary="Cloud accounts (profiles) of the caller's organizations.",
        responses=ProfileSerializer(many=True),
        tags=["profiles"],
    )
    def get(self, request):
        active, preference = _active_account(request)
        accounts = scoped_queryset(CloudAccount, request.user).order_by("organization_id", "name")
        context = {"active_id": active.pk if active else None, "preference": preference}
        return Response(ProfileSerializer(accounts, many=True, context=context).data)


class ProfileCurrentView(APIView):
    @extend_schema(
        summary="The caller's current cloud account and default project.",
        responses=ProfileSerializer,
        tags=["profiles"],
    )
    def get(self, request):
        active, preference = _active_account(request)
        if active is None:
            raise NotFound("Your organizations have no cloud account.", code="PROFILE_NOT_FOUND")
        return Response(ProfileSerializer(active, context={"active_id": active.pk, "preference": preference}).data)


class ProfileSwitchView(APIView):
    @extend_schema(
        summary="Switch the caller's default cloud account and/or project.",
        request=ProfileSwitchSerializer,
        responses=ProfileSerializer,
        tags=["profiles"],
    )
    def post(self, request):
        form = ProfileSwitchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        profile = form.validated_data.get("profile_name") or form.validated_data.get("profile")
        project_ref = form.validated_data.get("project")
        if not profile and not project_ref:
            raise ValidationFailed(fields={"profile_name": ["Give profile_name and/or project."]})
        account = project = None
        if profile:
            account = visible_by_id_or_name(CloudAccount, request.user, profile, code="PROFILE_NOT_FOUND")
        if project_ref:
            project = visible_by_id_or_name(Project, request.user, project_ref, code="PROJECT_NOT_FOUND")
        preference = services.profile_switch(actor=request.user, cloud_account=account, project=project)
        active, _ = _active_account(request)
        return Response(
            ProfileSerializer(
                active, context={"active_id": active.pk if active else None, "preference": preference}
            ).data
        )
