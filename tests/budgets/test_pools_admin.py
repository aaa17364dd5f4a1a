"""Budget pools and allocations in the Django admin go through the same services as the API: the money invariants,
the validation and the audit trail hold there too, and a refusal shows on the form."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from budgets.models import Allocation, BudgetAlert, BudgetPool, CostEntry, MemberCap, Reservation
from budgets.services import allocations as allocation_services
from budgets.services import pools as services
from tests.conftest import make_project, make_user

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 12, 31, tzinfo=UTC)


@pytest.fixture
def root():
    user = make_user("root@carrel.example")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


@pytest.fixture
def staff(root):
    client = Client()
    client.force_login(root)
    return client


@pytest.fixture
def pool(owner, org):
    return services.pool_create(
        actor=owner, organization=org, name="NSF Grant", total_amount=Decimal("1000"), start_date=START, end_date=END
    )


@pytest.fixture
def allocation(owner, pool, project):
    return allocation_services.allocation_create(actor=owner, pool=pool, project=project, amount=Decimal("600"))


def change_url(model, obj) -> str:
    return reverse(f"admin:budgets_{model._meta.model_name}_change", args=[quote(obj.pk)])


def split(moment: datetime) -> tuple[str, str]:
    from django.utils import timezone

    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S")


def pool_form(org, **overrides) -> dict:
    start_day, start_time = split(START)
    end_day, end_time = split(END)
    return {
        "organization": org.pk,
        "name": "NIH R01",
        "description": "",
        "total_amount": "2500.00",
        "period": "project",
        "start_date_0": start_day,
        "start_date_1": start_time,
        "end_date_0": end_day,
        "end_date_1": end_time,
        "alert_threshold": "0.8",
        **overrides,
    }


def errors_of(response) -> str:
    assert response.status_code == 200, "a refused form is shown again, not redirected"
    return response.content.decode()


def test_it_creates_a_pool_through_the_service(staff, org, root):
    response = staff.post(reverse("admin:budgets_budgetpool_add"), pool_form(org))
    assert response.status_code == 302, response.content.decode()[:2000]
    pool = BudgetPool.objects.get()
    assert (pool.name, pool.total_amount, pool.created_by) == ("NIH R01", Decimal("2500.00"), root)
    event = AuditEvent.objects.get(action="budget.create", target_id=pool.pk)
    assert event.actor == root


def test_it_validates_a_pool_as_the_api_does(staff, org):
    page = errors_of(staff.post(reverse("admin:budgets_budgetpool_add"), pool_form(org, alert_threshold="1.5")))
    assert "between 0 and 1" in page
    assert not BudgetPool.objects.exists()
    assert not AuditEvent.objects.filter(action="budget.create").exists()


def test_it_refuses_to_shrink_a_pool_below_its_allocations(staff, pool, allocation):
    end_day, end_time = split(END)
    form = {
        "name": pool.name,
        "description": "",
        "total_amount": "500.00",
        "end_date_0": end_day,
        "end_date_1": end_time,
        "alert_threshold": "0.8",
    }
    page = errors_of(staff.post(change_url(BudgetPool, pool), form))
    assert "more than 500.00" in page
    pool.refresh_from_db()
    assert pool.total_amount == Decimal("1000.00")
    assert not AuditEvent.objects.filter(action="budget.update").exists()
    form["total_amount"] = "700.00"
    assert staff.post(change_url(BudgetPool, pool), form).status_code == 302
    pool.refresh_from_db()
    assert pool.total_amount == Decimal("700.00")
    event = AuditEvent.objects.get(action="budget.update", target_id=pool.pk)
    assert event.metadata == {"total_amount": ["1000.00", "700.00"]}


def allocation_form(pool, project, **overrides) -> dict:
    return {
        "pool": pool.pk,
        "project": project.pk,
        "amount": "300.00",
        "alert_thresholds": "0.9, 0.5",
        "auto_hibernate_threshold": "",
        "prevent_launch_threshold": "1",
        "end_date_0": "",
        "end_date_1": "",
        **overrides,
    }


def test_it_allocates_through_the_service_and_refuses_oversubscription(staff, owner, org, pool, allocation):
    second = make_project(org, "Proteomics", owner)
    url = reverse("admin:budgets_allocation_add")
    page = errors_of(staff.post(url, allocation_form(pool, second, amount="400.01")))
    assert "would allocate 1000.01 of the pool&#x27;s 1000.00" in page
    assert Allocation.objects.count() == 1
    response = staff.post(url, allocation_form(pool, second, amount="400.00"))
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Allocation.objects.get(project=second)
    assert created.alert_thresholds == ["0.5", "0.9"]
    assert created.prevent_launch_threshold == Decimal("1")
    assert AuditEvent.objects.filter(action="allocation.create", target_id=created.pk).exists()


def test_it_changes_an_allocation_through_the_service(staff, pool, allocation):
    url = change_url(Allocation, allocation)
    form = {"amount": "1000.01", "alert_thresholds": "", "auto_hibernate_threshold": "", "end_date_0": ""}
    form |= {"prevent_launch_threshold": "", "end_date_1": ""}
    page = errors_of(staff.post(url, form))
    assert "would allocate 1000.01" in page
    page = errors_of(staff.post(url, form | {"amount": "10", "alert_thresholds": "0.5, 2"}))
    assert "between 0 and 1" in page
    assert staff.post(url, form | {"amount": "1000.00"}).status_code == 302
    allocation.refresh_from_db()
    assert allocation.amount == Decimal("1000.00")
    assert AuditEvent.objects.get(action="allocation.update").metadata["amount"] == ["600.00", "1000.00"]


def test_it_deletes_through_the_service_which_may_refuse(staff, pool, allocation):
    changelist = reverse("admin:budgets_budgetpool_changelist")
    response = staff.post(changelist, {"action": "delete_selected_pools", ACTION_CHECKBOX_NAME: [pool.pk]}, follow=True)
    assert "not deleted" in response.content.decode()
    assert BudgetPool.objects.exists()
    staff.post(
        reverse("admin:budgets_allocation_changelist"),
        {"action": "delete_selected_allocations", ACTION_CHECKBOX_NAME: [allocation.pk]},
    )
    assert not Allocation.objects.exists()
    staff.post(changelist, {"action": "delete_selected_pools", ACTION_CHECKBOX_NAME: [pool.pk]})
    assert not BudgetPool.objects.exists()
    assert {e.action for e in AuditEvent.objects.filter(action__endswith=".delete")} == {
        "allocation.delete",
        "budget.delete",
    }


def test_it_reallocates_with_a_reason(staff, owner, org, pool, allocation):
    other = allocation_services.allocation_create(
        actor=owner, pool=pool, project=make_project(org, "Proteomics", owner), amount=Decimal("100")
    )
    url = reverse("admin:budgets_allocation_changelist")
    page = staff.post(url, {"action": "reallocate", ACTION_CHECKBOX_NAME: [allocation.pk]})
    assert page.status_code == 200 and "Move money" in page.content.decode()
    form = {"action": "reallocate", ACTION_CHECKBOX_NAME: [allocation.pk], "post": "yes", "to_allocation": other.pk}
    refused = staff.post(url, form | {"amount": "50", "reason": ""})
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    assert staff.post(url, form | {"amount": "50", "reason": "scale-up"}).status_code == 302
    assert Allocation.objects.get(pk=other.pk).amount == Decimal("150")
    event = AuditEvent.objects.get(action="allocation.reallocate")
    assert event.metadata["reason"] == "scale-up"


def test_the_ledger_holds_alerts_and_caps_are_read_only(rf, root):
    request = rf.get("/")
    request.user = root
    for model in [CostEntry, Reservation, BudgetAlert, MemberCap]:
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_change_permission(request), model
        assert not model_admin.has_delete_permission(request), model
    for model in [BudgetPool, Allocation]:
        assert not admin.site._registry[model].has_delete_permission(request), "deleting goes through an action"


def test_the_pages_render(staff, pool, allocation):
    for model, obj in [(BudgetPool, pool), (Allocation, allocation)]:
        assert staff.get(change_url(model, obj)).status_code == 200
        assert staff.get(reverse(f"admin:budgets_{model._meta.model_name}_add")).status_code == 200
