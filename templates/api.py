from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organization
from platform_site.api import fields as strict
from platform_site.errors import NotFound, ValidationFailed
from platform_site.tenancy import visible_or_404
from templates import selectors, services
from templates.selectors import TemplateView


class TemplateSerializer(serializers.Serializer):
    name = strict.CharField(source="template.name")
    slug = strict.CharField(source="template.slug")
    description = strict.CharField(source="template.description")
    organization = strict.CharField(source="template.organization_id", allow_null=True)
    source = strict.CharField(source="template.source")
    inherits = serializers.ListField(child=strict.CharField(), source="template.definition.inherits", default=list)
    base_os = strict.CharField(source="resolved.base_os", allow_null=True, default=None)
    package_manager = strict.CharField(source="resolved.package_manager", allow_null=True, default=None)
    packages = serializers.ListField(child=strict.CharField(), source="resolved.packages", default=list)
    users = serializers.ListField(child=strict.CharField(), source="resolved.user_names", default=list)
    services = serializers.ListField(child=strict.CharField(), source="resolved.service_names", default=list)
    ports = serializers.ListField(child=strict.IntegerField(), source="resolved.ports", default=list)
    instance_defaults = serializers.DictField(source="resolved.instance_defaults", default=dict)
    idle_defaults = serializers.DictField(source="resolved.idle_defaults", default=dict)
    parameters = serializers.DictField(source="resolved.parameters", default=dict)
    validation_status = serializers.SerializerMethodField()

    def get_validation_status(self, view: TemplateView) -> str:
        return "validated" if view.report.valid else "invalid"


class TemplateInfoSerializer(serializers.Serializer):
    name = strict.CharField(source="template.name")
    slug = strict.CharField(source="template.slug")
    description = strict.CharField(source="template.description")
    inherits = serializers.ListField(child=strict.CharField(), source="template.definition.inherits", default=list)
    base_os = strict.CharField(source="resolved.base_os", allow_null=True, default=None)
    package_manager = strict.CharField(source="resolved.package_manager", allow_null=True, default=None)
    resolved_packages = serializers.ListField(child=strict.CharField(), source="resolved.packages", default=list)
    packages_by_manager = serializers.DictField(source="resolved.packages_by_manager", default=dict)
    resolved_users = serializers.ListField(child=strict.CharField(), source="resolved.user_names", default=list)
    resolved_services = serializers.ListField(child=serializers.DictField(), source="resolved.services", default=list)
    resolved_ports = serializers.ListField(child=strict.IntegerField(), source="resolved.ports", default=list)
    instance_defaults = serializers.DictField(source="resolved.instance_defaults", default=dict)
    idle_defaults = serializers.DictField(source="resolved.idle_defaults", default=dict)
    parameters = serializers.DictField(source="resolved.parameters", default=dict)
    dependency_chain = serializers.SerializerMethodField()
    validation_status = serializers.SerializerMethodField()
    validation_issues = serializers.SerializerMethodField()
    troubleshooting_guide = strict.CharField(source="resolved.troubleshooting_guide", default="")

    def get_dependency_chain(self, view: TemplateView) -> list[str]:
        return [" → ".join(view.resolved.dependency_chain)] if view.resolved else []

    def get_validation_status(self, view: TemplateView) -> str:
        return "validated" if view.report.valid else "invalid"

    def get_validation_issues(self, view: TemplateView) -> list[str]:
        return [issue.message for issue in view.report.issues]


class TemplateCreateSerializer(serializers.Serializer):
    organization = strict.CharField(help_text="The organization that owns the private template.")
    definition = serializers.DictField(help_text="The template, with the same fields as the catalog YAML files.")


class TemplateListView(APIView):
    @extend_schema(
        summary="Templates the caller may launch: the shipped catalog and their organizations' own.",
        responses=TemplateSerializer(many=True),
        tags=["templates"],
    )
    def get(self, request):
        return Response(TemplateSerializer(selectors.templates_for(user=request.user), many=True).data)

    @extend_schema(
        summary="Add a private template to an organization (owner or admin).",
        request=TemplateCreateSerializer,
        responses={201: TemplateInfoSerializer},
        tags=["templates"],
    )
    def post(self, request):
        form = TemplateCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        organization = visible_or_404(
            Organization,
            request.user,
            code="ORGANIZATION_NOT_FOUND",
            message="No such organization of yours.",
            pk=form.validated_data["organization"],
        )
        if not isinstance(form.validated_data["definition"].get("name"), str):
            raise ValidationFailed(fields={"definition.name": ["A template needs a name."]})
        template = services.template_create(
            actor=request.user, organization=organization, definition=form.validated_data["definition"]
        )
        view = selectors.template_for(user=request.user, reference=template.slug)
        return Response(TemplateInfoSerializer(view).data, status=status.HTTP_201_CREATED)


class TemplateValidateView(APIView):
    @extend_schema(
        summary="Validate every template the caller may use.",
        responses=inline_serializer(
            "TemplateValidation",
            {
                "total_templates": strict.IntegerField(),
                "validated": strict.IntegerField(),
                "errors": serializers.ListField(child=strict.CharField()),
                "validation_results": serializers.ListField(child=serializers.DictField()),
            },
        ),
        tags=["templates"],
    )
    def get(self, request):
        views = selectors.templates_for(user=request.user)
        results = [
            {
                "template": view.template.name,
                "status": "valid" if view.report.valid else "invalid",
                "checks_passed": view.report.checks_passed,
                "issues": [{"check": issue.check, "message": issue.message} for issue in view.report.issues],
            }
            for view in views
        ]
        return Response(
            {
                "total_templates": len(views),
                "validated": sum(1 for view in views if view.report.valid),
                "errors": [f"{view.template.name}: {issue.message}" for view in views for issue in view.report.issues],
                "validation_results": results,
            }
        )


def _template_or_404(user, name: str) -> TemplateView:
    view = selectors.template_for(user=user, reference=name)
    if view is None:
        raise NotFound(
            f"No template named '{name}'.",
            code="TEMPLATE_NOT_FOUND",
            remediation="GET /api/v1/templates lists the templates you can use.",
        )
    return view


class TemplateInfoView(APIView):
    @extend_schema(
        summary="A template with inheritance resolved: packages, users, ports, dependency chain, validation.",
        responses=TemplateInfoSerializer,
        tags=["templates"],
    )
    def get(self, request, name: str):
        return Response(TemplateInfoSerializer(_template_or_404(request.user, name)).data)


class TemplateDetailView(APIView):
    @extend_schema(
        summary="Delete an organization's private template (owner or admin).", responses={204: None}, tags=["templates"]
    )
    def delete(self, request, name: str):
        services.template_delete(actor=request.user, template=_template_or_404(request.user, name).template)
        return Response(status=status.HTTP_204_NO_CONTENT)
