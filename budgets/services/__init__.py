"""Money services: pools and allocations (pools.py), enforcement (enforcement.py)."""
