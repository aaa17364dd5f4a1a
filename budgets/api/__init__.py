"""The money API: budget pools and allocations (pools.py), project money and costs (costs.py)."""
