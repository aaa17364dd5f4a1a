"""Rules that organization and project memberships share, written once: ranks, removal, the last owner.

Both kinds of membership have ranked roles (a `ranks` mapping, role → number; higher outranks lower).
Nobody grants a role above their own, nobody changes or removes someone ranked above them, and the
last owner can neither be demoted nor leave.
"""

from collections.abc import Mapping

from platform_site.errors import Conflict, PermissionDenied


def require_grantable(ranks: Mapping[str, int], *, actor_role: str, role: str) -> None:
    if ranks[role] > ranks[actor_role]:
        raise PermissionDenied(
            f"You cannot grant the role '{role}': it is above your own ('{actor_role}').", code="ROLE_TOO_HIGH"
        )


def require_not_outranked(ranks: Mapping[str, int], *, actor_role: str, member_role: str, doing: str) -> None:
    """`doing` is what the actor tries, e.g. "change the role of" or "remove"."""
    if ranks[member_role] > ranks[actor_role]:
        raise PermissionDenied(f"You cannot {doing} someone ranked above you.", code="ROLE_TOO_HIGH")


def require_another_owner(*, member_is_owner: bool, stays_owner: bool, owner_count: int, where: str) -> None:
    """Refuse to leave `where` without an owner. Call it with the owners' rows locked."""
    if member_is_owner and not stays_owner and owner_count <= 1:
        raise Conflict(
            f"The last owner of the {where} cannot be demoted, leave or be removed.",
            code="LAST_OWNER",
            remediation="Make someone else an owner first.",
        )
