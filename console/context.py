"""What every page's header needs: the organizations the signed-in person runs (for the Organization link).

Lazy, so a page that does not render the header (a live fragment) runs no query for it, and one query at most
for a page that does."""

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.models import Membership, OrgRole, User


def _managed_organizations(user: User | AnonymousUser | None) -> list:
    if user is None or not user.is_authenticated:
        return []
    return [
        membership.organization
        for membership in Membership.objects.filter(user=user, role__in=[OrgRole.OWNER, OrgRole.ADMIN])
        .select_related("organization")
        .order_by("organization__name")
    ]


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    return {"managed_organizations": SimpleLazyObject(lambda: _managed_organizations(user))}
