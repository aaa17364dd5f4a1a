"""The console's project page: members and roles, invitations, the budget with its chart, alerts, top spenders and
workspaces; the actions on it call the same services as the API, and a foreign project is the 404 page."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from budgets.models import Allocation, BudgetAlert, BudgetPool
from invitations.models import Invitation, InvitationStatus
from invitations.services import invitation_send
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, make_user
from tests.console.conftest import add_crowd, csrf_post, signed_in
from tests.support import record_cost
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def verified(user):
    EmailAddress.objects.get_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    return user


def fund(project, amount="100.00", *, days_before=10, days_after=20) -> Allocation:
    now = timezone.now()
    pool = BudgetPool.objects.create(
        organization=project.organization,
        name=f"Grant {project.pk}",
        total_amount=Decimal("100000"),
        start_date=now - timedelta(days=days_before),
        end_date=now + timedelta(days=days_after),
    )
    return Allocation.objects.create(pool=pool, project=project, amount=Decimal(amount))


def spend(project, member, amount: str, *, days_ago: int = 1, name: str | None = None) -> Workspace:
    """A stopped workspace with one closed row, shaped as the ledger leaves it: created before its row, with a
    cursor (the top spenders are ranked from the rows of workspaces that have one)."""
    start = timezone.now() - timedelta(days=days_ago)
    workspace = Workspace.objects.create(
        organization=project.organization,
        project=project,
        owner=member,
        name=name or f"spent-{days_ago}",
        state="stopped",
        created_at=start - timedelta(hours=1),
        ledger_through=timezone.now(),
    )
    record_cost(
        organization=project.organization,
        project=project,
        workspace=workspace,
        member=member,
        kind="compute",
        item="t3.medium",
        start=start,
        end=start + timedelta(hours=1),
        day=timezone.localtime(start).date(),
        quantity=Decimal(3600),
        unit="seconds",
        rate=Decimal(amount),
        amount=Decimal(amount),
    )
    return workspace


def shown_after(client, response) -> str:
    """What the person sees after a POST: the page it redirects to (with its message), or the refusal's page."""
    if response.status_code == 302:
        return client.get(response["Location"]).content.decode()
    assert response.status_code in (400, 403, 409), response.status_code
    return response.content.decode()


def page_of(project) -> str:
    return f"/projects/{project.pk}/"


def member_of(project, email="member@lab-a.example", role=ProjectRole.MEMBER):
    user = make_user(email)
    add_org_member(project.organization, user)
    ProjectMember.objects.create(project=project, user=user, role=role)
    return user


