"""platform_site.api.representation.represent writes what the serializer writes, key by key: nested serializers,
lists of them, nulls, decimals to their places, dates in the current time zone; and refuses fields it cannot
read by name."""

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from rest_framework import serializers

from budgets import reports
from budgets.serializers_costs import ProjectBudgetSerializer
from platform_site.api.representation import represent


def _budget(**changes) -> dict:
    alert = SimpleNamespace(
        id=7,
        kind="threshold",
        threshold=Decimal("0.8"),
        spent=Decimal("80.123456"),
        limit=Decimal("100"),
        message="80% of the allocation spent.",
        period_start=datetime(2026, 12, 1, tzinfo=UTC),
        created_at=datetime(2026, 12, 6, 13, 5, 7, 123456, tzinfo=UTC),
    )
    return {
        "project_id": "proj_1",
        "allocation_id": "alloc_1",
        "budget_id": "pool_1",
        "period_start": datetime(2026, 12, 1, tzinfo=UTC),
        "period_end": datetime(2027, 1, 1, tzinfo=UTC),
        "total_allocated": Decimal("100"),
        "current_spend": Decimal("80.12345678"),
        "remaining": Decimal("19.87654322"),
        "utilization_rate": Decimal("0.801234"),
        "cost_breakdown": {"compute": Decimal("70.5"), "storage": Decimal("9.62345678"), "snapshot": Decimal(0)},
        "not_included": ["data transfer", "taxes"],
        "hibernation_savings": Decimal("3.14159"),
        "idle_savings": {"total_usd": Decimal("1.5"), "actions": 2},
        "top_spending_instances": [
            {"name": "a", "workspace_id": "ws_a", "cost": Decimal("50.00005"), "percentage": Decimal("62.4")},
            {"name": "b", "workspace_id": "ws_b", "cost": Decimal("1"), "percentage": None},
        ],
        "budget_alerts": {"threshold_80_percent": True, "overspend_risk": "medium"},
        "alerts": [alert, alert],
        **changes,
    }


@pytest.mark.parametrize(
    "changes",
    [{}, {"allocation_id": None, "budget_id": None, "total_allocated": None, "remaining": None, "alerts": []}],
)
def test_it_writes_what_the_serializer_writes(changes, settings):
    for zone in ("UTC", "Europe/Berlin"):
        settings.TIME_ZONE = zone
        report = _budget(**changes)
        assert represent(ProjectBudgetSerializer, report) == ProjectBudgetSerializer(report).data


def test_it_writes_a_real_budget_as_the_serializer_does(db, project):
    report = reports.project_budget(project)
    assert represent(ProjectBudgetSerializer, report) == ProjectBudgetSerializer(report).data


def test_it_refuses_a_field_read_from_another_name():
    class Renamed(serializers.Serializer):
        total = serializers.IntegerField(source="amount")

    with pytest.raises(TypeError, match="total"):
        represent(Renamed, {"total": 1, "amount": 2})
