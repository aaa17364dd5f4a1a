from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery

from accounts.models import Membership, Organization, User


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


def organizations_for(*, user: User, queryset: QuerySet[Organization] | None = None) -> QuerySet[Organization]:
    """The user's organizations (or `queryset`, already scoped to them) with the user's role and the member
    count, in one query."""
    caller_role = Membership.objects.filter(organization=OuterRef("pk"), user=user).values("role")[:1]
    if queryset is None:
        queryset = Organization.objects.visible_to(user)
    return queryset.annotate(
        caller_role=Subquery(caller_role), member_count=Count("memberships", distinct=True)
    ).order_by("name", "id")
