"""Project money and costs: /api/v1/projects/{id}/budget, /cost-analysis, /api/v1/costs…

Thin views over budgets.reports and budgets.history (figures), budgets.export (CSV) and budgets.whatif (estimates).
Anyone who can see a project can see its money (Project.objects.visible_to): another tenant's project answers 404."""

from datetime import date, timedelta

from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import TokenScope
from budgets import export, history, reports, whatif
from budgets.serializers_costs import (
    CostAnalysisSerializer,
    CostHistorySerializer,
    CurrentCostsSerializer,
    ExportQuerySerializer,
    HistoryQuerySerializer,
    ProjectBudgetSerializer,
    WhatIfResultSerializer,
    WhatIfSerializer,
)
from platform_site.api.renderers import ExactJSONRenderer
from platform_site.api.representation import represent
from platform_site.api.views import ScopedAPIView
from platform_site.errors import ValidationFailed
from platform_site.tenancy import visible_by_id_or_name
from projects.models import Project

DEFAULT_DAYS = 30
# The longest range each granularity answers (a year of days, two of weeks, ten of months), and the export's.
MAX_DAYS = {"daily": 366, "weekly": 731, "monthly": 3660, "export": 3660}


class _ProjectMoneyView(ScopedAPIView):
    model = Project
    lookup_url_kwarg = "project_id"
    lookup_field = "pk"
    not_found_code = "PROJECT_NOT_FOUND"
    not_found_message = "No such project visible to you."

    def refine_queryset(self, queryset):
        return queryset.select_related("organization", "allocation__pool")


class ProjectBudgetView(_ProjectMoneyView):
    @extend_schema(
        summary="A project's budget: allocation, spend in the budget period by kind, hibernation savings, top "
        "spending workspaces, threshold flags and the project's budget alerts.",
        responses=ProjectBudgetSerializer,
        tags=["costs"],
    )
    def get(self, request, project_id: str):
        # ProjectBudgetSerializer's output (its schema), written without building it for every request.
        return Response(represent(ProjectBudgetSerializer, reports.project_budget(self.get_object())))


class ProjectCostAnalysisView(_ProjectMoneyView):
    @extend_schema(
        summary="A project's month to date, projected month, 7-day burn rate, runway to the allocation's end, and "
        "recommendations with their potential savings.",
        responses=CostAnalysisSerializer,
        tags=["costs"],
    )
    def get(self, request, project_id: str):
        return Response(CostAnalysisSerializer(reports.project_cost_analysis(self.get_object())).data)


class CostsCurrentView(APIView):
    @extend_schema(
        summary="What the projects visible to the caller cost per hour right now, projected over a day and the "
        "month, with this month's hibernation savings and the top cost drivers.",
        responses=CurrentCostsSerializer,
        tags=["costs"],
    )
    def get(self, request):
        return Response(CurrentCostsSerializer(history.costs_current(user=request.user)).data)


def _project(request, reference: str | None) -> Project | None:
    if not reference:
        return None
    return visible_by_id_or_name(
        Project, request.user, reference, code="PROJECT_NOT_FOUND", refine=lambda qs: qs.select_related("organization")
    )


# The calendar the ledger can hold (bucket ends are computed past the range's last day).
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)


def _date_range(request, data: dict, project: Project | None, limit: str) -> tuple[date, date]:
    """start_date and end_date (inclusive), by default the last 30 days to today in the organization's
    time zone; 400 with `fields` when they are reversed or further apart than the limit."""
    zone = reports.ledger.zone_of(project.organization.time_zone) if project else history.caller_zone(request.user)
    end = data.get("end_date") or timezone.now().astimezone(zone).date()
    start = data.get("start_date") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValidationFailed(
            "start_date is after end_date.", fields={"start_date": ["Must be on or before end_date."]}
        )
    for name, value in (("start_date", start), ("end_date", end)):
        if not EARLIEST <= value <= LATEST:
            raise ValidationFailed(
                f"{name} is out of range.", fields={name: [f"Must be between {EARLIEST} and {LATEST}."]}
            )
    if (end - start).days + 1 > MAX_DAYS[limit]:
        raise ValidationFailed(
            f"The range is longer than {MAX_DAYS[limit]} days.",
            fields={"start_date": [f"At most {MAX_DAYS[limit]} days before end_date for {limit}."]},
            remediation="Ask for a shorter range, or a coarser granularity (weekly, monthly).",
        )
    return start, end


