"""Provisioning jobs (/jobs) and workspace logs (/logs)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_site.api import fields as strict
from platform_site.api.views import ScopedAPIView
from platform_site.errors import NotFound, ProviderUnavailable, ValidationFailed
from platform_site.tenancy import scoped_queryset
from workspaces import cloud, services
from workspaces.api.references import PROJECT_PARAMETER, WHOLE_NUMBER_RE, workspace_or_404
from workspaces.models import ProvisionJob, Workspace, WorkspaceState
from workspaces.serializers import (
    JobSerializer,
)

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
        workspace = workspace_or_404(request, name)
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
        workspace = workspace_or_404(request, name)
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