def test_it_shows_members_invitations_and_the_budget_with_its_chart(owner, project):
    verified(owner)
    colleague = member_of(project)
    allocation = fund(project)
    spend(project, owner, "12.50", days_ago=3, name="big-one")
    spend(project, colleague, "2.25", days_ago=1, name="small-one")
    invitation_send(actor=owner, project=project, email="new@lab-a.example", role="member")
    BudgetAlert.objects.create(
        allocation=allocation,
        pool=allocation.pool,
        project=project,
        kind="threshold",
        threshold=Decimal("0.1"),
        period_start=timezone.now() - timedelta(days=10),
        spent=Decimal("12.5"),
        limit=Decimal("100"),
        message="Genomics has spent 12% of its allocation.",
    )
    response = signed_in(owner).get(page_of(project))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1" in body and body.count("<h1") == 1
    # Members with their roles, a role form for the colleague.
    members = body[body.index('<table id="members"') :]
    members = members[: members.index("</table>")]
    assert "owner@lab-a.example" in members and "member@lab-a.example" in members
    assert f'action="/projects/{project.pk}/members/{colleague.username}/role"' in members
    # Invitations: the forms with their stable ids, the row with its status and e-mail delivery.
    for marker in ('id="invite-form"', 'id="id_email" name="email"', 'id="id_role" name="role"', 'id="id_message"'):
        assert marker in body
    assert 'id="invite-submit"' in body and 'id="bulk-invite-form"' in body and 'name="emails"' in body
    row = re.search(r'<tr data-email="new@lab-a.example".*?</tr>', body, re.S).group(0)
    assert 'class="invitation-status"' in row and "Pending" in row and "Queued" in row
    # Budget: the figures, the chart with its accessible title and table, the alert, the spenders.
    summary = body[body.index('id="budget-summary"') :]
    assert "$100.00" in summary and "$14.75" in summary and "$85.25" in summary
    assert "Burn rate" in summary and "Runway" in summary and "On track" in summary
    chart = body[body.index('<svg id="budget-chart"') : body.index("</svg>")]
    assert "<title" in chart and "<desc" in chart and "Allocation $100.00" in chart
    assert 'class="chart-projection"' in chart and 'stroke-dasharray="6 5"' in chart
    assert 'class="chart-allocation"' in chart and 'class="chart-spend"' in chart
    assert 'id="budget-chart-table"' in body and "$14.75" in body[body.index('id="budget-chart-table"') :]
    alerts = body[body.index('id="budget-alerts"') :]
    assert "Alert threshold crossed" in alerts and "10%" in alerts
    spenders = body[body.index('id="top-spenders"') :]
    assert spenders.index("big-one") < spenders.index("small-one")
    assert "owner@lab-a.example" in spenders and "$12.50" in spenders
    # Workspaces link to their pages, with their state and cost.
    workspaces = body[body.index('id="project-workspaces"') :]
    workspace = Workspace.objects.get(name="big-one")
    assert f'href="/workspaces/{workspace.pk}/"' in workspaces and 'data-state="stopped"' in workspaces
    assert "{" not in re.sub(r"<style.*?</style>|<script.*?</script>", "", body, flags=re.S).split("<main")[1]


def test_it_says_plainly_that_an_unfunded_project_is_not_funded(owner, project):
    spend(project, owner, "3.00")
    body = signed_in(owner).get(page_of(project)).content.decode()
    assert "This project is not funded." in body
    assert 'id="budget-summary"' in body and 'id="budget-chart"' not in body
    assert "Unfunded" in body and "$3.00" in body


def test_it_sends_an_invitation_from_the_form(owner, project, django_capture_on_commit_callbacks):
    verified(owner)
    client = signed_in(owner)
    with django_capture_on_commit_callbacks() as callbacks:
        response = csrf_post(
            client,
            f"/projects/{project.pk}/invitations/send",
            {"email": "Guest@Lab-A.example", "role": "admin", "message": "Join us"},
            from_page=page_of(project),
        )
    assert response.status_code == 302 and response["Location"].startswith(page_of(project))
    invitation = Invitation.objects.get(project=project)
    assert (invitation.email, invitation.role, invitation.message) == ("guest@lab-a.example", "admin", "Join us")
    assert callbacks, "the e-mail is queued after commit"
    body = client.get(response["Location"]).content.decode()
    assert "Invitation sent to guest@lab-a.example as admin." in body
    row = re.search(r'<tr data-email="guest@lab-a.example".*?</tr>', body, re.S).group(0)
    assert "Pending" in row


def test_it_shows_the_services_errors_next_to_the_invite_form(owner, project):
    client = signed_in(owner)
    url = f"/projects/{project.pk}/invitations/send"
    # An unverified inviter: refused, in words, at the form.
    response = csrf_post(client, url, {"email": "x@lab-a.example", "role": "member"}, from_page=page_of(project))
    assert response.status_code == 403
    body = response.content.decode()
    assert 'id="invite-form-error"' in body and "Verify your e-mail address before inviting anyone." in body
    assert not Invitation.objects.exists()
    verified(owner)
    # Not an address.
    response = csrf_post(client, url, {"email": "not-an-address", "role": "member"}, from_page=page_of(project))
    assert response.status_code == 400
    body = response.content.decode()
    assert 'aria-invalid="true" aria-describedby="id_email-error"' in body and 'id="id_email-error"' in body
    assert 'value="not-an-address"' in body
    # Already a member.
    member_of(project, "here@lab-a.example")
    response = csrf_post(client, url, {"email": "here@lab-a.example", "role": "member"}, from_page=page_of(project))
    assert response.status_code == 409
    error = re.search(r'<p class="field-error" id="id_email-error">(.*?)</p>', response.content.decode()).group(1)
    assert "already a member" in error
    # The daily limit.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("invitations.services.limits.per_inviter_per_day", lambda: 0)
        response = csrf_post(client, url, {"email": "y@lab-a.example", "role": "member"}, from_page=page_of(project))
    assert response.status_code == 429
    assert "Daily invitation limit reached" in response.content.decode()
    assert not Invitation.objects.exists()


