"""Budget pools and allocations: /api/v1/budgets…

Thin views: the pool or allocation is looked up among those the caller may see (404 otherwise, whoever owns it),
the body is parsed, and `budgets.services.pools` and `budgets.services.allocations` decide who may change what (403)
and keep the money invariants.
Figures come from `budgets.selectors_pools`, in a constant number of queries per request.
"""

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.selectors import organization_named_or_only
from budgets import selectors_pools as figures
from budgets.models import Allocation, BudgetPool
from budgets.serializers_pools import (
    AllocationCreateSerializer,
    AllocationListSerializer,
    AllocationSerializer,
    AllocationUpdateSerializer,
    MemberCapListSerializer,
    MemberCapsInputSerializer,
    PoolCreateSerializer,
    PoolListSerializer,
    PoolSerializer,
    PoolUpdateSerializer,
    ReallocateResultSerializer,
    ReallocateSerializer,
    SummarySerializer,
)
from budgets.services import allocations as allocation_services
from budgets.services import pools as services
from platform_site.api.views import ScopedAPIView
from platform_site.tenancy import visible_or_404

TAGS = ["budgets"]


def _with_figures(pools: list[BudgetPool]) -> list[BudgetPool]:
    found = figures.pool_figures(pools)
    for pool in pools:
        pool.figures = found[pool.pk]  # type: ignore[attr-defined]
    return pools


def _allocations_with_figures(allocations: list[Allocation]) -> list[Allocation]:
    found = figures.allocation_figures(allocations)
    for allocation in allocations:
        allocation.figures = found[allocation.pk]  # type: ignore[attr-defined]
    return allocations


class _PoolView(ScopedAPIView):
    model = BudgetPool
    serializer_class = PoolSerializer
    lookup_url_kwarg = "budget_id"
    lookup_field = "pk"
    not_found_code = "BUDGET_NOT_FOUND"
    not_found_message = "No such budget pool visible to you."

    def refine_queryset(self, queryset):
        return queryset.select_related("organization", "created_by")

    def pool(self) -> BudgetPool:
        return self.get_object()

    def shown(self, pool: BudgetPool) -> dict:
        """The pool as the API shows it, re-read with its figures."""
        fresh = self.refine_queryset(BudgetPool.objects.filter(pk=pool.pk)).get()
        return PoolSerializer(_with_figures([fresh])[0]).data


class PoolListCreateView(_PoolView):
    def filter_queryset(self, queryset):
        if organization := self.request.query_params.get("organization"):
            queryset = queryset.filter(organization_id=organization)
        return queryset

    @extend_schema(
        summary="Budget pools visible to the caller (their organizations' as owner or admin; the pool funding a "
        "project they own), with allocated, spent and remaining amounts.",
        parameters=[OpenApiParameter("organization", str, description="Only this organization's pools.")],
        responses=PoolListSerializer,
        operation_id="budgets_list",
        tags=TAGS,
    )
    def get(self, request):
        pools = _with_figures(list(self.filter_queryset(self.get_queryset())))
        return Response({"budgets": PoolSerializer(pools, many=True).data, "count": len(pools)})

    @extend_schema(
        summary="Create a budget pool (organization owners and admins).",
        request=PoolCreateSerializer,
        responses={201: PoolSerializer},
        tags=TAGS,
    )
    def post(self, request):
        form = PoolCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        organization = organization_named_or_only(user=request.user, organization_id=data.pop("organization", None))
        services.require_manager(actor=request.user, organization_id=organization.pk)
        if data.get("alert_threshold") is None:
            data.pop("alert_threshold", None)
        pool = services.pool_create(actor=request.user, organization=organization, **data)
        return Response(self.shown(pool), status=status.HTTP_201_CREATED)