def _query(serializer_class, request) -> dict:
    form = serializer_class(data=request.query_params)
    form.is_valid(raise_exception=True)
    return form.validated_data


class CostsHistoryView(APIView):
    @extend_schema(
        summary="The ledger summed per day, ISO week or month between two dates of the organization's calendar, "
        "each split by project, workspace or member, with the trend.",
        parameters=[HistoryQuerySerializer],
        responses=CostHistorySerializer,
        tags=["costs"],
    )
    def get(self, request):
        data = _query(HistoryQuerySerializer, request)
        project = _project(request, data.get("project"))
        start, end = _date_range(request, data, project, data["granularity"])
        body = history.cost_history(
            user=request.user,
            start=start,
            end=end,
            granularity=data["granularity"],
            group_by=data["group_by"],
            project=project,
        )
        return Response(CostHistorySerializer(body).data)


class CSVRenderer(BaseRenderer):
    """Lets a client ask for text/csv (Accept); the export answers with its own streaming response."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # pragma: no cover - never used
        raise NotImplementedError("the export streams its own response")


class CostsExportView(APIView):
    renderer_classes = [ExactJSONRenderer, CSVRenderer]

    @extend_schema(
        summary="The ledger rows of the projects visible to the caller between two dates, as CSV (streamed).",
        parameters=[ExportQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Columns: " + ", ".join(export.COLUMNS) + ". Times ISO 8601 (UTC); amounts in USD as "
                "stored (8 decimal places); day is the organization's local date.",
            )
        },
        tags=["costs"],
    )
    def get(self, request):
        data = _query(ExportQuerySerializer, request)
        project = _project(request, data.get("project"))
        start, end = _date_range(request, data, project, "export")
        rows = export.ledger_rows(user=request.user, start=start, end=end, project=project)
        response = StreamingHttpResponse(export.csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="carrel-costs-{start}-{end}.csv"'
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors keep the JSON envelope even when the client asked for CSV.
        if isinstance(response, Response):
            request.accepted_renderer = ExactJSONRenderer()
            request.accepted_media_type = ExactJSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class WhatIfView(APIView):
    required_scope = TokenScope.READ  # it changes nothing

    @extend_schema(
        summary="What a workspace would cost (a template or an instance type, a size, hours a day, days): its "
        "rates, total, share of the project's allocation, runway before and after, and whether it fits the "
        "launch limit. Creates nothing.",
        request=WhatIfSerializer,
        responses={200: WhatIfResultSerializer},
        tags=["costs"],
    )
    def post(self, request):
        form = WhatIfSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        project = visible_by_id_or_name(
            Project,
            request.user,
            data.pop("project"),
            code="PROJECT_NOT_FOUND",
            refine=lambda qs: qs.select_related("organization", "allocation__pool"),
        )
        body = whatif.what_if(user=request.user, project=project, **data)
        return Response(WhatIfResultSerializer(body).data)


urlpatterns = [
    path("projects/<str:project_id>/budget", ProjectBudgetView.as_view(), name="project-budget"),
    path("projects/<str:project_id>/cost-analysis", ProjectCostAnalysisView.as_view(), name="project-cost-analysis"),
    path("costs/current", CostsCurrentView.as_view(), name="costs-current"),
    path("costs/history", CostsHistoryView.as_view(), name="costs-history"),
    path("costs/export", CostsExportView.as_view(), name="costs-export"),
    path("costs/what-if", WhatIfView.as_view(), name="costs-what-if"),
]
