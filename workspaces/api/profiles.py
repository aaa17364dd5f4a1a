"""Profiles (/profiles): the caller's cloud accounts and default project."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_site.errors import NotFound, ValidationFailed
from platform_site.tenancy import scoped_queryset, visible_by_id_or_name
from projects.models import Project
from workspaces import services
from workspaces.models import CloudAccount, WorkspacePreference
from workspaces.serializers import (
    ProfileSerializer,
    ProfileSwitchSerializer,
)

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
