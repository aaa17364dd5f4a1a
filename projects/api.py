from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response

from accounts.selectors import organization_named_or_only
from platform_site.api.views import ScopedAPIView
from platform_site.tenancy import visible_or_404
from projects import selectors, services
from projects.models import Project, ProjectMember
from projects.serializers import (
    ProjectCreateSerializer,
    ProjectMemberInputSerializer,
    ProjectMemberSerializer,
    ProjectMemberUpdateSerializer,
    ProjectSerializer,
    ProjectUpdateSerializer,
)


class _ProjectView(ScopedAPIView):
    model = Project
    serializer_class = ProjectSerializer
    lookup_url_kwarg = "project_id"
    lookup_field = "pk"
    not_found_code = "PROJECT_NOT_FOUND"
    not_found_message = "No such project visible to you."

    def refine_queryset(self, queryset):
        return selectors.projects_for(user=self.request.user, queryset=queryset)


class ProjectListCreateView(mixins.ListModelMixin, _ProjectView):
    def filter_queryset(self, queryset):
        if organization := self.request.query_params.get("organization"):
            queryset = queryset.filter(organization_id=organization)
        return queryset

    @extend_schema(
        summary="Projects visible to the caller, with members and instance counts.",
        parameters=[OpenApiParameter("organization", str, description="Only this organization's projects.")],
        tags=["projects"],
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Create a project; the caller becomes its owner. Members must belong to the organization.",
        request=ProjectCreateSerializer,
        responses={201: ProjectSerializer},
        tags=["projects"],
    )
    def post(self, request):
        form = ProjectCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        project = services.project_create(
            actor=request.user,
            organization=organization_named_or_only(user=request.user, organization_id=data.get("organization")),
            name=data["name"],
            description=data["description"],
            members=data["members"],
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=project.pk)).data, status=201)


class ProjectDetailView(_ProjectView):
    @extend_schema(summary="A project.", tags=["projects"])
    def get(self, request, project_id: str):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Rename or describe a project (owner or admin).", request=ProjectUpdateSerializer, tags=["projects"]
    )
    def patch(self, request, project_id: str):
        project = self.get_object()
        form = ProjectUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.project_update(actor=request.user, project=project, **form.validated_data)
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Delete a project (owner). Refused with 409 while it has live workspaces.",
        responses={204: None},
        tags=["projects"],
    )
    def delete(self, request, project_id: str):
        services.project_delete(actor=request.user, project=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class _ProjectMembersView(ScopedAPIView):
    model = ProjectMember
    serializer_class = ProjectMemberSerializer

    def project(self) -> Project:
        return visible_or_404(
            Project,
            self.request.user,
            code="PROJECT_NOT_FOUND",
            message="No such project visible to you.",
            refine=lambda qs: qs.select_related("organization"),
            pk=self.kwargs["project_id"],
        )

    def refine_queryset(self, queryset):
        # Members whose access expired are not members any more, even before the periodic task removes them.
        return (
            queryset.current()
            .filter(project_id=self.kwargs["project_id"])
            .select_related("user", "project__organization")
        )


class ProjectMembersView(mixins.ListModelMixin, _ProjectMembersView):
    @extend_schema(summary="Members of a project.", tags=["projects"])
    def get(self, request, project_id: str):
        self.project()
        return self.list(request)

    @extend_schema(
        summary="Add a member of the organization to the project (owner or admin; never above your own role).",
        request=ProjectMemberInputSerializer,
        responses={201: ProjectMemberSerializer},
        tags=["projects"],
    )
    def post(self, request, project_id: str):
        project = self.project()
        form = ProjectMemberInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = services.project_member_add(actor=request.user, project=project, **form.validated_data)
        return Response(self.get_serializer(member).data, status=status.HTTP_201_CREATED)


class ProjectMemberDetailView(_ProjectMembersView):
    lookup_url_kwarg = "username"
    lookup_field = "user__username"
    not_found_code = "MEMBER_NOT_FOUND"
    not_found_message = "No such member of this project."

    @extend_schema(summary="One member of a project.", tags=["projects"])
    def get(self, request, project_id: str, username: str):
        self.project()
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Change a member's role (owner or admin; never above your own).",
        request=ProjectMemberUpdateSerializer,
        tags=["projects"],
    )
    def patch(self, request, project_id: str, username: str):
        self.project()
        member = self.get_object()
        form = ProjectMemberUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = services.project_member_update(actor=request.user, member=member, **form.validated_data)
        return Response(self.get_serializer(member).data)

    @extend_schema(
        summary="Remove a member (owner or admin), or leave the project yourself.",
        responses={204: None},
        tags=["projects"],
    )
    def delete(self, request, project_id: str, username: str):
        self.project()
        services.project_member_remove(actor=request.user, member=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
