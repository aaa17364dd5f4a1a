"""Public identifiers: a type prefix and 64 random bits, e.g. `proj_3f9a1c2b7d4e5f60`.

Prefixed ids say what they point at in logs and URLs, and reveal no row counts.
"""

import secrets


def make_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def new_organization_id() -> str:
    return make_id("org")


def new_project_id() -> str:
    return make_id("proj")


def new_token_id() -> str:
    return make_id("tok")


def new_audit_event_id() -> str:
    return make_id("evt")


def new_workspace_id() -> str:
    return make_id("ws")
