"""Isolation-matrix rows of the project money and cost routes (see tests/isolation_matrix.py)."""

from tests.isolation_matrix import V1, Row, S  # noqa: F401

# fmt: off
ROWS: list[Row] = [
    # --- cost digest
    Row(V1 + "projects/<str:project_id>/cost-digest", "PUT", "/api/v1/projects/{o.project}/cost-digest",
        S("401  404  403  403  403  200  403"), body={"enabled": True}),
]
# fmt: on
