"""Rules that organization and project memberships share, written once: ranks, removal, the last owner.

Both kinds of membership have ranked roles (a `ranks` mapping, role → number; higher outranks lower).
Nobody grants a role above their own, nobody changes or removes someone ranked above them, and the
last owner can neither be demoted nor leave.
"""

from collections.abc import Callable, Mapping

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


def check_role_change(
    ranks: Mapping[str, int],
    *,
    actor_role: str,
    member_role: str,
    new_role: str,
    owner_role: str,
    count_owners: Callable[[], int],
    where: str,
) -> None:
    """All the rules of changing a member's role. `count_owners` locks and counts the owners."""
    require_grantable(ranks, actor_role=actor_role, role=new_role)
    require_not_outranked(ranks, actor_role=actor_role, member_role=member_role, doing="change the role of")
    require_another_owner(
        member_is_owner=member_role == owner_role,
        stays_owner=new_role == owner_role,
        owner_count=count_owners(),
        where=where,
    )


def check_removal(
    ranks: Mapping[str, int],
    *,
    actor_role: str | None,
    member_role: str,
    owner_role: str,
    count_owners: Callable[[], int],
    where: str,
) -> None:
    """All the rules of removing a member; `actor_role` is None when members remove themselves (leave)."""
    if actor_role is not None:
        require_not_outranked(ranks, actor_role=actor_role, member_role=member_role, doing="remove")
    require_another_owner(
        member_is_owner=member_role == owner_role, stays_owner=False, owner_count=count_owners(), where=where
    )
