from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers
from rest_framework.response import Response

from audit.models import AuditEvent
from platform_site.api.views import ScopedAPIView


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "organization",
            "actor",
            "action",
            "target_type",
            "target_id",
            "target_label",
            "ip",
            "request_id",
            "metadata",
            "created_at",
        ]
        read_only_fields = fields


class _AuditView(ScopedAPIView):
    model = AuditEvent
    serializer_class = AuditEventSerializer
    lookup_url_kwarg = "event_id"
    lookup_field = "pk"
    not_found_code = "AUDIT_EVENT_NOT_FOUND"
    not_found_message = "No such audit event visible to you."


class AuditEventListView(mixins.ListModelMixin, _AuditView):
    def filter_queryset(self, queryset):
        for param, field in (("organization", "organization_id"), ("action", "action"), ("actor", "actor_label")):
            if value := self.request.query_params.get(param):
                queryset = queryset.filter(**{field: value})
        return queryset

    @extend_schema(
        summary="The audit trail of organizations the caller owns or administers, and the caller's own events.",
        parameters=[
            OpenApiParameter("organization", str),
            OpenApiParameter("action", str, description="e.g. project.create"),
            OpenApiParameter("actor", str, description="The actor's e-mail."),
        ],
        tags=["audit"],
    )
    def get(self, request):
        return self.list(request)


class AuditEventDetailView(_AuditView):
    @extend_schema(summary="One audit event.", tags=["audit"])
    def get(self, request, event_id: str):
        return Response(self.get_serializer(self.get_object()).data)
