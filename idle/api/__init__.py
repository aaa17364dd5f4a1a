"""The idle detection API: policies and state (idle.api.policies) and the agent's routes (idle.api.agent)."""
