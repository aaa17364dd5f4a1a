"""Isolation-matrix rows of the budget pool and allocation routes (see tests/isolation_matrix.py)."""

from tests.isolation_matrix import V1, Row, S  # noqa: F401

# fmt: off
ROWS: list[Row] = [
]
# fmt: on
