"""Workspaces (/instances): list, launch, detail, lifecycle actions, connect, TTL, usage, sysinfo."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets import whatif
from budgets.serializers_costs import LaunchPlanSerializer
from idle import serializers as idle_shapes
from idle.services.configure import launch_idle_request
from platform_site.api import fields as strict
from platform_site.api.system import format_duration
from platform_site.api.views import ScopedAPIView
from platform_site.errors import Conflict, ValidationFailed
from workspaces import selectors, services, sizing
from workspaces.api.references import PROJECT_PARAMETER, account_for_launch, project_for_launch, workspace_or_404
from workspaces.models import Workspace, WorkspaceState
from workspaces.serializers import (
    ActionResponseSerializer,
    ExtendSerializer,
    LaunchResponseSerializer,
    LaunchSerializer,
    TerminateSerializer,
    UpdateSerializer,
    WorkspaceSerializer,
    workspace_list_json,
)

READY_ESTIMATE = timedelta(minutes=3)
# A dry run prices the workspace running around the clock for a month (POST /costs/what-if for other uses).
DRY_RUN_HOURS_PER_DAY = Decimal(24)
DRY_RUN_DAYS = 30

# --- Instances ---------------------------------------------------------------------------------


# The list reads rows of values (selectors.workspace_list_rows) and renders them with
# serializers.workspace_list_json: three queries a page (token, count, page), whatever the page's depth (keyset
# paging, platform_site.api.pagination). Unfiltered or by state, the count is the projects' kept counts.
# WorkspaceSerializer stays the documented shape (and the detail's).
class InstanceListView(mixins.ListModelMixin, ScopedAPIView):
    model = Workspace
    serializer_class = WorkspaceSerializer
    # A total order (ids are unique), served by the indexes on (created_at DESC, id) and
    # (project_id | owner_id, created_at DESC, id).
    keyset_ordering = ("-created_at", "id")

    def filter_queryset(self, queryset):
        params = self.request.query_params
        if state := params.get("state"):
            queryset = queryset.filter(state__in=state.split(","))
        if project := params.get("project"):
            queryset = queryset.filter(Q(project_id=project) | Q(project__name=project))
        if template := params.get("template"):
            queryset = queryset.filter(Q(template_name=template) | Q(template__slug=template))
        if owner := params.get("owner"):
            queryset = queryset.filter(Q(owner__email=owner.lower()) | Q(owner__username=owner))
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
        rows = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(workspace_list_json(rows))

    def count_rows(self, queryset) -> int:
        # Unfiltered, or by the states the projects count: their kept counts (no pass over the workspaces).
        params = self.request.query_params
        if not any(params.get(name) for name in ("project", "template", "owner")):
            state = params.get("state")
            states = frozenset(state.split(",")) if state else None
            kept = selectors.kept_workspace_count(user=self.request.user, states=states)
            if kept is not None:
                return kept
        return queryset.count()

    def page_rows(self, queryset):
        # Counted bare (an index-only scan), read as values with joins and the progress subquery.
        return selectors.workspace_list_rows(queryset)


class InstanceLaunchView(APIView):
    @extend_schema(
        summary="Launch a workspace. Answers 202 at once; a job does the cloud work (GET /api/v1/jobs/{id}). With "
        "`dry_run`, validates everything a launch checks (the budget too) and answers 200 with the plan and its "
        "cost, creating nothing.",
        request=LaunchSerializer,
        responses={202: LaunchResponseSerializer, 200: LaunchPlanSerializer},
        tags=["instances"],
    )
    def post(self, request):
        form = LaunchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        project = project_for_launch(request, data.get("project"))
        idle = launch_idle_request(organization_id=project.organization_id, requested=data.get("idle"))
        launch = {
            "actor": request.user,
            "project": project,
            "name": data["name"],
            "template": data["template"],
            "size": data.get("size"),
            "instance_type": data.get("instance_type"),
            "configuration": data.get("configuration"),
            "spot": data["spot"],
            "region": data.get("region"),
            "storage": data.get("storage"),
            "budget": data.get("budget"),
            "ttl_hours": data.get("ttl_hours"),
            "cloud_account": account_for_launch(request, project, data.get("profile")),
            "client_ip": getattr(request._request, "client_ip", None),
            "idle": idle,
        }
        if data["dry_run"]:
            return Response(_dry_run(project, launch))
        result = services.workspace_launch(**launch)
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


def _dry_run(project, launch: dict) -> dict:
    """The launch service runs in full (every check a launch makes, the budget's included) inside a
    transaction that is then rolled back: the plan is exactly what a launch would get, and nothing is kept
    (rows, reservation, audit; the provisioning task was only to be enqueued on commit)."""
    with transaction.atomic():
        workspace = services.workspace_launch(**launch).workspace
        transaction.set_rollback(True)
    plan = whatif.Plan.of_workspace(workspace)
    body = {
        "dry_run": True,
        "name": workspace.name,
        "project_id": project.pk,
        "template": workspace.template_name,
        "instance_type": plan.instance_type,
        "region": plan.region,
        "spot": plan.spot,
        "hourly_rate": plan.hourly_rate,
        "storage_gb": plan.storage_gb,
        "volume_type": plan.volume_type,
        "hibernation_supported": workspace.hibernation_capable,
        "what_if": whatif.estimate(project=project, plan=plan, hours_per_day=DRY_RUN_HOURS_PER_DAY, days=DRY_RUN_DAYS),
    }
    return LaunchPlanSerializer(body).data


class InstanceDetailView(APIView):
    @extend_schema(
        summary="One workspace, by name, workspace id or instance id.",
        responses=WorkspaceSerializer,
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        return Response(WorkspaceSerializer(workspace_or_404(request, name)).data)

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
        workspace = workspace_or_404(request, name)
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
        workspace = workspace_or_404(request, name)
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
                workspace = workspace_or_404(request, name)
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
                "estimated_savings": strict.DecimalField(max_digits=14, decimal_places=4, coerce_to_string=False),
                "hibernation_duration": strict.CharField(allow_null=True),
            },
        ),
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        workspace = workspace_or_404(request, name)
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
                "estimated_savings": (workspace.hourly_rate * Decimal(str(seconds)) / 3600).quantize(Decimal("0.0001")),
                "hibernation_duration": format_duration(seconds) if hibernated else None,
            }
        )


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
        workspace = workspace_or_404(request, name)
        info = selectors.connect_info(workspace)
        if info is None:
            raise Conflict(
                f"Workspace '{workspace.name}' is {workspace.state}; connect when it is running.", code="INVALID_STATE"
            )
        return Response(
            {
                "ssh": {"command": info["ssh"], "host": info["host"], "user": info["user"], "port": 22},
                "services": {
                    service["name"]: {key: service[key] for key in ("url", "port", "local_forward")}
                    for service in info["services"]
                },
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
            actor=request.user, workspace=workspace_or_404(request, name), hours=form.validated_data.get("hours")
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class UsageView(APIView):
    @extend_schema(
        summary="Usage and cost since launch, from the cost ledger (closed intervals plus the open one).",
        responses=inline_serializer(
            "Usage",
            {
                "name": strict.CharField(),
                "cpuHours": strict.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=False),
                "gpuHours": strict.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=False),
                "memoryGBHours": strict.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=False),
                "costUSD": strict.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=False),
                "billedHours": strict.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=False),
                "periodStart": strict.DateTimeField(allow_null=True),
                "periodEnd": strict.DateTimeField(),
            },
        ),
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        workspace = workspace_or_404(request, name)
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
        summary="The workspace's CPU, memory, GPU and disk, from its instance type; `usage`, the latest measured "
        "usage (per core, per GPU, sessions, from the workspace's agent or CloudWatch; null before any); and "
        "`idle`, its idle settings and verdict.",
        responses=inline_serializer(
            "Sysinfo",
            {
                "instance_type": strict.CharField(),
                "cpu": serializers.DictField(),
                "memory": serializers.DictField(),
                "gpu": serializers.DictField(),
                "disk": serializers.DictField(),
                "usage": idle_shapes.IdleUsageSerializer(allow_null=True),
                "idle": inline_serializer(
                    "SysinfoIdle",
                    {"settings": idle_shapes.IdleSettingsSerializer(), "verdict": idle_shapes.IdleVerdictSerializer()},
                ),
            },
        ),
        tags=["instances"],
        parameters=[PROJECT_PARAMETER],
    )
    def get(self, request, name: str):
        workspace = workspace_or_404(request, name)
        spec = sizing.get_instance_type(workspace.instance_type)
        idle = idle_shapes.state_of(workspace)
        return Response(
            {
                "instance_type": spec.name,
                "cpu": {"cores": spec.vcpu, "architecture": spec.architecture},
                "memory": {"total_gb": spec.memory_gib},
                "gpu": {"count": spec.gpu_count, "model": spec.gpu_model or None, "memory_gb": spec.gpu_memory_gib},
                "disk": {"root_gb": workspace.root_volume_gb, "type": workspace.root_volume_type},
                "usage": idle_shapes.IdleUsageSerializer(usage).data if (usage := idle_shapes.usage_of(idle)) else None,
                "idle": {
                    "settings": idle_shapes.IdleSettingsSerializer(idle_shapes.settings_of(idle)).data,
                    "verdict": idle_shapes.IdleVerdictSerializer(idle_shapes.verdict_of(workspace, idle)).data,
                },
            }
        )