class PoolDetailView(_PoolView):
    @extend_schema(summary="A budget pool with its figures.", responses=PoolSerializer, tags=TAGS)
    def get(self, request, budget_id: str):
        return Response(PoolSerializer(_with_figures([self.pool()])[0]).data)

    @extend_schema(
        summary="Change a pool's name, description, total (not below what is allocated), alert threshold or end "
        "date (organization owners and admins).",
        request=PoolUpdateSerializer,
        responses=PoolSerializer,
        tags=TAGS,
    )
    def put(self, request, budget_id: str):
        pool = self.pool()
        services.require_manager(actor=request.user, organization_id=pool.organization_id)
        form = PoolUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        pool = services.pool_update(actor=request.user, pool=pool, **form.validated_data)
        return Response(self.shown(pool))

    @extend_schema(summary="Delete a pool; refused (409) while it has allocations.", responses={204: None}, tags=TAGS)
    def delete(self, request, budget_id: str):
        services.pool_delete(actor=request.user, pool=self.pool())
        return Response(status=status.HTTP_204_NO_CONTENT)


class PoolSummaryView(_PoolView):
    @extend_schema(
        summary="The pool's figures, its allocations with spent, remaining and utilization, its status (ok, "
        "warning, exceeded), its alerts and its top spending projects. A project owner sees their own project's "
        "allocation only.",
        responses=SummarySerializer,
        tags=TAGS,
    )
    def get(self, request, budget_id: str):
        pool = self.pool()
        summary = figures.pool_summary(pool, user=request.user)
        pool.figures = summary.figures  # type: ignore[attr-defined]
        return Response(
            SummarySerializer(
                {
                    "budget": pool,
                    "allocations": summary.allocations,
                    "status": summary.figures.status,
                    "alerts": summary.alerts,
                    "top_spending_projects": summary.top_spending,
                }
            ).data
        )


class _AllocationView(ScopedAPIView):
    model = Allocation
    serializer_class = AllocationSerializer
    lookup_url_kwarg = "allocation_id"
    lookup_field = "pk"
    not_found_code = "ALLOCATION_NOT_FOUND"
    not_found_message = "No such allocation in this budget pool visible to you."

    def refine_queryset(self, queryset):
        return queryset.filter(pool_id=self.kwargs["budget_id"]).select_related(
            "pool__organization", "project", "allocated_by"
        )

    def pool(self) -> BudgetPool:
        return visible_or_404(
            BudgetPool,
            self.request.user,
            code="BUDGET_NOT_FOUND",
            message="No such budget pool visible to you.",
            refine=lambda queryset: queryset.select_related("organization"),
            pk=self.kwargs["budget_id"],
        )

    def allocation(self) -> Allocation:
        self.pool()
        return self.get_object()

    def shown(self, allocation: Allocation) -> dict:
        fresh = self.refine_queryset(Allocation.objects.filter(pk=allocation.pk)).get()
        return AllocationSerializer(_allocations_with_figures([fresh])[0]).data


class AllocationListCreateView(_AllocationView):
    @extend_schema(
        summary="The pool's allocations the caller may see, with what each project has spent.",
        responses=AllocationListSerializer,
        operation_id="budgets_allocations_list",
        tags=TAGS,
    )
    def get(self, request, budget_id: str):
        self.pool()
        allocations = _allocations_with_figures(list(self.get_queryset()))
        return Response({"allocations": AllocationSerializer(allocations, many=True).data, "count": len(allocations)})

    @extend_schema(
        summary="Fund a project of the pool's organization (organization owners and admins). The pool's "
        "allocations may not add up to more than the pool (409 ALLOCATION_EXCEEDS_POOL); a project has at most "
        "one allocation (409 PROJECT_ALREADY_FUNDED).",
        request=AllocationCreateSerializer,
        responses={201: AllocationSerializer},
        tags=TAGS,
    )
    def post(self, request, budget_id: str):
        pool = self.pool()
        services.require_manager(actor=request.user, organization_id=pool.organization_id)
        form = AllocationCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        allocation = allocation_services.allocation_create(
            actor=request.user,
            pool=pool,
            project=data.pop("project_id"),
            amount=data.pop("allocated_amount"),
            **data,
        )
        return Response(self.shown(allocation), status=status.HTTP_201_CREATED)