def test_it_invites_in_bulk_from_pasted_text(owner, project, django_capture_on_commit_callbacks):
    verified(owner)
    member_of(project, "here@lab-a.example")
    client = signed_in(owner)
    url = f"/projects/{project.pk}/invitations/bulk"
    with django_capture_on_commit_callbacks() as callbacks:
        response = csrf_post(
            client,
            url,
            {"emails": "a@lab-a.example\nb@lab-a.example, c@lab-a.example\n\n", "role": "viewer"},
            from_page=page_of(project),
        )
    assert response.status_code == 302
    assert sorted(Invitation.objects.values_list("email", "role")) == [
        ("a@lab-a.example", "viewer"),
        ("b@lab-a.example", "viewer"),
        ("c@lab-a.example", "viewer"),
    ]
    assert len(callbacks) == 3
    assert "3 invitations sent." in client.get(response["Location"]).content.decode()
    # Mixed: what happened to each address is listed, the failed ones stay in the box.
    response = csrf_post(
        client,
        url,
        {"emails": "d@lab-a.example, here@lab-a.example, nonsense", "role": "member"},
        from_page=page_of(project),
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "1 sent, 1 skipped, 1 failed." in body
    assert re.search(r'data-email="here@lab-a.example" data-result="skipped">.*already a member', body)
    assert 'data-result="failed"' in body and "Enter a valid e-mail address." in body
    assert re.search(r'<textarea id="id_bulk_emails"[^>]*>nonsense</textarea>', body)
    assert Invitation.objects.filter(email="d@lab-a.example").exists()
    # Nothing pasted.
    response = csrf_post(client, url, {"emails": " \n, ", "role": "member"}, from_page=page_of(project))
    assert response.status_code == 400 and 'id="id_bulk_emails-error"' in response.content.decode()


def test_it_resends_and_revokes_invitations(owner, project, django_capture_on_commit_callbacks):
    verified(owner)
    invitation = invitation_send(actor=owner, project=project, email="guest@lab-a.example")
    client = signed_in(owner)
    with django_capture_on_commit_callbacks() as callbacks:
        response = csrf_post(
            client, f"/projects/{project.pk}/invitations/{invitation.pk}/resend", from_page=page_of(project)
        )
    assert response.status_code == 302 and callbacks
    invitation.refresh_from_db()
    assert invitation.resend_count == 1
    assert "sent again" in client.get(response["Location"]).content.decode()
    response = csrf_post(
        client, f"/projects/{project.pk}/invitations/{invitation.pk}/revoke", from_page=page_of(project)
    )
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.REVOKED
    body = client.get(response["Location"]).content.decode()
    assert "revoked" in body
    row = re.search(r'<tr data-email="guest@lab-a.example".*?</tr>', body, re.S).group(0)
    assert "Revoked" in row and "resend-form" not in row
    # A revoked invitation cannot be resent: the service's refusal in words.
    response = csrf_post(
        client, f"/projects/{project.pk}/invitations/{invitation.pk}/resend", from_page=page_of(project)
    )
    assert "Only pending invitations can be resent" in client.get(response["Location"]).content.decode()


def test_it_shows_a_plain_member_no_invitation_forms_and_refuses_their_posts(owner, project):
    verified(owner)
    invitation = invitation_send(actor=owner, project=project, email="guest@lab-a.example")
    member = verified(member_of(project))
    client = signed_in(member)
    body = client.get(page_of(project)).content.decode()
    assert 'id="invite-form"' not in body and 'id="bulk-invite-form"' not in body and 'id="invitations"' not in body
    assert "guest@lab-a.example" not in body
    assert 'id="members"' in body and "/role" not in body  # no role forms either
    response = csrf_post(
        client, f"/projects/{project.pk}/invitations/send", {"email": "z@lab-a.example"}, from_page=page_of(project)
    )
    assert response.status_code == 403 and "This needs the project role" in response.content.decode()
    response = csrf_post(
        client, f"/projects/{project.pk}/invitations/bulk", {"emails": "z@lab-a.example"}, from_page=page_of(project)
    )
    assert response.status_code == 403
    assert not Invitation.objects.filter(email="z@lab-a.example").exists()
    # Resend and revoke of an invitation a member cannot see: the 404 page.
    for action in ("resend", "revoke"):
        response = csrf_post(client, f"/projects/{project.pk}/invitations/{invitation.pk}/{action}", from_page="/")
        assert response.status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING and invitation.resend_count == 0
    # Role change and removal of the owner: refused in words.
    response = csrf_post(
        client, f"/projects/{project.pk}/members/{owner.username}/role", {"role": "viewer"}, from_page=page_of(project)
    )
    assert "This needs the project role" in shown_after(client, response)
    response = csrf_post(client, f"/projects/{project.pk}/members/{owner.username}/remove", from_page=page_of(project))
    assert ProjectMember.objects.get(project=project, user=owner).role == ProjectRole.OWNER


def test_it_lets_the_owner_change_roles_and_remove_members(owner, project):
    colleague = member_of(project)
    client = signed_in(owner)
    response = csrf_post(
        client,
        f"/projects/{project.pk}/members/{colleague.username}/role",
        {"role": "admin"},
        from_page=page_of(project),
    )
    assert response.status_code == 302
    assert ProjectMember.objects.get(project=project, user=colleague).role == ProjectRole.ADMIN
    assert "member@lab-a.example is now admin" in client.get(response["Location"]).content.decode()
    # The last owner stays: the service's refusal, in words.
    response = csrf_post(
        client, f"/projects/{project.pk}/members/{owner.username}/role", {"role": "member"}, from_page=page_of(project)
    )
    assert ProjectMember.objects.get(project=project, user=owner).role == ProjectRole.OWNER
    assert "The last owner of the project cannot be demoted" in shown_after(client, response)
    # A role that does not exist.
    response = csrf_post(
        client,
        f"/projects/{project.pk}/members/{colleague.username}/role",
        {"role": "king"},
        from_page=page_of(project),
    )
    assert ProjectMember.objects.get(project=project, user=colleague).role == ProjectRole.ADMIN
    response = csrf_post(
        client, f"/projects/{project.pk}/members/{colleague.username}/remove", from_page=page_of(project)
    )
    assert response.status_code == 302
    assert not ProjectMember.objects.filter(project=project, user=colleague).exists()
    # A member may leave.
    leaver = member_of(project, "leaver@lab-a.example")
    response = csrf_post(signed_in(leaver), f"/projects/{project.pk}/members/{leaver.username}/remove", from_page="/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not ProjectMember.objects.filter(project=project, user=leaver).exists()


def test_it_answers_the_404_page_to_an_outsider_on_every_route(owner, project, outsider):
    verified(owner)
    verified(outsider)
    colleague = member_of(project)
    invitation = invitation_send(actor=owner, project=project, email="guest@lab-a.example")
    client = signed_in(outsider)
    response = client.get(page_of(project))
    assert response.status_code == 404 and "Carrel" in response.content.decode()
    assert client.get("/projects/prj_missing/").status_code == 404
    routes = [
        (f"/projects/{project.pk}/members/{colleague.username}/role", {"role": "owner"}),
        (f"/projects/{project.pk}/members/{colleague.username}/remove", {}),
        (f"/projects/{project.pk}/invitations/send", {"email": "x@lab-b.example", "role": "member"}),
        (f"/projects/{project.pk}/invitations/bulk", {"emails": "x@lab-b.example"}),
        (f"/projects/{project.pk}/invitations/{invitation.pk}/resend", {}),
        (f"/projects/{project.pk}/invitations/{invitation.pk}/revoke", {}),
    ]
    for url, data in routes:
        assert csrf_post(client, url, data, from_page="/").status_code == 404, url
    # An invitation of the outsider's own project, named under this project: still 404.
    own = outsider.project_memberships.get().project
    mine = invitation_send(actor=outsider, project=own, email="friend@lab-b.example")
    assert (
        csrf_post(signed_in(owner), f"/projects/{project.pk}/invitations/{mine.pk}/revoke", from_page="/").status_code
        == 404
    )
    mine.refresh_from_db()
    invitation.refresh_from_db()
    assert mine.status == invitation.status == InvitationStatus.PENDING
    assert ProjectMember.objects.get(project=project, user=colleague).role == ProjectRole.MEMBER
    assert not Invitation.objects.filter(email="x@lab-b.example").exists()


def test_it_requires_the_csrf_token(owner, project):
    verified(owner)
    colleague = member_of(project)
    client = signed_in(owner)
    client.get(page_of(project))
    assert client.post(f"/projects/{project.pk}/invitations/send", {"email": "x@lab-a.example"}).status_code == 403
    assert client.post(f"/projects/{project.pk}/members/{colleague.username}/remove").status_code == 403
    assert not Invitation.objects.exists()
    assert ProjectMember.objects.filter(project=project, user=colleague).exists()


def test_it_signs_in_first(project):
    from django.test import Client

    response = Client().get(page_of(project))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_keeps_its_query_count_with_1000_workspaces_and_many_members_invitations_and_days(
    owner, project, settings, django_assert_max_num_queries
):
    settings.CARREL_INVITATIONS_PER_INVITER_PER_DAY = 1000
    settings.CARREL_INVITATIONS_PER_ORGANIZATION_PER_DAY = 1000
    verified(owner)
    fund(project, days_before=40, days_after=40)
    spend(project, owner, "2.00")
    member_of(project)
    invitation_send(actor=owner, project=project, email="one@lab-a.example")
    client = signed_in(owner)
    client.get(page_of(project))
    live = f"/projects/{project.pk}/invitations/live"
    with CaptureQueriesContext(connection) as small:
        assert client.get(page_of(project)).status_code == 200
    with CaptureQueriesContext(connection) as small_live:
        assert client.get(live).status_code == 200
    add_crowd(project, owner, count=1000)
    for index in range(30):
        member_of(project, f"crowd-{index}@lab-a.example", role=ProjectRole.VIEWER)
    for index in range(60):
        invitation_send(actor=owner, project=project, email=f"invitee-{index}@lab-a.example")
    for days_ago in range(2, 35):
        spend(project, owner, "1.00", days_ago=days_ago)
    with django_assert_max_num_queries(len(small)):
        body = client.get(page_of(project)).content.decode()
    assert "Showing the 20 newest workspaces" in body and "Showing the 50 newest invitations" in body
    assert 'id="budget-chart"' in body
    with django_assert_max_num_queries(len(small_live)):
        assert client.get(live).status_code == 200


def test_it_follows_the_invitation_emails_live_until_they_are_sent(owner, project, outsider):
    verified(owner)
    invitation = invitation_send(actor=owner, project=project, email="guest@lab-a.example")
    client = signed_in(owner)
    live = f"/projects/{project.pk}/invitations/live"
    body = client.get(page_of(project)).content.decode()
    assert f'data-live="{live}"' in body
    fragment = client.get(live).content.decode()
    assert fragment.lstrip().startswith('<div id="invitations-region" data-live=')
    assert 'data-email="guest@lab-a.example"' in fragment and "Queued" in fragment
    Invitation.objects.filter(pk=invitation.pk).update(delivery_status="sent", delivered_at=timezone.now())
    fragment = client.get(live).content.decode()
    assert "data-live" not in fragment and "Sent" in fragment
    # A plain member is refused the list; an outsider gets the 404 page.
    assert signed_in(member_of(project)).get(live).status_code == 403
    assert signed_in(outsider).get(live).status_code == 404


@pytest.mark.parametrize(
    ("days_before", "days_after", "period"),
    [(3, 2, "project"), (400, 30, "project"), (20, 40, "monthly"), (30, -5, "project"), (-3, 20, "project")],
    ids=["short", "longer-than-a-year", "monthly", "ended", "not-started"],
)
def test_it_draws_the_chart_for_any_budget_period(owner, project, days_before, days_after, period):
    allocation = fund(project, days_before=days_before, days_after=days_after)
    allocation.pool.period = period
    allocation.pool.save()
    spend(project, owner, "4.00", days_ago=2)
    response = signed_in(owner).get(page_of(project))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="budget-summary"' in body
    if days_before > 0:
        chart = body[body.index('<svg id="budget-chart"') : body.index("</svg>")]
        assert not re.search(r"\b(nan|inf|infinity)\b", chart, re.I)
        assert re.search(r'class="chart-spend" d="M[0-9.]+,[0-9.]+( L[0-9.]+,[0-9.]+)+"', chart)
    else:
        assert 'id="budget-chart"' not in body


def test_the_chart_places_spend_allocation_and_projection():
    from datetime import date, datetime

    from console.views.project_chart import HEIGHT, budget_chart

    chart = budget_chart(
        daily=[(date(2026, 3, 1), Decimal("10")), (date(2026, 3, 2), Decimal("20")), (date(2026, 3, 3), Decimal("5"))],
        carried=Decimal(0),
        start=date(2026, 3, 1),
        end=date(2026, 3, 10),
        now=datetime(2026, 3, 3, 12, 0),
        today=date(2026, 3, 3),
        allocation=Decimal("100"),
        spent=Decimal("35"),
        burn=Decimal("10"),
    )
    assert [day.cumulative for day in chart.days] == [Decimal(10), Decimal(30), Decimal(35)]
    assert chart.projected == Decimal("35") + Decimal("10") * Decimal("7.5")
    x1, y1, x2, y2 = chart.projection
    assert x1 == chart.today_x and x2 == chart.right_x and y2 < y1  # rising to the right
    assert 0 < chart.allocation_y < HEIGHT and y2 < chart.allocation_y  # 110 projected is above the 100 line
    assert (
        chart.y_ticks[0]["label"] == "$0"
        and chart.x_ticks[0]["label"] == "Mar 1"
        and chart.x_ticks[-1]["label"] == "Mar 10"
    )
    assert "$35.00" in chart.description and "$100.00" in chart.description


def test_it_offers_an_admin_only_the_roles_they_may_grant(owner, project):
    admin = member_of(project, "admin@lab-a.example", role=ProjectRole.ADMIN)
    colleague = member_of(project)
    body = signed_in(admin).get(page_of(project)).content.decode()
    # The owner ranks above the admin: no form on their row; the colleague's form offers up to admin.
    owner_row = re.search(r'<tr data-member="owner@lab-a.example".*?</tr>', body, re.S).group(0)
    assert "<form" not in owner_row
    row = re.search(r'<tr data-member="member@lab-a.example".*?</tr>', body, re.S).group(0)
    assert f"/members/{colleague.username}/role" in row
    assert 'value="admin"' in row and 'value="owner"' not in row
    invite = body[body.index('id="invite-form"') : body.index("</form>", body.index('id="invite-form"'))]
    assert 'value="admin"' in invite and 'value="owner"' not in invite
    # The service refuses what the form does not offer.
    client = signed_in(admin)
    response = csrf_post(
        client,
        f"/projects/{project.pk}/members/{colleague.username}/role",
        {"role": "owner"},
        from_page=page_of(project),
    )
    assert "above your own" in shown_after(client, response)
    assert ProjectMember.objects.get(project=project, user=colleague).role == ProjectRole.MEMBER
