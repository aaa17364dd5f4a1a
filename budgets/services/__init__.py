"""Money services: pools (pools.py), allocations and member caps (allocations.py), enforcement (enforcement.py)."""
