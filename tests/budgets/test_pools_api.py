"""Budget pools and allocations over the API: who may see and change what, validation, the money invariants
(under concurrent requests too), the figures read from the ledger, and a constant number of queries."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from accounts.models import Membership, OrgRole
from audit.models import AuditEvent
from budgets.models import Allocation, BudgetAlert, BudgetPool, CostEntry, MemberCap
from budgets.services import allocations as allocation_services
from budgets.services import pools as services
from platform_site.errors import CarrelError
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_project, make_user
from tests.support import record_cost
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def org_admin(org):
    user = make_user("admin@lab-a.example")
    add_org_member(org, user, OrgRole.ADMIN)
    return user


@pytest.fixture
def pi(org):
    """A plain organization member who owns a project (funded by the pool): sees, cannot change."""
    user = make_user("pi@lab-a.example")
    add_org_member(org, user)
    return user


@pytest.fixture
def pi_project(org, pi):
    return make_project(org, "Proteomics", pi)


@pytest.fixture
def member(org, project, pi_project):
    user = make_user("student@lab-a.example")
    add_org_member(org, user)
    ProjectMember.objects.create(project=project, user=user, role=ProjectRole.MEMBER)
    ProjectMember.objects.create(project=pi_project, user=user, role=ProjectRole.MEMBER)
    return user


@pytest.fixture
def pool(owner, org):
    return services.pool_create(
        actor=owner,
        organization=org,
        name="NSF Grant",
        total_amount=Decimal("1000"),
        start_date=START,
        end_date=END,
        alert_threshold=Decimal("0.8"),
    )


@pytest.fixture
def allocation(owner, pool, project):
    return allocation_services.allocation_create(actor=owner, pool=pool, project=project, amount=Decimal("400"))


@pytest.fixture
def pi_allocation(owner, pool, pi_project):
    return allocation_services.allocation_create(
        actor=owner, pool=pool, project=pi_project, amount=Decimal("300"), alert_thresholds=[Decimal("0.5")]
    )


@pytest.fixture
def clients(owner, org_admin, pi, member, outsider):
    return {name: bearer_client(user) for name, user in locals().items()}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def pool_body(**overrides):
    return {
        "name": "NIH R01",
        "description": "5-year grant",
        "total_amount": 2500,
        "period": "project",
        "start_date": "2026-01-01T00:00:00Z",
        "end_date": "2029-12-31T23:59:59Z",
        "alert_threshold": 0.85,
        **overrides,
    }


def spend(project, amount: str, *, at: datetime, member=None, allocation=None) -> CostEntry:
    """One closed ledger row of `amount` for `project`, starting at `at` (written directly, as the ledger would)."""
    workspace = Workspace.objects.filter(project=project).first() or Workspace.objects.create(
        organization=project.organization,
        project=project,
        owner=member or project.created_by,
        name=f"ws-{project.name.lower().replace(' ', '-')}",
    )
    return record_cost(
        organization=project.organization,
        workspace=workspace,
        project=project,
        allocation=allocation,
        member=member,
        kind=CostEntry.Kind.COMPUTE,
        item=f"t3.medium {at.isoformat()}",
        start=at,
        end=at + timedelta(hours=1),
        day=at.date(),
        quantity=Decimal(3600),
        unit="second",
        rate=Decimal(amount),
        amount=Decimal(amount),
    )


# --- Pools: create --------------------------------------------------------------------------------------------


def test_it_creates_a_pool_for_an_org_owner_or_admin(clients, org):
    response = clients["owner"].post("/api/v1/budgets", pool_body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("budget_")
    assert body["organization"] == org.pk
    assert body["total_amount"] == 2500
    assert body["allocated_amount"] == 0
    assert body["spent_amount"] == 0
    assert body["remaining_amount"] == 2500
    assert body["unallocated_amount"] == 2500
    assert body["utilization_rate"] == 0
    assert body["alert_threshold"] == 0.85
    assert body["period"] == "project"
    assert body["status"] == "ok"
    assert body["created_by"] == "owner@lab-a.example"
    assert at(body["start_date"]) == START
    event = AuditEvent.objects.get(action="budget.create", target_id=body["id"])
    assert event.metadata["total_amount"] == "2500.00"
    assert clients["org_admin"].post("/api/v1/budgets", pool_body(name="Other"), format="json").status_code == 201


def test_it_sends_money_as_exact_numbers(clients):
    response = clients["owner"].post("/api/v1/budgets", pool_body(total_amount="1234.56"), format="json")
    assert response.status_code == 201
    assert b'"total_amount":1234.5600' in response.content


@pytest.mark.parametrize("who", ["pi", "member"])
def test_it_refuses_pool_creation_to_plain_members(clients, who, org):
    assert_error(clients[who].post("/api/v1/budgets", pool_body(organization=org.pk), format="json"), 403)
    assert not BudgetPool.objects.exists()


def test_it_answers_404_for_another_organization(clients, org):
    assert_error(
        clients["outsider"].post("/api/v1/budgets", pool_body(organization=org.pk), format="json"),
        404,
        "ORGANIZATION_NOT_FOUND",
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"total_amount": -1}, "total_amount"),
        ({"alert_threshold": 1.5}, "alert_threshold"),
        ({"alert_threshold": -0.1}, "alert_threshold"),
        ({"end_date": "2025-12-31T00:00:00Z"}, "end_date"),
        ({"end_date": "2026-01-01T00:00:00Z"}, "end_date"),
        ({"period": "yearly"}, "period"),
        ({"total_amount": "12.345"}, "total_amount"),
        ({"total_amount": True}, "total_amount"),
        ({"name": " "}, "name"),
    ],
)
def test_it_validates_pools(clients, overrides, field):
    error = assert_error(clients["owner"].post("/api/v1/budgets", pool_body(**overrides), format="json"), 400)
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["fields"], error
    assert not BudgetPool.objects.exists()


def test_it_says_why_a_threshold_is_refused(clients):
    error = assert_error(clients["owner"].post("/api/v1/budgets", pool_body(alert_threshold=80), format="json"), 400)
    assert error["fields"]["alert_threshold"] == ["A fraction between 0 and 1 (0.8 = 80%)."]


def test_it_wants_pool_names_unique_per_organization(clients, pool):
    assert_error(clients["owner"].post("/api/v1/budgets", pool_body(name=pool.name), format="json"), 409, "NAME_TAKEN")


# --- Pools: read ----------------------------------------------------------------------------------------------


def test_it_lists_pools_by_who_may_see_them(clients, pool, allocation, pi_allocation, outsider):
    other = services.pool_create(
        actor=outsider,
        organization=outsider.memberships.get().organization,
        name="Their grant",
        total_amount=Decimal("5"),
        start_date=START,
        end_date=END,
    )
    listed = {name: clients[name].get("/api/v1/budgets").json() for name in clients}
    assert [p["id"] for p in listed["owner"]["budgets"]] == [pool.pk]
    assert listed["owner"]["count"] == 1
    assert [p["id"] for p in listed["org_admin"]["budgets"]] == [pool.pk]
    assert [p["id"] for p in listed["pi"]["budgets"]] == [pool.pk]  # the pool funding their project
    assert listed["member"] == {"budgets": [], "count": 0}
    assert [p["id"] for p in listed["outsider"]["budgets"]] == [other.pk]
    assert listed["owner"]["budgets"][0]["allocated_amount"] == 700
    assert listed["pi"]["budgets"][0]["allocated_amount"] == 700  # pool-level figures are the pool's


def test_it_shows_a_pool_to_whoever_may_see_it(clients, pool, pi_allocation):
    for name in ["owner", "org_admin", "pi"]:
        assert clients[name].get(f"/api/v1/budgets/{pool.pk}").status_code == 200, name
    for name in ["member", "outsider"]:
        assert_error(clients[name].get(f"/api/v1/budgets/{pool.pk}"), 404, "BUDGET_NOT_FOUND")
    assert_error(clients["owner"].get("/api/v1/budgets/budget_nope"), 404, "BUDGET_NOT_FOUND")


# --- Pools: update and delete ---------------------------------------------------------------------------------


def test_it_updates_a_pool(clients, pool, allocation):
    response = clients["org_admin"].put(
        f"/api/v1/budgets/{pool.pk}",
        {"total_amount": 1750, "alert_threshold": 0.9, "description": "Supplement", "end_date": "2027-06-30T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["total_amount"], body["alert_threshold"], body["description"]) == (1750, 0.9, "Supplement")
    assert at(body["end_date"]) == datetime(2027, 6, 30, tzinfo=UTC)
    assert body["unallocated_amount"] == 1350
    event = AuditEvent.objects.get(action="budget.update", target_id=pool.pk)
    assert event.metadata["total_amount"] == ["1000.00", "1750.00"]


def test_it_keeps_the_total_at_least_what_is_allocated(clients, pool, allocation, pi_allocation):
    error = assert_error(
        clients["owner"].put(f"/api/v1/budgets/{pool.pk}", {"total_amount": 699.99}, format="json"),
        409,
        "ALLOCATION_EXCEEDS_POOL",
    )
    assert error["allocated_amount"] == 700
    assert clients["owner"].put(f"/api/v1/budgets/{pool.pk}", {"total_amount": 700}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [({"alert_threshold": 2}, "alert_threshold"), ({"end_date": "2025-01-01T00:00:00Z"}, "end_date")],
)
def test_it_validates_pool_updates(clients, pool, body, field):
    error = assert_error(clients["owner"].put(f"/api/v1/budgets/{pool.pk}", body, format="json"), 400)
    assert field in error["fields"]


def test_it_keeps_allocations_end_dates_within_the_pool(clients, owner, pool, allocation):
    allocation_services.allocation_update(
        actor=owner, allocation=allocation, end_date=datetime(2026, 10, 1, tzinfo=UTC)
    )
    url = f"/api/v1/budgets/{pool.pk}"
    error = assert_error(clients["owner"].put(url, {"end_date": "2026-09-01T00:00:00Z"}, format="json"), 400)
    assert "end_date" in error["fields"]
    assert clients["owner"].put(url, {"end_date": "2026-10-01T00:00:00Z"}, format="json").status_code == 200


def test_it_lets_project_owners_look_but_not_touch(clients, pool, pi_allocation):
    assert_error(clients["pi"].put(f"/api/v1/budgets/{pool.pk}", {"name": "Mine"}, format="json"), 403)
    assert_error(clients["pi"].delete(f"/api/v1/budgets/{pool.pk}"), 403)
    assert_error(clients["member"].put(f"/api/v1/budgets/{pool.pk}", {"name": "Mine"}, format="json"), 404)
    assert_error(clients["outsider"].delete(f"/api/v1/budgets/{pool.pk}"), 404)
    assert BudgetPool.objects.get().name == "NSF Grant"


def test_it_deletes_a_pool_only_once_its_allocations_are_gone(clients, pool, allocation):
    assert_error(clients["owner"].delete(f"/api/v1/budgets/{pool.pk}"), 409, "BUDGET_HAS_ALLOCATIONS")
    assert clients["owner"].delete(f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}").status_code == 204
    assert clients["owner"].delete(f"/api/v1/budgets/{pool.pk}").status_code == 204
    assert not BudgetPool.objects.exists()
    assert AuditEvent.objects.filter(action="budget.delete", target_id=pool.pk).exists()


# --- Allocations ----------------------------------------------------------------------------------------------


def allocation_body(project, **overrides):
    return {
        "project_id": project.pk,
        "allocated_amount": 250,
        "alert_thresholds": [0.9, 0.5, 0.75],
        "auto_hibernate_threshold": 0.95,
        "prevent_launch_threshold": 1,
        **overrides,
    }


def test_it_funds_a_project(clients, pool, project):
    response = clients["owner"].post(f"/api/v1/budgets/{pool.pk}/allocations", allocation_body(project), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("alloc_")
    assert (body["budget_id"], body["project_id"], body["project_name"]) == (pool.pk, project.pk, "Genomics")
    assert body["allocated_amount"] == 250
    assert body["alert_thresholds"] == [0.5, 0.75, 0.9]
    assert body["alert_threshold"] == 0.5
    assert (body["auto_hibernate_threshold"], body["prevent_launch_threshold"]) == (0.95, 1)
    assert body["allocated_by"] == "owner@lab-a.example"
    assert body["spent_amount"] == 0 and body["remaining"] == 250 and body["status"] == "ok"
    allocation = Allocation.objects.get()
    assert allocation.alert_thresholds == ["0.5", "0.75", "0.9"]
    assert AuditEvent.objects.filter(action="allocation.create", target_id=allocation.pk).exists()


def test_it_funds_a_project_once(clients, pool, allocation, project):
    error = assert_error(
        clients["owner"].post(f"/api/v1/budgets/{pool.pk}/allocations", allocation_body(project), format="json"),
        409,
        "PROJECT_ALREADY_FUNDED",
    )
    assert error["allocation_id"] == allocation.pk


def test_it_never_allocates_more_than_the_pool(clients, pool, allocation, pi_project):
    error = assert_error(
        clients["owner"].post(
            f"/api/v1/budgets/{pool.pk}/allocations",
            allocation_body(pi_project, allocated_amount=600.01),
            format="json",
        ),
        409,
        "ALLOCATION_EXCEEDS_POOL",
    )
    assert error["unallocated_amount"] == 600
    assert Allocation.objects.count() == 1
    response = clients["owner"].post(
        f"/api/v1/budgets/{pool.pk}/allocations", allocation_body(pi_project, allocated_amount=600), format="json"
    )
    assert response.status_code == 201


def test_it_funds_only_projects_of_the_pools_organization(clients, pool, outsider):
    theirs = outsider.memberships.get().organization.projects.get()
    for project_id in [theirs.pk, "proj_nope"]:
        assert_error(
            clients["owner"].post(
                f"/api/v1/budgets/{pool.pk}/allocations",
                {"project_id": project_id, "allocated_amount": 1},
                format="json",
            ),
            404,
            "PROJECT_NOT_FOUND",
        )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"allocated_amount": -5}, "allocated_amount"),
        ({"alert_thresholds": [0.5, 1.2]}, "alert_thresholds"),
        ({"auto_hibernate_threshold": 1.01}, "auto_hibernate_threshold"),
        ({"prevent_launch_threshold": -0.5}, "prevent_launch_threshold"),
        ({"end_date": "2027-06-01T00:00:00Z"}, "end_date"),  # after the pool's end
        ({"alert_thresholds": "0.5"}, "alert_thresholds"),
    ],
)
def test_it_validates_allocations(clients, pool, project, overrides, field):
    error = assert_error(
        clients["owner"].post(
            f"/api/v1/budgets/{pool.pk}/allocations", allocation_body(project, **overrides), format="json"
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert field in {key.split(".")[0] for key in error["fields"]}, error
    assert not Allocation.objects.exists()


def test_it_refuses_allocations_to_everyone_but_org_owners_and_admins(clients, pool, pi_allocation, project):
    body = allocation_body(project)
    assert_error(clients["pi"].post(f"/api/v1/budgets/{pool.pk}/allocations", body, format="json"), 403)
    assert_error(clients["member"].post(f"/api/v1/budgets/{pool.pk}/allocations", body, format="json"), 404)
    assert_error(clients["outsider"].post(f"/api/v1/budgets/{pool.pk}/allocations", body, format="json"), 404)
    assert clients["org_admin"].post(f"/api/v1/budgets/{pool.pk}/allocations", body, format="json").status_code == 201


def test_it_lists_the_allocations_each_caller_may_see(clients, pool, allocation, pi_allocation):
    url = f"/api/v1/budgets/{pool.pk}/allocations"
    owner_view = clients["owner"].get(url).json()
    assert owner_view["count"] == 2
    assert {a["id"] for a in owner_view["allocations"]} == {allocation.pk, pi_allocation.pk}
    pi_view = clients["pi"].get(url).json()
    assert [a["id"] for a in pi_view["allocations"]] == [pi_allocation.pk]
    assert_error(clients["member"].get(url), 404, "BUDGET_NOT_FOUND")
    assert_error(clients["outsider"].get(url), 404, "BUDGET_NOT_FOUND")


def test_it_shows_a_project_owner_their_own_allocation_only(clients, pool, allocation, pi_allocation):
    base = f"/api/v1/budgets/{pool.pk}/allocations"
    assert clients["pi"].get(f"{base}/{pi_allocation.pk}").json()["project_name"] == "Proteomics"
    assert_error(clients["pi"].get(f"{base}/{allocation.pk}"), 404, "ALLOCATION_NOT_FOUND")
    assert_error(clients["pi"].put(f"{base}/{pi_allocation.pk}", {"allocated_amount": 999}, format="json"), 403)
    assert_error(clients["pi"].delete(f"{base}/{pi_allocation.pk}"), 403)
    assert_error(clients["member"].get(f"{base}/{pi_allocation.pk}"), 404, "BUDGET_NOT_FOUND")
    assert_error(clients["owner"].get(f"{base}/alloc_nope"), 404, "ALLOCATION_NOT_FOUND")
    assert Allocation.objects.get(pk=pi_allocation.pk).amount == 300


def test_it_finds_an_allocation_only_under_its_own_pool(clients, owner, org, pool, allocation):
    other = services.pool_create(
        actor=owner, organization=org, name="Other", total_amount=Decimal(1), start_date=START, end_date=END
    )
    assert_error(clients["owner"].get(f"/api/v1/budgets/{other.pk}/allocations/{allocation.pk}"), 404)


def test_it_updates_an_allocation_within_the_pool(clients, pool, allocation, pi_allocation):
    url = f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}"
    response = clients["org_admin"].put(
        url, {"allocated_amount": 700, "alert_thresholds": [0.8], "end_date": "2026-09-30T00:00:00Z"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["allocated_amount"] == 700
    assert at(response.json()["end_date"]) == datetime(2026, 9, 30, tzinfo=UTC)
    error = assert_error(clients["owner"].put(url, {"allocated_amount": 700.01}, format="json"), 409)
    assert error["code"] == "ALLOCATION_EXCEEDS_POOL"
    response = clients["owner"].put(url, {"auto_hibernate_threshold": None, "end_date": None}, format="json")
    assert response.json()["end_date"] is None
    updates = AuditEvent.objects.filter(action="allocation.update", target_id=allocation.pk)
    assert sorted(event.metadata.get("amount", [""])[0] for event in updates) == ["", "400.00"]
    error = assert_error(clients["owner"].put(url, {"prevent_launch_threshold": 3}, format="json"), 400)
    assert "prevent_launch_threshold" in error["fields"]


def test_it_deletes_an_allocation_and_keeps_the_ledger(clients, pool, allocation, project):
    entry = spend(project, "12.5", at=NOW - timedelta(days=1), allocation=allocation)
    assert clients["owner"].delete(f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}").status_code == 204
    entry.refresh_from_db()
    assert entry.allocation_id is None and entry.amount == Decimal("12.5")
    event = AuditEvent.objects.get(action="allocation.delete", target_id=allocation.pk)
    assert event.metadata == {"budget_id": pool.pk, "project_id": project.pk, "amount": "400.00"}


# --- Reallocation ---------------------------------------------------------------------------------------------


def test_it_moves_money_between_allocations_with_a_reason(
    clients, pool, allocation, pi_allocation, project, pi_project
):
    response = clients["owner"].post(
        f"/api/v1/budgets/{pool.pk}/reallocate",
        {"from_project": project.pk, "to_project": pi_project.pk, "amount": 150, "reason": "Proteomics scale-up"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["from_allocation"]["allocated_amount"] == 250
    assert body["to_allocation"]["allocated_amount"] == 450
    assert body["reason"] == "Proteomics scale-up"
    event = AuditEvent.objects.get(action="allocation.reallocate")
    assert event.metadata["reason"] == "Proteomics scale-up"
    assert event.metadata["amount"] == "150.00"
    # By allocation id too.
    response = clients["org_admin"].post(
        f"/api/v1/budgets/{pool.pk}/reallocate",
        {"from_allocation": pi_allocation.pk, "to_allocation": allocation.pk, "amount": 50, "reason": "back"},
        format="json",
    )
    assert response.status_code == 200
    assert Allocation.objects.get(pk=allocation.pk).amount == 300


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_it_wants_a_reason_to_reallocate(clients, pool, allocation, pi_allocation, reason):
    body = {"from_allocation": allocation.pk, "to_allocation": pi_allocation.pk, "amount": 10}
    if reason is not None:
        body["reason"] = reason
    error = assert_error(clients["owner"].post(f"/api/v1/budgets/{pool.pk}/reallocate", body, format="json"), 400)
    assert error["code"] == "VALIDATION_ERROR" and "reason" in error["fields"]
    assert Allocation.objects.get(pk=allocation.pk).amount == 400


def test_it_never_takes_a_source_below_what_it_spent(clients, pool, allocation, pi_allocation, project):
    spend(project, "350", at=NOW - timedelta(days=3))
    body = {"from_allocation": allocation.pk, "to_allocation": pi_allocation.pk, "amount": 50.01, "reason": "x"}
    error = assert_error(
        clients["owner"].post(f"/api/v1/budgets/{pool.pk}/reallocate", body, format="json"),
        409,
        "ALLOCATION_BELOW_SPENT",
    )
    assert (error["spent_amount"], error["movable_amount"]) == (350, 50)
    body["amount"] = 50
    assert clients["owner"].post(f"/api/v1/budgets/{pool.pk}/reallocate", body, format="json").status_code == 200


def test_it_refuses_odd_reallocations(clients, owner, org, pool, allocation, pi_allocation):
    url = f"/api/v1/budgets/{pool.pk}/reallocate"
    same = {"from_allocation": allocation.pk, "to_allocation": allocation.pk, "amount": 1, "reason": "x"}
    assert_error(clients["owner"].post(url, same, format="json"), 400)
    zero = {"from_allocation": allocation.pk, "to_allocation": pi_allocation.pk, "amount": 0, "reason": "x"}
    assert "amount" in assert_error(clients["owner"].post(url, zero, format="json"), 400)["fields"]
    other = services.pool_create(
        actor=owner, organization=org, name="Other", total_amount=Decimal(1), start_date=START, end_date=END
    )
    elsewhere = {"from_allocation": allocation.pk, "to_allocation": pi_allocation.pk, "amount": 1, "reason": "x"}
    assert_error(
        clients["owner"].post(f"/api/v1/budgets/{other.pk}/reallocate", elsewhere, format="json"),
        404,
        "ALLOCATION_NOT_FOUND",
    )
    body = {"from_allocation": allocation.pk, "to_allocation": pi_allocation.pk, "amount": 1, "reason": "mine"}
    assert_error(clients["pi"].post(url, body, format="json"), 403)
    assert_error(clients["member"].post(url, body, format="json"), 404)
    assert_error(clients["outsider"].post(url, body, format="json"), 404)
    assert not AuditEvent.objects.filter(action="allocation.reallocate").exists()


# --- Member caps ----------------------------------------------------------------------------------------------


def test_it_sets_and_shows_member_caps(clients, pool, allocation, project, member, owner):
    url = f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}/caps"
    response = clients["owner"].put(url, {"caps": {member.email: 50, owner.username: "75.50"}}, format="json")
    assert response.status_code == 200, response.content
    spend(project, "20.25", at=NOW - timedelta(days=2), member=member)
    body = clients["owner"].get(url).json()
    assert body["count"] == 2 and body["allocation_id"] == allocation.pk
    assert {(c["email"], c["amount"], c["spent_amount"]) for c in body["caps"]} == {
        (member.email, 50, 20.25),
        (owner.email, 75.5, 0),
    }
    event = AuditEvent.objects.get(action="allocation.caps")
    assert event.metadata["after"] == {member.email: "50.00", owner.email: "75.50"}
    # PUT replaces the set.
    clients["org_admin"].put(url, {"caps": {member.username: 10}}, format="json")
    assert list(MemberCap.objects.values_list("user__email", "amount")) == [(member.email, Decimal("10.00"))]


def test_it_caps_only_current_members_of_the_project(clients, pool, allocation, pi, org_admin):
    url = f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}/caps"
    error = assert_error(clients["owner"].put(url, {"caps": {pi.email: 5, "nobody@x.example": 5}}, format="json"), 400)
    assert set(error["fields"]) == {f"caps.{pi.email}", "caps.nobody@x.example"}
    error = assert_error(clients["owner"].put(url, {"caps": {"owner@lab-a.example": 401}}, format="json"), 400)
    assert "caps.owner@lab-a.example" in error["fields"]
    error = assert_error(clients["owner"].put(url, {"caps": {"owner@lab-a.example": -1}}, format="json"), 400)
    assert not MemberCap.objects.exists()


def test_it_shows_caps_to_the_project_owner_but_lets_only_org_admins_set_them(clients, pool, pi_allocation, pi):
    url = f"/api/v1/budgets/{pool.pk}/allocations/{pi_allocation.pk}/caps"
    assert clients["pi"].get(url).json() == {"allocation_id": pi_allocation.pk, "caps": [], "count": 0}
    assert_error(clients["pi"].put(url, {"caps": {pi.email: 1}}, format="json"), 403)
    assert_error(clients["member"].get(url), 404)
    assert_error(clients["outsider"].put(url, {"caps": {}}, format="json"), 404)


# --- Figures from the ledger ----------------------------------------------------------------------------------


def test_the_summary_adds_up_the_ledger(clients, pool, allocation, pi_allocation, project, pi_project, owner):
    spend(project, "100.12345678", at=NOW - timedelta(days=10))
    spend(project, "230", at=NOW - timedelta(days=40))
    spend(project, "999", at=START - timedelta(days=1))  # before the pool began: not its money
    spend(pi_project, "160", at=NOW - timedelta(hours=5))
    # A workspace running since the ledger was last closed an hour ago, at $2/hour: $2 more, open.
    Workspace.objects.filter(project=pi_project).update(
        state="running", ledger_through=NOW - timedelta(hours=1), hourly_rate=Decimal(2), run_billed_seconds=3600
    )
    BudgetAlert.objects.create(
        pool=pool,
        allocation=pi_allocation,
        project=pi_project,
        kind=BudgetAlert.Kind.THRESHOLD,
        threshold=Decimal("0.5"),
        period_start=START,
        spent=Decimal("160"),
        limit=Decimal("300"),
        message="Proteomics passed 50% of its allocation.",
    )
    body = clients["owner"].get(f"/api/v1/budgets/{pool.pk}/summary").json()
    assert body["budget"]["total_amount"] == 1000
    assert body["budget"]["allocated_amount"] == 700
    assert body["budget"]["spent_amount"] == 492.1235  # 330.12345678 + 160 + 2, to 4 places
    assert body["budget"]["remaining_amount"] == 507.8765
    assert body["budget"]["utilization_rate"] == 0.4921
    assert body["status"] == "ok"
    by_project = {a["project_id"]: a for a in body["allocations"]}
    genomics, proteomics = by_project[project.pk], by_project[pi_project.pk]
    assert (genomics["spent_amount"], genomics["remaining"], genomics["utilization_rate"]) == (
        330.1235,
        69.8765,
        0.8253,
    )
    assert genomics["status"] == "warning"  # past the pool's 0.8 (the allocation sets no threshold)
    assert (proteomics["spent_amount"], proteomics["remaining"], proteomics["status"]) == (162, 138, "warning")
    assert body["top_spending_projects"] == [
        {"project_id": project.pk, "project_name": "Genomics", "spent": 330.1235, "percentage": 67.08},
        {"project_id": pi_project.pk, "project_name": "Proteomics", "spent": 162, "percentage": 32.92},
    ]
    assert [alert["message"] for alert in body["alerts"]] == ["Proteomics passed 50% of its allocation."]
    # The project owner sees the pool's figures but only their own project's allocation, spend and alerts.
    mine = clients["pi"].get(f"/api/v1/budgets/{pool.pk}/summary").json()
    assert mine["budget"]["spent_amount"] == 492.1235
    assert [a["project_id"] for a in mine["allocations"]] == [pi_project.pk]
    assert [p["project_id"] for p in mine["top_spending_projects"]] == [pi_project.pk]
    assert len(mine["alerts"]) == 1
    assert_error(clients["member"].get(f"/api/v1/budgets/{pool.pk}/summary"), 404)
    assert_error(clients["outsider"].get(f"/api/v1/budgets/{pool.pk}/summary"), 404)


def test_the_status_says_exceeded_past_the_total(clients, pool, allocation, project):
    spend(project, "1000", at=NOW - timedelta(days=1))
    body = clients["owner"].get(f"/api/v1/budgets/{pool.pk}/summary").json()
    assert body["status"] == "exceeded"
    assert body["budget"]["remaining_amount"] == 0
    assert body["allocations"][0]["status"] == "exceeded"
    assert body["allocations"][0]["remaining"] == -600


def test_a_monthly_pool_counts_this_month_in_the_organizations_time_zone(clients, owner, org, project, clock):
    org.time_zone = "America/New_York"
    org.save()
    pool = services.pool_create(
        actor=owner,
        organization=org,
        name="Monthly",
        total_amount=Decimal("100"),
        period="monthly",
        start_date=START,
        end_date=END,
    )
    allocation = allocation_services.allocation_create(actor=owner, pool=pool, project=project, amount=Decimal("60"))
    # 1 June 03:00 UTC is still 31 May in New York: last month's money.
    spend(project, "7", at=datetime(2026, 6, 1, 3, 0, tzinfo=UTC))
    spend(project, "11", at=datetime(2026, 6, 1, 4, 0, tzinfo=UTC))  # midnight in New York: this month
    spend(project, "13", at=datetime(2026, 6, 14, tzinfo=UTC))
    body = clients["owner"].get(f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}").json()
    assert body["spent_amount"] == 24
    assert at(body["period_start"]) == datetime(2026, 6, 1, 4, tzinfo=UTC)
    assert at(body["period_end"]) == datetime(2026, 7, 1, 4, tzinfo=UTC)
    clock.move_to(datetime(2026, 7, 2, tzinfo=UTC))
    assert clients["owner"].get(f"/api/v1/budgets/{pool.pk}").json()["spent_amount"] == 0


# --- Queries --------------------------------------------------------------------------------------------------


def _many_allocations(owner, org, pool, count: int):
    for number in range(count):
        project = make_project(org, f"Project {number}", owner)
        allocation_services.allocation_create(actor=owner, pool=pool, project=project, amount=Decimal(10))
        spend(project, "1.5", at=NOW - timedelta(days=1))
        Workspace.objects.filter(project=project).update(
            state="running", ledger_through=NOW - timedelta(hours=1), hourly_rate=Decimal(1)
        )


@pytest.mark.parametrize("count", [1, 20])
def test_every_read_costs_a_constant_number_of_queries(owner, org, pool, count, django_assert_max_num_queries):
    _many_allocations(owner, org, pool, count)
    client = bearer_client(owner)
    allocation = Allocation.objects.first()
    allocation_services.member_caps_set(actor=owner, allocation=allocation, caps={owner.email: Decimal(5)})
    reads = {
        "/api/v1/budgets": 8,
        f"/api/v1/budgets/{pool.pk}": 8,
        f"/api/v1/budgets/{pool.pk}/summary": 11,
        f"/api/v1/budgets/{pool.pk}/allocations": 9,
        f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}": 9,
        f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}/caps": 10,
    }
    for url, most in reads.items():
        with django_assert_max_num_queries(most):
            response = client.get(url)
        assert response.status_code == 200, url
    summary = client.get(f"/api/v1/budgets/{pool.pk}/summary").json()
    assert summary["budget"]["spent_amount"] == float(Decimal("2.5") * count)
    assert len(summary["allocations"]) == count


def test_twenty_allocations_cost_no_more_queries_than_one(owner, org, pool):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    client = bearer_client(owner)
    _many_allocations(owner, org, pool, 1)
    allocation = Allocation.objects.get()
    allocation_services.member_caps_set(actor=owner, allocation=allocation, caps={owner.email: Decimal(1)})
    client.get("/api/v1/budgets")  # the token's first use of the minute writes last_used_at: not the reads' cost

    def counts() -> dict[str, int]:
        found = {}
        for url in [
            "/api/v1/budgets",
            f"/api/v1/budgets/{pool.pk}",
            f"/api/v1/budgets/{pool.pk}/summary",
            f"/api/v1/budgets/{pool.pk}/allocations",
            f"/api/v1/budgets/{pool.pk}/allocations/{allocation.pk}/caps",
        ]:
            with CaptureQueriesContext(db) as queries:
                assert client.get(url).status_code == 200
            found[url] = len(queries)
        return found

    one = counts()
    for number in range(19):
        project = make_project(org, f"More {number}", owner)
        allocation_services.allocation_create(actor=owner, pool=pool, project=project, amount=Decimal(1))
        spend(project, "1", at=NOW - timedelta(days=1))
    assert counts() == one


# --- Concurrency ----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_allocations_never_oversubscribe_the_pool(owner, org):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (CI runs it); SQLite serialises them")
    pool = services.pool_create(
        actor=owner, organization=org, name="Race", total_amount=Decimal("1000"), start_date=START, end_date=END
    )
    projects = [make_project(org, f"Racer {number}", owner) for number in range(12)]
    barrier = threading.Barrier(len(projects))
    outcomes: list[str] = []
    lock = threading.Lock()

    def allocate(project):
        from django.db import connections

        try:
            barrier.wait()
            allocation_services.allocation_create(actor=owner, pool=pool, project=project, amount=Decimal("300"))
            result = "funded"
        except CarrelError as error:
            result = error.code
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=allocate, args=(project,)) for project in projects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["ALLOCATION_EXCEEDS_POOL"] * 9 + ["funded"] * 3
    assert sum(Allocation.objects.values_list("amount", flat=True)) == Decimal("900")


@pytest.mark.django_db(transaction=True)
def test_concurrent_raises_and_reallocations_keep_the_invariant(owner, org):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (CI runs it); SQLite serialises them")
    pool = services.pool_create(
        actor=owner, organization=org, name="Race", total_amount=Decimal("1000"), start_date=START, end_date=END
    )
    allocations = [
        allocation_services.allocation_create(
            actor=owner, pool=pool, project=make_project(org, f"Racer {n}", owner), amount=Decimal(100)
        )
        for n in range(8)
    ]
    barrier = threading.Barrier(len(allocations))
    outcomes: list[str] = []
    lock = threading.Lock()

    def raise_to_300(allocation):
        from django.db import connections

        try:
            barrier.wait()
            allocation_services.allocation_update(actor=owner, allocation=allocation, amount=Decimal(300))
            result = "raised"
        except CarrelError as error:
            result = error.code
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=raise_to_300, args=(allocation,)) for allocation in allocations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # 800 allocated; each raise adds 200: only one fits in 1000.
    assert sorted(outcomes) == ["ALLOCATION_EXCEEDS_POOL"] * 7 + ["raised"]
    assert sum(Allocation.objects.values_list("amount", flat=True)) == Decimal("1000")


def test_membership_changes_decide_who_may_manage(clients, pool, pi, org):
    assert_error(clients["pi"].put(f"/api/v1/budgets/{pool.pk}", {"name": "x"}, format="json"), 404)
    Membership.objects.filter(user=pi, organization=org).update(role=OrgRole.ADMIN)
    assert clients["pi"].put(f"/api/v1/budgets/{pool.pk}", {"name": "x"}, format="json").status_code == 200
