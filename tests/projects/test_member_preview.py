"""GET /projects shows each project's first members, not all of them: a project of thousands of members would
otherwise put every one in every list and page. member_count counts them all; /members pages through them."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import User
from projects.models import ProjectMember, ProjectRole
from projects.selectors import MEMBERS_INLINE, member_previews
from projects.serializers import ProjectMemberSerializer, member_json
from tests.conftest import bearer_client, make_project, make_user


def crowd(project, count: int, *, prefix: str, start) -> list[User]:
    users = User.objects.bulk_create(
        User(username=f"{prefix}{i}", email=f"{prefix}{i}@lab.example", first_name="Ada", last_name=f"N{i}")
        for i in range(count)
    )
    ProjectMember.objects.bulk_create(
        ProjectMember(project=project, user=user, role=ProjectRole.MEMBER, joined_at=start + timedelta(minutes=i))
        for i, user in enumerate(users)
    )
    return users


def test_it_lists_the_first_members_by_join_date_and_counts_them_all(owner, org, project):
    start = timezone.now() - timedelta(days=30)
    users = crowd(project, MEMBERS_INLINE + 20, prefix="m", start=start)
    # One who joined first but whose access ended is neither shown nor counted.
    gone = make_user("gone@lab.example")
    ProjectMember.objects.create(
        project=project,
        user=gone,
        joined_at=start - timedelta(days=1),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    other = make_project(org, "Small", owner)
    client = bearer_client(owner)

    rows = {row["name"]: row for row in client.get("/api/v1/projects").json()}
    big = rows[project.name]
    assert big["member_count"] == MEMBERS_INLINE + 21  # the crowd and the owner
    assert len(big["members"]) == MEMBERS_INLINE
    emails = [member["email"] for member in big["members"]]
    # The owner joined when the fixture made the project (now), after the crowd.
    assert emails == [user.email for user in users[:MEMBERS_INLINE]]
    assert big["members"][0] == {
        "username": "m0",
        "email": "m0@lab.example",
        "name": "Ada N0",
        "role": "member",
        "join_date": big["members"][0]["join_date"],
    }
    assert rows["Small"]["member_count"] == 1 and [m["email"] for m in rows["Small"]["members"]] == [owner.email]

    detail = client.get(f"/api/v1/projects/{project.pk}").json()
    assert detail["members"] == big["members"] and detail["member_count"] == big["member_count"]
    assert rows["Small"]["id"] == other.pk


def test_it_reads_the_previews_in_constant_queries(owner, org, project, django_assert_max_num_queries):
    client = bearer_client(owner)
    client.get("/api/v1/projects")  # the token's first use is recorded
    start = timezone.now() - timedelta(days=1)
    crowd(project, 5, prefix="a", start=start)
    with django_assert_max_num_queries(20) as few:
        client.get("/api/v1/projects")
    for i in range(6):
        crowd(make_project(org, f"More {i}", owner), MEMBERS_INLINE + 3, prefix=f"p{i}-", start=start)
    with django_assert_max_num_queries(len(few.captured_queries)):
        rows = client.get("/api/v1/projects").json()
    assert len(rows) == 7
    assert all(len(row["members"]) == MEMBERS_INLINE for row in rows if row["name"].startswith("More"))


def test_it_writes_each_member_as_the_member_serializer_does(owner, project):
    owner.first_name, owner.last_name = "Ada", "Lovelace\x07"  # a control character is never shown
    owner.save()
    member = ProjectMember.objects.select_related("user").get(project=project, user=owner)
    (preview,) = member_previews([project.pk])[project.pk]
    assert member_json(preview) == ProjectMemberSerializer(member).data
    assert member_json(preview)["name"] == "Ada Lovelace"


def test_the_budget_brief_is_written_as_its_serializer_writes_it():
    from decimal import Decimal

    from budgets.selectors_pools import ProjectBudgetBrief
    from projects.serializers import ProjectBudgetBriefSerializer, budget_brief_json

    for utilization in (Decimal("0.123456"), None):
        brief = ProjectBudgetBrief(
            allocation_id="alloc_1",
            pool_id="budget_1",
            total_allocated=Decimal("1000"),
            current_spend=Decimal("12.345678901"),
            remaining=Decimal("-3.00005"),
            utilization_rate=utilization,
            status="warning",
        )
        assert budget_brief_json(brief) == ProjectBudgetBriefSerializer(brief).data
        assert list(budget_brief_json(brief)) == list(ProjectBudgetBriefSerializer(brief).data)
