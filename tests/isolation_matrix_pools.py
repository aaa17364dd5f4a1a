"""Isolation-matrix rows of the budget pool and allocation routes (see tests/isolation_matrix.py).

Pools are seen by their organization's owners and admins (`dual`, `org_admin`) and by the owners of the projects they
fund (none of the actors: A's project is owned by A's owner); to anyone else a pool and its allocations do not exist
(404). Only organization owners and admins change them. The world's pool holds 10000 and funds A's project with 5000.
"""

from tests.isolation_matrix import A_SIDE, V1, Row, S

POOL = V1 + "budgets/<str:budget_id>"
ALLOC = POOL + "/allocations/<str:allocation_id>"

# fmt: off
ROWS: list[Row] = [
    #                                                                            anon outs dual view memb admn orgA
    Row(V1 + "budgets", "GET", "/api/v1/budgets",                             S("401  200  200  200  200  200  200")),
    Row(V1 + "budgets", "GET", "/api/v1/budgets?organization={o.org}",        S("401  200  200  200  200  200  200"),
        case="?organization=", foreign={actor: 200 for actor in A_SIDE}),
    # Only the organization's owners and admins create pools (`dual` is a plain member of B).
    Row(V1 + "budgets", "POST", "/api/v1/budgets",                            S("401  404  201  403  403  403  201"),
        body={"organization": "{o.org}", "name": "Matrix Grant", "total_amount": "100.00",
              "start_date": "2026-01-01T00:00:00Z", "end_date": "2030-01-01T00:00:00Z"},
        foreign={"dual": 403}),
    Row(POOL, "GET", "/api/v1/budgets/{o.pool}",                              S("401  404  200  404  404  404  200")),
    Row(POOL, "PUT", "/api/v1/budgets/{o.pool}",                              S("401  404  200  404  404  404  200"),
        body={"description": "changed", "total_amount": 9000}),
    # The pool still funds A's project: deleting it is a conflict, checked after who may.
    Row(POOL, "DELETE", "/api/v1/budgets/{o.pool}",                           S("401  404  409  404  404  404  409")),
    Row(POOL + "/summary", "GET", "/api/v1/budgets/{o.pool}/summary",         S("401  404  200  404  404  404  200")),
    Row(POOL + "/allocations", "GET", "/api/v1/budgets/{o.pool}/allocations", S("401  404  200  404  404  404  200")),
    # A's project is funded already (409); B's project cannot be funded from A's pool, even by `dual` (404).
    Row(POOL + "/allocations", "POST", "/api/v1/budgets/{o.pool}/allocations", S("401  404  409  404  404  404  409"),
        body={"project_id": "{o.project}", "allocated_amount": 10}),
    Row(POOL + "/allocations", "POST", "/api/v1/budgets/{a.pool}/allocations", S("401  404  404  404  404  404  404"),
        body={"project_id": "{b.project}", "allocated_amount": 10}, case="B's project in A's pool"),
    Row(ALLOC, "GET", "/api/v1/budgets/{o.pool}/allocations/{o.allocation}",  S("401  404  200  404  404  404  200")),
    Row(ALLOC, "PUT", "/api/v1/budgets/{o.pool}/allocations/{o.allocation}",  S("401  404  200  404  404  404  200"),
        body={"allocated_amount": 6000, "alert_thresholds": [0.5, 0.9]}),
    Row(ALLOC, "DELETE", "/api/v1/budgets/{o.pool}/allocations/{o.allocation}",
                                                                               S("401  404  204  404  404  404  204")),
    # B's allocation under A's pool: not found, whoever asks.
    Row(ALLOC, "GET", "/api/v1/budgets/{a.pool}/allocations/{b.allocation}",  S("401  404  404  404  404  404  404"),
        case="B's allocation under A's pool"),
    Row(ALLOC + "/caps", "GET", "/api/v1/budgets/{o.pool}/allocations/{o.allocation}/caps",
                                                                               S("401  404  200  404  404  404  200")),
    Row(ALLOC + "/caps", "PUT", "/api/v1/budgets/{o.pool}/allocations/{o.allocation}/caps",
                                                                               S("401  404  200  404  404  404  200"),
        body={"caps": {"colleague@lab-a.example": 100}}),  # keys are not filled in: A's colleague
    # A cap for someone outside the project (B's bystander) is refused (400) by those who may set caps.
    Row(ALLOC + "/caps", "PUT", "/api/v1/budgets/{a.pool}/allocations/{a.allocation}/caps",
                                                                               S("401  404  400  404  404  404  400"),
        body={"caps": {"bystander@lab-b.example": 100}}, case="a member of B"),
    # The pool has one allocation: moving money from it to itself is refused (400) after who may.
    Row(POOL + "/reallocate", "POST", "/api/v1/budgets/{o.pool}/reallocate",  S("401  404  400  404  404  404  400"),
        body={"from_project": "{o.project}", "to_project": "{o.project}", "amount": 10, "reason": "matrix"}),
    # B's allocation cannot be a destination of A's pool's money.
    Row(POOL + "/reallocate", "POST", "/api/v1/budgets/{a.pool}/reallocate",  S("401  404  404  404  404  404  404"),
        body={"from_allocation": "{a.allocation}", "to_allocation": "{b.allocation}", "amount": 10, "reason": "x"},
        case="to B's allocation"),
]
# fmt: on
