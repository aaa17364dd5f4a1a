"""The daily cost digest option: PUT /api/v1/projects/{id}/cost-digest (the caller's own membership)."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from budgets.services import digests
from platform_site.api import fields as strict
from platform_site.api.views import ScopedAPIView
from projects.models import Project


class CostDigestSerializer(serializers.Serializer):
    enabled = strict.BooleanField(help_text="Send me the project's cost digest every morning (07:00 local).")


class CostDigestResponseSerializer(serializers.Serializer):
    project_id = strict.CharField()
    enabled = strict.BooleanField()
    last_sent_on = serializers.DateField(allow_null=True, help_text="The organization-local day it was last sent.")


class CostDigestView(ScopedAPIView):
    model = Project
    serializer_class = CostDigestSerializer  # what OPTIONS describes
    lookup_url_kwarg = "project_id"
    lookup_field = "pk"
    not_found_code = "PROJECT_NOT_FOUND"
    not_found_message = "No such project visible to you."

    def refine_queryset(self, queryset):
        return queryset.select_related("organization")

    @extend_schema(
        summary=(
            "Turn the daily cost digest e-mail on or off for yourself (project owners and admins who are members "
            "of the project): yesterday's spend, month to date, what the allocation has left, the top workspaces."
        ),
        request=CostDigestSerializer,
        responses={200: CostDigestResponseSerializer},
        tags=["projects"],
    )
    def put(self, request, project_id: str):
        project = self.get_object()
        form = CostDigestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = digests.cost_digest_set(actor=request.user, project=project, enabled=form.validated_data["enabled"])
        return Response(
            {"project_id": project.pk, "enabled": member.cost_digest, "last_sent_on": member.cost_digest_sent_on}
        )


urlpatterns = [
    path("projects/<str:project_id>/cost-digest", CostDigestView.as_view(), name="project-cost-digest"),
]
