from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery

from accounts.models import Membership, Organization, User
from platform_site.errors import ValidationFailed
from platform_site.tenancy import scoped_queryset, visible_or_404

# What a user list reads of each user: plain rows (.values()), no model objects.
USER_ROW_FIELDS = ("id", "username", "email", "first_name", "last_name", "date_joined")


def users_with_shared_memberships(*, viewer: User, users: QuerySet[User]) -> QuerySet[User]:
    """Attach `shared_memberships`: the memberships of each user in organizations the viewer belongs to.

    A profile never reveals organizations the viewer is not part of.
    """
    viewer_orgs = Membership.objects.filter(user=viewer).values("organization_id")
    return users.prefetch_related(
        Prefetch(
            "memberships",
            queryset=Membership.objects.filter(organization_id__in=viewer_orgs)
            .select_related("organization")
            .order_by("organization__name"),
            to_attr="shared_memberships",
        )
    )


def user_list_rows(*, users: QuerySet[User]) -> QuerySet:
    """`users` (already scoped and ordered) as plain rows for a page of the user list."""
    rows: QuerySet = users.prefetch_related(None).values(*USER_ROW_FIELDS)
    return rows


def shared_memberships_of(*, viewer: User, rows: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The memberships of each listed user in organizations the viewer belongs to, by user id, in one query
    (the same rows and order as users_with_shared_memberships, read as values)."""
    viewer_orgs = Membership.objects.filter(user=viewer).values("organization_id")
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    memberships = (
        Membership.objects.filter(user_id__in=[row["id"] for row in rows], organization_id__in=viewer_orgs)
        .order_by("organization__name")
        .values("user_id", "role", "organization_id", "organization__name", "organization__slug")
    )
    for membership in memberships:
        found[membership["user_id"]].append(membership)
    return found


def organizations_for(*, user: User, queryset: QuerySet[Organization] | None = None) -> QuerySet[Organization]:
    """The user's organizations (or `queryset`, already scoped to them) with the user's role and the member
    count, in one query."""
    caller_role = Membership.objects.filter(organization=OuterRef("pk"), user=user).values("role")[:1]
    if queryset is None:
        queryset = Organization.objects.visible_to(user)
    return queryset.annotate(
        caller_role=Subquery(caller_role), member_count=Count("memberships", distinct=True)
    ).order_by("name", "id")


def organization_named_or_only(*, user: User, organization_id: str | None) -> Organization:
    """The organization a new project, pool or idle profile goes into: the one named (among the caller's, else
    404), or the caller's only organization (a validation error when they belong to several or to none)."""
    if organization_id:
        return visible_or_404(
            Organization,
            user,
            code="ORGANIZATION_NOT_FOUND",
            message="No such organization of yours.",
            pk=organization_id,
        )
    mine = list(scoped_queryset(Organization, user)[:2])
    if len(mine) != 1:
        raise ValidationFailed(fields={"organization": ["Required: you belong to several organizations (or none)."]})
    return mine[0]