class AllocationDetailView(_AllocationView):
    @extend_schema(summary="An allocation with what its project has spent.", responses=AllocationSerializer, tags=TAGS)
    def get(self, request, budget_id: str, allocation_id: str):
        return Response(AllocationSerializer(_allocations_with_figures([self.allocation()])[0]).data)

    @extend_schema(
        summary="Change an allocation's amount (within the pool), thresholds or end date (organization owners "
        "and admins). Thresholds and end_date may be null to clear them.",
        request=AllocationUpdateSerializer,
        responses=AllocationSerializer,
        tags=TAGS,
    )
    def put(self, request, budget_id: str, allocation_id: str):
        allocation = self.allocation()
        services.require_manager(actor=request.user, organization_id=allocation.pool.organization_id)
        form = AllocationUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        if "allocated_amount" in data:
            data["amount"] = data.pop("allocated_amount")
        allocation = allocation_services.allocation_update(actor=request.user, allocation=allocation, **data)
        return Response(self.shown(allocation))

    @extend_schema(
        summary="Remove a project's allocation (organization owners and admins). Its ledger stays.",
        responses={204: None},
        tags=TAGS,
    )
    def delete(self, request, budget_id: str, allocation_id: str):
        allocation_services.allocation_delete(actor=request.user, allocation=self.allocation())
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberCapsView(_AllocationView):
    def caps(self, allocation: Allocation) -> dict:
        caps = figures.member_caps(allocation)
        return MemberCapListSerializer({"allocation_id": allocation.pk, "caps": caps, "count": len(caps)}).data

    @extend_schema(
        summary="Per-member caps inside the allocation (a student's own limit), with what each member spent.",
        responses=MemberCapListSerializer,
        tags=TAGS,
    )
    def get(self, request, budget_id: str, allocation_id: str):
        return Response(self.caps(self.allocation()))

    @extend_schema(
        summary="Replace the allocation's member caps ({e-mail or username: amount}; each a current member of the "
        "project; organization owners and admins).",
        request=MemberCapsInputSerializer,
        responses=MemberCapListSerializer,
        tags=TAGS,
    )
    def put(self, request, budget_id: str, allocation_id: str):
        allocation = self.allocation()
        services.require_manager(actor=request.user, organization_id=allocation.pool.organization_id)
        form = MemberCapsInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        allocation_services.member_caps_set(actor=request.user, allocation=allocation, caps=form.validated_data["caps"])
        return Response(self.caps(allocation))


class ReallocateView(_PoolView):
    @extend_schema(
        summary="Move money between two allocations of the pool (organization owners and admins). A reason is "
        "required and audited; the source may not drop below what its project has spent this period.",
        request=ReallocateSerializer,
        responses=ReallocateResultSerializer,
        tags=TAGS,
    )
    def post(self, request, budget_id: str):
        pool = self.pool()
        services.require_manager(actor=request.user, organization_id=pool.organization_id)
        form = ReallocateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        source, target = allocation_services.allocation_reallocate(actor=request.user, pool=pool, **form.validated_data)
        shown = _allocations_with_figures(
            list(
                Allocation.objects.filter(pk__in=[source.pk, target.pk]).select_related(
                    "pool__organization", "project", "allocated_by"
                )
            )
        )
        by_id = {allocation.pk: allocation for allocation in shown}
        return Response(
            ReallocateResultSerializer(
                {
                    "budget_id": pool.pk,
                    "amount": form.validated_data["amount"],
                    "reason": form.validated_data["reason"].strip(),
                    "from_allocation": by_id[source.pk],
                    "to_allocation": by_id[target.pk],
                }
            ).data
        )


BUDGET = "budgets/<str:budget_id>"
ALLOCATION = BUDGET + "/allocations/<str:allocation_id>"

urlpatterns = [
    path("budgets", PoolListCreateView.as_view(), name="budgets"),
    path(BUDGET, PoolDetailView.as_view(), name="budget-detail"),
    path(BUDGET + "/summary", PoolSummaryView.as_view(), name="budget-summary"),
    path(BUDGET + "/allocations", AllocationListCreateView.as_view(), name="budget-allocations"),
    path(ALLOCATION, AllocationDetailView.as_view(), name="budget-allocation-detail"),
    path(ALLOCATION + "/caps", MemberCapsView.as_view(), name="budget-allocation-caps"),
    path(BUDGET + "/reallocate", ReallocateView.as_view(), name="budget-reallocate"),
]
