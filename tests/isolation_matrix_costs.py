"""Isolation-matrix rows of the project money and cost routes (see tests/isolation_matrix.py).

Money is visible to whoever sees the project (viewers included, and organization admins); the cost lists are
filtered to the caller's projects, so another organization's project in a query is a 404 and no query at all is
a 200 with only the caller's own figures."""

from tests.isolation_matrix import A_SIDE, V1, Row, S  # noqa: F401

PROJ = V1 + "projects/<str:project_id>"
WHAT_IF = {"project": "{o.project}", "instance_type": "t3.medium", "hours_per_day": 8, "days": 10}
LAUNCH = {"name": "matrix-dry", "template": "Ubuntu 24.04 Base", "project": "{o.project}", "dry_run": True}

# fmt: off
ROWS: list[Row] = [
    #                                                                            anon outs dual view memb admn orgA
    Row(PROJ + "/budget", "GET", "/api/v1/projects/{o.project}/budget",       S("401  404  200  200  200  200  200")),
    Row(PROJ + "/cost-analysis", "GET", "/api/v1/projects/{o.project}/cost-analysis",
                                                                               S("401  404  200  200  200  200  200")),
    Row(V1 + "costs/current", "GET", "/api/v1/costs/current",                 S("401  200  200  200  200  200  200")),
    Row(V1 + "costs/history", "GET", "/api/v1/costs/history",                 S("401  200  200  200  200  200  200")),
    Row(V1 + "costs/history", "GET", "/api/v1/costs/history?project={o.project}&granularity=weekly",
                                                                               S("401  404  200  200  200  200  200"),
        case="?project="),
    Row(V1 + "costs/export", "GET", "/api/v1/costs/export",                   S("401  200  200  200  200  200  200")),
    Row(V1 + "costs/export", "GET", "/api/v1/costs/export?project={o.project}",
                                                                               S("401  404  200  200  200  200  200"),
        case="?project="),
    Row(V1 + "costs/what-if", "POST", "/api/v1/costs/what-if",                S("401  404  200  200  200  200  200"),
        body=WHAT_IF),
    # B's private template cannot price a workspace of A's project, even for `dual`, who may see it.
    Row(V1 + "costs/what-if", "POST", "/api/v1/costs/what-if",                S("401  404  404  404  404  404  404"),
        body={**WHAT_IF, "project": "{a.project}", "template": "{b.template_name}"}, case="B's template"),
    # A dry run checks what a launch checks (a viewer may not launch) and keeps nothing.
    Row(V1 + "instances/launch", "POST", "/api/v1/instances/launch",          S("401  404  200  403  200  200  200"),
        body=LAUNCH, case="dry run"),
    # --- cost digest: a project owner's or admin's own opt-in (an organization admin in no project has no membership)
    Row(V1 + "projects/<str:project_id>/cost-digest", "PUT", "/api/v1/projects/{o.project}/cost-digest",
                                                                               S("401  404  403  403  403  200  403"),
        body={"enabled": True}),
]
# fmt: on
