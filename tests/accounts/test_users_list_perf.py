"""GET /api/v1/users answers from plain rows (no serializer per row): the same JSON as UserProfileSerializer,
in a constant number of queries (at most 4 with a bearer token: the token, the count, the page, the shared
memberships)."""

from accounts.models import Membership, OrgRole, User
from accounts.selectors import users_with_shared_memberships
from accounts.serializers import UserProfileSerializer
from tests.conftest import add_org_member, bearer_client, make_org, make_user


def _crowd(org, count: int, prefix: str) -> list[User]:
    users = [make_user(f"{prefix}{i}@lab-a.example") for i in range(count)]
    for i, user in enumerate(users):
        add_org_member(org, user, role=OrgRole.ADMIN if i % 3 == 0 else OrgRole.MEMBER)
    return users


def test_it_answers_the_same_json_as_the_profile_serializer(owner, org):
    other = make_org("Lab B", owner)
    stranger_org = make_org("Lab C", make_user("stranger@lab-c.example"))
    users = _crowd(org, 7, "crew")
    users[0].first_name, users[0].last_name = "Ada", "Lovelace\u202e"  # a bidi override is never shown
    users[0].save()
    add_org_member(other, users[1])
    add_org_member(stranger_org, users[2])  # an organization the caller is not in: never listed
    client = bearer_client(owner)

    response = client.get("/api/v1/users?page_size=5")
    assert response.status_code == 200
    body = response.json()
    viewer = User.objects.get(pk=owner.pk)
    visible = users_with_shared_memberships(viewer=viewer, users=User.objects.visible_to(viewer)).order_by("username")
    expected = UserProfileSerializer(list(visible[:5]), many=True).data
    assert body == [dict(row) for row in expected]
    assert response.headers["X-Total-Count"] == "8"
    assert 'rel="next"' in response.headers["Link"]
    assert all(org["id"] != stranger_org.pk for row in body for org in row["organizations"])


def test_it_lists_users_in_constant_queries(owner, org, django_assert_max_num_queries):
    client = bearer_client(owner)
    client.get("/api/v1/users")  # the token's first use is recorded once
    with django_assert_max_num_queries(4):
        assert len(client.get("/api/v1/users").json()) == 1
    _crowd(org, 40, "member")
    Membership.objects.create(
        organization=make_org("Lab B", owner), user=User.objects.get(email="member1@lab-a.example")
    )
    with django_assert_max_num_queries(4):
        assert len(client.get("/api/v1/users").json()) == 41
    with django_assert_max_num_queries(4):
        assert len(client.get("/api/v1/users?page=3&page_size=20").json()) == 1


def test_it_counts_exactly_who_shares_an_organization_and_no_one_else(owner, org, outsider):
    """X-Total-Count (User.objects.count_visible_to) equals the scope's own count: alone, in one organization,
    in two that share members (each counted once); the outsider's members never."""
    loner = make_user("loner@nowhere.example")
    assert User.objects.count_visible_to(loner) == User.objects.visible_to(loner).count() == 1
    second = make_org("Lab C", owner)
    shared = make_user("shared@lab-a.example")
    for organization in (org, second):
        add_org_member(organization, shared)
    add_org_member(second, make_user("only-c@lab-c.example"))
    add_org_member(org, make_user("only-a@lab-a.example"))
    for user in (owner, shared, outsider, loner):
        assert User.objects.count_visible_to(user) == User.objects.visible_to(user).count(), user
    assert User.objects.count_visible_to(owner) == 4  # the owner, shared, only-a and only-c
    response = bearer_client(owner).get("/api/v1/users")
    assert int(response.headers["X-Total-Count"]) == len(response.json()) == 4
    assert int(bearer_client(outsider).get("/api/v1/users").headers["X-Total-Count"]) == 1
