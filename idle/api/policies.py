"""Idle detection for people: profiles, a workspace's settings, state and snooze, the warnings in force, the
history of what was done, and a project's default (/api/v1/idle/…, /api/v1/projects/{id}/idle-policy).

Thin views: workspaces and projects are found among those the caller may see (404 otherwise); the services
(idle.services.configure, idle.services.snooze) decide who may change what (403)."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Membership
from accounts.selectors import organization_named_or_only
from idle import serializers as shapes
from idle.decision import quiet_since
from idle.models import IdleEvent, ProjectIdlePolicy, WorkspaceIdle
from idle.profiles import profiles_for
from idle.selectors import idle_history
from idle.services import configure
from idle.services.snooze import workspace_snooze
from platform_site.errors import ValidationFailed
from platform_site.tenancy import visible_by_id_or_name, visible_or_404
from projects.models import Project
from workspaces.api.references import PROJECT_PARAMETER, workspace_or_404
from workspaces.models import Workspace, WorkspaceState

TAGS = ["idle"]


class IdleProfilesView(APIView):
    @extend_schema(
        summary="Idle profiles you may use: the built-in ones (standard, batch, gpu) and your organizations' own.",
        parameters=[OpenApiParameter("organization", str, description="Only this organization's (and built-ins).")],
        responses=shapes.IdleProfileSerializer(many=True),
        tags=TAGS,
    )
    def get(self, request):
        organizations = Membership.objects.filter(user=request.user).values_list("organization_id", flat=True)
        wanted = request.query_params.get("organization")
        ids = [pk for pk in organizations if not wanted or pk == wanted]
        return Response([shapes.profile_body(profile) for profile in profiles_for(organization_ids=ids)])

    @extend_schema(
        summary="Create an organization's own idle profile (organization owners and admins). Its name may not be "
        "a built-in profile's.",
        request=shapes.IdleProfileCreateSerializer,
        responses={201: shapes.IdleProfileSerializer},
        tags=TAGS,
    )
    def post(self, request):
        form = shapes.IdleProfileCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        organization = organization_named_or_only(user=request.user, organization_id=data.pop("organization", None))
        row = configure.idle_profile_create(actor=request.user, organization=organization, **data)
        profile = next(p for p in profiles_for(organization_ids=[organization.pk]) if p.name == row.name)
        return Response(shapes.profile_body(profile), status=status.HTTP_201_CREATED)


class IdleInstanceView(APIView):
    @extend_schema(
        summary="A workspace's idle settings, what its signals last said, the verdict (idle or not, and why; "
        "when the action comes) and the latest measured usage.",
        responses=shapes.IdleStateSerializer,
        parameters=[PROJECT_PARAMETER],
        tags=TAGS,
    )
    def get(self, request, name: str):
        workspace = workspace_or_404(request, name)
        return Response(shapes.idle_body(workspace, shapes.state_of(workspace)))


class IdleInstanceConfigureView(APIView):
    @extend_schema(
        summary="Change a workspace's idle settings: `enabled`, a `profile` (its thresholds replace the "
        "workspace's), and thresholds over it (null: not judged). The idle window starts again; a warning in "
        "force is withdrawn. The workspace's owner and the project's owners and admins.",
        request=shapes.IdleConfigureSerializer,
        responses=shapes.IdleStateSerializer,
        parameters=[PROJECT_PARAMETER],
        tags=TAGS,
    )
    def post(self, request, name: str):
        workspace = workspace_or_404(request, name)
        form = shapes.IdleConfigureSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        state = configure.workspace_idle_configure(actor=request.user, workspace=workspace, **form.validated_data)
        return Response(shapes.idle_body(workspace, state))


class IdleInstanceSnoozeView(APIView):
    @extend_schema(
        summary="Put off the idle action by an hour (from now, or from the end of a snooze in force) and "
        "withdraw the warning. The workspace must be running with idle detection on.",
        request=None,
        responses=shapes.IdleStateSerializer,
        parameters=[PROJECT_PARAMETER],
        tags=TAGS,
    )
    def post(self, request, name: str):
        workspace = workspace_or_404(request, name)
        state = workspace_snooze(actor=request.user, workspace=workspace)
        return Response(shapes.idle_body(workspace, state))


class IdleHistoryView(GenericAPIView):
    serializer_class = shapes.IdleHistorySerializer

    @extend_schema(
        summary="Each idle warning, snooze and action (hibernate or stop) on workspaces you can see, newest "
        "first, with how long the workspace had been idle and the money the action saved.",
        parameters=[
            OpenApiParameter("project", str, description="Project id or name."),
            OpenApiParameter("instance", str, description="Workspace id, instance id or name."),
            OpenApiParameter("action", str, enum=IdleEvent.Kind.values, description="Only this kind."),
        ],
        responses=shapes.IdleHistorySerializer(many=True),
        tags=TAGS,
    )
    def get(self, request):
        params = request.query_params
        project = workspace = None
        if params.get("project"):
            project = visible_by_id_or_name(Project, request.user, params["project"], code="PROJECT_NOT_FOUND")
        if params.get("instance"):
            workspace = workspace_or_404(request, params["instance"])
        kind = params.get("action") or None
        if kind is not None and kind not in IdleEvent.Kind.values:
            raise ValidationFailed(fields={"action": [f"One of {', '.join(IdleEvent.Kind.values)}."]})
        events = idle_history(user=request.user, project=project, workspace=workspace, kind=kind)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(shapes.IdleHistorySerializer(page, many=True).data)


def warnings_for(user, *, owner_only: bool = False) -> list[WorkspaceIdle]:
    """The running workspaces the user can see (or owns) whose idle warning is in force, one query."""
    workspaces = Workspace.objects.visible_to(user).filter(state=WorkspaceState.RUNNING)
    if owner_only:
        workspaces = workspaces.filter(owner=user)
    rows = (
        WorkspaceIdle.objects.filter(workspace__in=workspaces, enabled=True, warned_at__isnull=False)
        .select_related("workspace", "workspace__project")
        .order_by("warned_at", "workspace_id")
    )
    # A warning followed by activity no longer holds, even before the sweep withdraws it.
    return [row for row in rows if (since := quiet_since(row)) is not None and row.warned_at >= since]


def _boolean_query(request, name: str) -> bool:
    """`?name=true|false` (or 1|0), given at most once; anything else is a 400 naming the parameter."""
    values = request.query_params.getlist(name)
    if not values:
        return False
    if len(values) > 1:
        raise ValidationFailed(fields={name: ["Give it once."]})
    if values[0] not in ("true", "false", "1", "0"):
        raise ValidationFailed(fields={name: ["true or false."]})
    return values[0] in ("true", "1")


class IdleWarningsView(APIView):
    @extend_schema(
        summary="Your workspaces (those you can see) under an idle warning now: what will happen and when, "
        "and where to snooze it.",
        parameters=[OpenApiParameter("mine", bool, description="Only workspaces you own.")],
        responses=shapes.IdleWarningSerializer(many=True),
        tags=TAGS,
    )
    def get(self, request):
        now = timezone.now()
        mine = _boolean_query(request, "mine")
        body = []
        for state in warnings_for(request.user, owner_only=mine):
            workspace = state.workspace
            verdict = shapes.verdict_of(workspace, state, now)
            body.append(
                {
                    "instance_name": workspace.name,
                    "workspace_id": workspace.pk,
                    "project": workspace.project_id,
                    "warned_at": state.warned_at,
                    "action": verdict["action"],
                    "action_at": verdict["action_at"],
                    "idle_for_seconds": verdict["idle_for_seconds"],
                    "snooze": f"/api/v1/idle/instances/{workspace.pk}/snooze",
                }
            )
        return Response(shapes.IdleWarningSerializer(body, many=True).data)


def _policy_body(project: Project) -> dict:
    policy = ProjectIdlePolicy.objects.filter(project=project).select_related("updated_by").first()
    if policy is None:
        body = {"set": False, "enabled": True, "profile": "", "idle_threshold_minutes": None, "action": ""}
        body.update(updated_by=None, updated_at=None)
    else:
        body = {
            "set": True,
            "enabled": policy.enabled,
            "profile": policy.profile,
            "idle_threshold_minutes": policy.idle_threshold_minutes,
            "action": policy.action,
            "updated_by": policy.updated_by.email if policy.updated_by else None,
            "updated_at": policy.updated_at,
        }
    return shapes.ProjectIdlePolicySerializer({"project_id": project.pk, **body}).data


class ProjectIdlePolicyView(APIView):
    def project(self, request, project_id: str) -> Project:
        return visible_or_404(
            Project, request.user, code="PROJECT_NOT_FOUND", message="No such project visible to you.", pk=project_id
        )

    @extend_schema(
        summary="The project's idle default for new workspaces (over their template's idle defaults; a launch's "
        "own `idle` goes over it).",
        responses=shapes.ProjectIdlePolicySerializer,
        tags=TAGS,
    )
    def get(self, request, project_id: str):
        return Response(_policy_body(self.project(request, project_id)))

    @extend_schema(
        summary="Set the project's idle default (project owners). Workspaces already launched keep theirs.",
        request=shapes.ProjectIdlePolicyInputSerializer,
        responses=shapes.ProjectIdlePolicySerializer,
        tags=TAGS,
    )
    def put(self, request, project_id: str):
        project = self.project(request, project_id)
        form = shapes.ProjectIdlePolicyInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        configure.project_idle_policy_set(
            actor=request.user,
            project=project,
            enabled=data["enabled"],
            profile=data["profile"],
            idle_threshold_minutes=data.get("idle_threshold_minutes"),
            action=data.get("action") or "",
        )
        return Response(_policy_body(project))
