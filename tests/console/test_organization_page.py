"""The console's organization pages: budget pools and allocations, members and projects, cloud accounts. Owners
and admins manage; a plain member gets a 403 page; anyone of another organization gets the 404 page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Membership, OrgRole
from budgets.models import Allocation, BudgetPool
from tests.conftest import add_org_member, make_project, make_user
from tests.console.conftest import add_crowd, csrf_post, signed_in
from workspaces.models import CloudAccount, WorkspacePreference

pytestmark = pytest.mark.django_db


def make_pool(org, name="Grant", total="1000") -> BudgetPool:
    now = timezone.now()
    return BudgetPool.objects.create(
        organization=org,
        name=name,
        total_amount=Decimal(total),
        start_date=now - timedelta(days=30),
        end_date=now + timedelta(days=60),
    )


def org_url(org, rest=""):
    return f"/organizations/{org.pk}/{rest}"


def test_it_lets_the_owner_create_a_pool(owner, org):
    client = signed_in(owner)
    page = client.get(org_url(org))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="pool-form"' in html and "No budget pools yet" in html
    today = timezone.now().date()
    response = csrf_post(
        client,
        org_url(org),
        {
            "name": "NSF grant",
            "total_amount": "5000",
            "period": "project",
            "start_date": today.isoformat(),
            "end_date": (today + timedelta(days=365)).isoformat(),
            "alert_threshold": "75",
        },
    )
    pool = BudgetPool.objects.get(organization=org, name="NSF grant")
    assert response.status_code == 302 and response["Location"] == org_url(org, f"budgets/{pool.pk}/")
    assert pool.total_amount == Decimal("5000") and pool.alert_threshold == Decimal("0.75")
    listed = client.get(org_url(org)).content.decode()
    assert 'id="pools"' in listed and 'data-pool-name="NSF grant"' in listed and "$5,000.00" in listed


def test_it_shows_pool_errors_next_to_the_fields(owner, org):
    make_pool(org, "Taken")
    client = signed_in(owner)
    today = timezone.now().date()
    response = csrf_post(
        client,
        org_url(org),
        {"name": "Taken", "total_amount": "10", "start_date": today.isoformat(), "end_date": today.isoformat()},
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="id_name-error"' in html and 'aria-invalid="true"' in html
    response = csrf_post(
        client,
        org_url(org),
        {"name": "New", "total_amount": "-1", "start_date": "soon", "end_date": "", "alert_threshold": "150"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    for field in ("total_amount", "start_date", "end_date", "alert_threshold"):
        assert f'id="id_{field}-error"' in html, field
    assert "A percentage between 0 and 100." in html
    assert BudgetPool.objects.filter(organization=org).count() == 1


def test_it_funds_a_project_changes_and_removes_the_allocation(owner, org, project):
    pool = make_pool(org)
    client = signed_in(owner)
    url = org_url(org, f"budgets/{pool.pk}/")
    page = client.get(url).content.decode()
    assert 'id="allocation-form"' in page and "Genomics" in page
    response = csrf_post(
        client,
        url + "allocations",
        {
            "project_id": project.pk,
            "allocated_amount": "400",
            "alert_thresholds": "50, 90",
            "prevent_launch_threshold": "100",
        },
        from_page=url,
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    allocation = Allocation.objects.get(project=project)
    assert allocation.amount == Decimal("400")
    assert allocation.alert_thresholds == ["0.5", "0.9"]
    assert allocation.prevent_launch_threshold == Decimal("1")
    page = client.get(url).content.decode()
    assert 'id="allocations"' in page and 'data-project-name="Genomics"' in page and "$400.00" in page

    response = csrf_post(
        client,
        url + f"allocations/{allocation.pk}",
        {"allocated_amount": "450", "alert_thresholds": "80", "auto_hibernate_threshold": "95"},
        from_page=url,
    )
    assert response.status_code == 302
    allocation.refresh_from_db()
    assert allocation.amount == Decimal("450") and allocation.alert_thresholds == ["0.8"]
    assert allocation.auto_hibernate_threshold == Decimal("0.95") and allocation.prevent_launch_threshold is None

    response = csrf_post(client, url + f"allocations/{allocation.pk}/delete", from_page=url)
    assert response.status_code == 302
    assert not Allocation.objects.filter(pk=allocation.pk).exists()


def test_it_refuses_oversubscription_next_to_the_amount_and_writes_nothing(owner, org, project):
    pool = make_pool(org, total="1000")
    other = make_project(org, "Astro", owner)
    Allocation.objects.create(pool=pool, project=other, amount=Decimal("800"))
    client = signed_in(owner)
    url = org_url(org, f"budgets/{pool.pk}/")
    response = csrf_post(
        client, url + "allocations", {"project_id": project.pk, "allocated_amount": "300"}, from_page=url
    )
    assert response.status_code == 409
    html = response.content.decode()
    error = html.split('id="id_allocated_amount-error"', 1)[1].split("</p>", 1)[0]
    assert "1100" in error and "$200.00" in error
    assert 'aria-describedby="id_allocated_amount-error id_allocated_amount-help"' in html
    assert not Allocation.objects.filter(project=project).exists()

    # Raising an existing allocation past the pool: the error sits in that allocation's own form.
    existing = Allocation.objects.get(project=other)
    response = csrf_post(client, url + f"allocations/{existing.pk}", {"allocated_amount": "1200"}, from_page=url)
    assert response.status_code == 409
    assert f'id="id_allocated_amount_{existing.pk}-error"' in response.content.decode()
    existing.refresh_from_db()
    assert existing.amount == Decimal("800")


def test_it_reallocates_with_a_reason(owner, org, project):
    pool = make_pool(org)
    other = make_project(org, "Astro", owner)
    source = Allocation.objects.create(pool=pool, project=project, amount=Decimal("500"))
    target = Allocation.objects.create(pool=pool, project=other, amount=Decimal("100"))
    client = signed_in(owner)
    url = org_url(org, f"budgets/{pool.pk}/")
    data = {"from_allocation": source.pk, "to_allocation": target.pk, "amount": "50", "reason": ""}
    response = csrf_post(client, url + "reallocate", data, from_page=url)
    assert response.status_code == 400
    assert 'id="id_reason-error"' in response.content.decode()
    source.refresh_from_db()
    assert source.amount == Decimal("500")
    response = csrf_post(client, url + "reallocate", {**data, "reason": "Astro's telescope time"}, from_page=url)
    assert response.status_code == 302
    source.refresh_from_db()
    target.refresh_from_db()
    assert (source.amount, target.amount) == (Decimal("450"), Decimal("150"))


def test_it_adds_changes_and_removes_members(owner, org, project):
    newcomer = make_user("newcomer@lab-a.example")
    client = signed_in(owner)
    url = org_url(org, "members/")
    page = client.get(url).content.decode()
    assert 'id="org-members"' in page and 'id="org-member-form"' in page
    assert f'href="/projects/{project.pk}/"' in page
    response = csrf_post(client, url, {"email": "nobody@nowhere.example", "role": "member"})
    assert response.status_code == 400
    assert 'id="id_email-error"' in response.content.decode()
    response = csrf_post(client, url, {"email": "newcomer@lab-a.example", "role": "member"})
    assert response.status_code == 302
    assert Membership.objects.get(organization=org, user=newcomer).role == OrgRole.MEMBER
    response = csrf_post(client, url, {"email": "newcomer@lab-a.example", "role": "member"})
    assert response.status_code == 409 and "already a member" in response.content.decode()

    response = csrf_post(client, url + f"{newcomer.username}/role", {"role": "admin"}, from_page=url)
    assert response.status_code == 302
    assert Membership.objects.get(organization=org, user=newcomer).role == OrgRole.ADMIN

    # The last owner cannot step down: the refusal is shown in words.
    response = csrf_post(client, url + f"{owner.username}/role", {"role": "member"}, from_page=url)
    assert response.status_code == 302
    assert "last owner" in client.get(url).content.decode()
    assert Membership.objects.get(organization=org, user=owner).role == OrgRole.OWNER

    response = csrf_post(client, url + f"{newcomer.username}/remove", from_page=url)
    assert response.status_code == 302
    assert not Membership.objects.filter(organization=org, user=newcomer).exists()


def test_it_lists_cloud_accounts_and_sets_my_default(owner, org):
    account = CloudAccount.objects.create(
        organization=org, name="research-aws", region="eu-west-1", is_default=True, endpoint_url="http://moto:5000"
    )
    client = signed_in(owner)
    url = org_url(org, "cloud-accounts/")
    html = client.get(url).content.decode()
    assert 'id="cloud-accounts"' in html and "research-aws" in html and "eu-west-1" in html
    assert "http://moto:5000" in html and "organization default" in html
    response = csrf_post(client, url + f"{account.pk}/default")
    assert response.status_code == 302
    assert WorkspacePreference.objects.get(user=owner).cloud_account_id == account.pk


def test_it_tells_a_plain_member_that_owners_and_admins_manage(owner, org):
    member = make_user("student@lab-a.example")
    add_org_member(org, member)
    client = signed_in(member)
    for path in ("", "members/", "cloud-accounts/"):
        response = client.get(org_url(org, path))
        assert response.status_code == 403
        assert "Only the organization's owners and admins manage the organization" in response.content.decode()
    pool = make_pool(org)
    assert client.get(org_url(org, f"budgets/{pool.pk}/")).status_code == 403
    response = csrf_post(client, org_url(org), {"name": "Mine", "total_amount": "1"}, from_page="/tokens/")
    assert response.status_code == 403
    assert not BudgetPool.objects.filter(name="Mine").exists()


def test_it_answers_404_to_another_organization_on_every_route(owner, org, project, outsider):
    pool = make_pool(org)
    allocation = Allocation.objects.create(pool=pool, project=project, amount=Decimal("10"))
    account = CloudAccount.objects.create(organization=org, name="aws")
    client = signed_in(outsider)
    budget = f"budgets/{pool.pk}/"
    for path in ("", "members/", "cloud-accounts/", budget):
        response = client.get(org_url(org, path))
        assert response.status_code == 404, path
        assert "Not found" in response.content.decode()
    posts = {
        "": {"name": "X", "total_amount": "1"},
        budget + "allocations": {"project_id": project.pk, "allocated_amount": "1"},
        budget + f"allocations/{allocation.pk}": {"allocated_amount": "1"},
        budget + f"allocations/{allocation.pk}/delete": {},
        budget + "reallocate": {"amount": "1", "reason": "x"},
        budget + "edit": {"name": "Mine", "total_amount": "1"},
        budget + "delete": {},
        "members/": {"email": outsider.email, "role": "owner"},
        f"members/{owner.username}/role": {"role": "member"},
        f"members/{owner.username}/remove": {},
        f"cloud-accounts/{account.pk}/default": {},
    }
    for path, data in posts.items():
        assert csrf_post(client, org_url(org, path), data, from_page="/tokens/").status_code == 404, path
    assert client.get("/organizations/org_missing/").status_code == 404
    # The outsider's own organization does not open another's pools, allocations or accounts.
    theirs = Membership.objects.get(user=outsider).organization
    assert client.get(org_url(theirs, budget)).status_code == 404
    assert (
        csrf_post(client, org_url(theirs, f"cloud-accounts/{account.pk}/default"), from_page="/tokens/").status_code
        == 404
    )
    assert Allocation.objects.filter(pk=allocation.pk, amount=Decimal("10")).exists()
    assert Membership.objects.get(organization=org, user=owner).role == OrgRole.OWNER
    assert not Membership.objects.filter(organization=org, user=outsider).exists()


def test_it_requires_the_csrf_token(owner, org):
    client = signed_in(owner)
    assert client.post(org_url(org), {"name": "X", "total_amount": "1"}).status_code == 403
    assert client.post(org_url(org, "members/"), {"email": owner.email}).status_code == 403
    assert not BudgetPool.objects.exists()


def test_it_answers_in_constant_queries_with_a_crowd(owner, org, project, django_assert_max_num_queries):
    client = signed_in(owner)
    pool = make_pool(org)
    Allocation.objects.create(pool=pool, project=project, amount=Decimal("100"))
    CloudAccount.objects.create(organization=org, name="aws")
    pages = [
        org_url(org),
        org_url(org, f"budgets/{pool.pk}/"),
        org_url(org, "members/"),
        org_url(org, "cloud-accounts/"),
    ]
    client.get(pages[0])
    measured = {}
    for page in pages:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(page).status_code == 200
        measured[page] = len(queries.captured_queries)

    add_crowd(project, owner, count=1000)
    for index in range(30):
        person = make_user(f"person{index}@lab-a.example")
        add_org_member(org, person)
        extra = make_project(org, f"Project {index}", person)
        if index < 20:
            other = make_pool(org, f"Pool {index}")
            Allocation.objects.create(pool=other, project=extra, amount=Decimal("10"))
        else:
            Allocation.objects.create(pool=pool, project=extra, amount=Decimal("1"))
        CloudAccount.objects.create(organization=org, name=f"aws-{index}")
    for page in pages:
        with django_assert_max_num_queries(measured[page]):
            assert client.get(page).status_code == 200
    html = client.get(org_url(org, "members/")).content.decode()
    assert html.count("data-member=") == 31


def test_it_changes_and_deletes_a_pool(owner, org, project):
    pool = make_pool(org, total="1000")
    allocation = Allocation.objects.create(pool=pool, project=project, amount=Decimal("600"))
    client = signed_in(owner)
    url = org_url(org, f"budgets/{pool.pk}/")
    last_day = (timezone.now() + timedelta(days=90)).date().isoformat()
    data = {"name": "Renamed", "description": "", "total_amount": "500", "alert_threshold": "90", "end_date": last_day}
    response = csrf_post(client, url + "edit", data, from_page=url)
    assert response.status_code == 409
    assert 'id="id_pool_total_amount-error"' in response.content.decode()
    pool.refresh_from_db()
    assert pool.name == "Grant" and pool.total_amount == Decimal("1000")
    response = csrf_post(client, url + "edit", {**data, "total_amount": "700"}, from_page=url)
    assert response.status_code == 302
    pool.refresh_from_db()
    assert (pool.name, pool.total_amount, pool.alert_threshold) == ("Renamed", Decimal("700"), Decimal("0.9"))

    response = csrf_post(client, url + "delete", from_page=url)
    assert response.status_code == 302 and BudgetPool.objects.filter(pk=pool.pk).exists()
    assert "The pool still funds 1 project(s)." in client.get(url).content.decode()
    allocation.delete()
    response = csrf_post(client, url + "delete", from_page=url)
    assert response.status_code == 302 and response["Location"] == org_url(org)
    assert not BudgetPool.objects.filter(pk=pool.pk).exists()
