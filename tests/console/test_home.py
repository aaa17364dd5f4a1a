"""The console's home page: my workspaces with state and cost, my projects with budget, burn and runway, the
invitations waiting for me, and a first step for a person in no project."""

from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from budgets.models import Allocation, BudgetPool
from budgets.selectors_burn import project_burns
from invitations.models import Invitation
from invitations.services import invitation_send
from projects.models import Project, ProjectMember
from tests.conftest import add_org_member, make_org, make_project, make_user
from tests.console.conftest import add_crowd, signed_in
from tests.support import record_cost
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def fund(project, amount="100.00") -> Allocation:
    now = timezone.now()
    pool = BudgetPool.objects.create(
        organization=project.organization,
        name=f"Grant {project.pk}",
        total_amount=Decimal("1000"),
        start_date=now - timedelta(days=30),
        end_date=now + timedelta(days=60),
    )
    return Allocation.objects.create(pool=pool, project=project, amount=Decimal(amount))


def spend(project, owner, amount: str, *, days_ago: int = 1) -> Workspace:
    workspace = Workspace.objects.create(
        organization=project.organization, project=project, owner=owner, name=f"spent-{days_ago}", state="stopped"
    )
    start = timezone.now() - timedelta(days=days_ago)
    record_cost(
        organization=project.organization,
        project=project,
        workspace=workspace,
        kind="compute",
        item="t3.medium",
        start=start,
        end=start + timedelta(hours=1),
        day=timezone.localtime(start).date(),
        quantity=Decimal(3600),
        unit="seconds",
        rate=Decimal(amount) / 1,
        amount=Decimal(amount),
    )
    return workspace


def test_it_welcomes_a_visitor_who_is_not_signed_in(db):
    response = Client().get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "/accounts/login/" in body and "/accounts/signup/" in body
    assert "console/carrel.css" in body


def test_it_shows_my_workspaces_with_state_and_cost(owner, project):
    workspace = spend(project, owner, "1.25")
    Workspace.objects.filter(pk=workspace.pk).update(name="genomics-box")
    body = signed_in(owner).get("/").content.decode()
    assert 'data-workspace="genomics-box"' in body
    assert 'data-state="stopped"' in body
    assert "$1.25" in body
    assert f"/workspaces/{workspace.pk}/" in body


def test_it_leaves_out_other_peoples_workspaces_and_terminated_ones(owner, project):
    colleague = make_user("colleague@lab-a.example")
    add_org_member(project.organization, colleague)
    ProjectMember.objects.create(project=project, user=colleague, role="member")
    Workspace.objects.create(
        organization=project.organization, project=project, owner=colleague, name="theirs", state="running"
    )
    Workspace.objects.create(
        organization=project.organization, project=project, owner=owner, name="gone", state="terminated"
    )
    body = signed_in(owner).get("/").content.decode()
    assert 'data-workspace="theirs"' not in body and 'data-workspace="gone"' not in body


def test_it_shows_each_projects_budget_burn_and_runway(owner, project):
    fund(project, "100.00")
    spend(project, owner, "14.00", days_ago=2)
    body = signed_in(owner).get("/").content.decode()
    assert "$14.00 of $100.00" in body
    assert "14%" in body
    # $14 over the 7-day window (6 whole days and today so far) is about $2/day.
    burn = project_burns([Project.objects.select_related("organization").get(pk=project.pk)])[project.pk]
    assert Decimal("1.9") < burn.daily_burn < Decimal("2.4")
    assert f"{burn.daily_burn:.2f}/day" in body
    assert burn.remaining == Decimal("86.00")


def test_it_says_plainly_when_a_project_has_no_budget(owner, project):
    body = signed_in(owner).get("/").content.decode()
    assert "No budget allocated" in body


def test_it_shows_a_first_step_to_a_person_in_no_project(db):
    newcomer = make_user("newcomer@lab-b.example")
    body = signed_in(newcomer).get("/").content.decode()
    assert 'id="first-step"' in body
    assert "Ask a project owner to invite" in body and "newcomer@lab-b.example" in body
    assert 'id="project-form"' not in body  # no organization to create a project in


def test_it_lets_an_organization_owner_create_a_first_project(owner, org):
    client = signed_in(owner)
    page = client.get("/")
    assert 'id="project-form"' in page.content.decode()
    response = client.post(
        "/", {"name": "Proteomics", "organization": org.pk, "csrfmiddlewaretoken": page.cookies["csrftoken"].value}
    )
    project = Project.objects.get(name="Proteomics")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/"
    assert ProjectMember.objects.get(project=project, user=owner).role == "owner"


def test_it_shows_project_errors_next_to_the_field(owner, org, project):
    client = signed_in(owner)
    token = client.get("/").cookies["csrftoken"].value
    response = client.post("/", {"name": project.name, "organization": org.pk, "csrfmiddlewaretoken": token})
    assert response.status_code == 400
    assert 'id="error-project-name"' in response.content.decode()


def test_it_refuses_a_project_in_another_organization(owner, project):
    stranger = make_user("stranger@lab-b.example")
    other = make_org("Lab B", stranger)
    client = signed_in(owner)
    token = client.get("/").cookies["csrftoken"].value
    response = client.post("/", {"name": "Intrusion", "organization": other.pk, "csrfmiddlewaretoken": token})
    assert response.status_code == 404
    assert not Project.objects.filter(name="Intrusion").exists()


def test_it_requires_csrf_for_a_new_project(owner, org):
    response = signed_in(owner).post("/", {"name": "No token", "organization": org.pk})
    assert response.status_code == 403
    assert not Project.objects.filter(name="No token").exists()


def invite(owner, project, email: str, message: str = "") -> Invitation:
    EmailAddress.objects.get_or_create(user=owner, email=owner.email, defaults={"verified": True, "primary": True})
    return invitation_send(actor=owner, project=project, email=email, role="member", message=message)


def test_it_lists_invitations_for_me_and_accepts_one(owner, project):
    invitee = make_user("invitee@lab-b.example")
    EmailAddress.objects.create(user=invitee, email=invitee.email, verified=True, primary=True)
    invitation = invite(owner, project, invitee.email, "Join us")
    client = signed_in(invitee)
    page = client.get("/")
    body = page.content.decode()
    assert 'id="my-invitations"' in body and project.name in body and "Join us" in body
    response = client.post(
        f"/home/invitations/{invitation.pk}/accept", {"csrfmiddlewaretoken": page.cookies["csrftoken"].value}
    )
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/"
    assert ProjectMember.objects.get(project=project, user=invitee).role == "member"


def test_it_answers_404_for_an_invitation_addressed_to_someone_else(owner, project, outsider):
    invitation = invite(owner, project, "someone@else.example")
    client = signed_in(outsider)
    token = client.get("/").cookies["csrftoken"].value
    response = client.post(f"/home/invitations/{invitation.pk}/accept", {"csrfmiddlewaretoken": token})
    assert response.status_code == 404
    assert not ProjectMember.objects.filter(project=project, user=outsider).exists()


def test_the_live_fragment_follows_only_while_something_runs_or_changes(owner, project):
    client = signed_in(owner)
    assert "data-live" not in client.get("/home/workspaces").content.decode()
    Workspace.objects.create(
        organization=project.organization, project=project, owner=owner, name="w", state="starting"
    )
    fragment = client.get("/home/workspaces").content.decode()
    assert 'data-live="/home/workspaces"' in fragment and 'data-interval="3000"' in fragment
    assert "<html" not in fragment
    assert Client().get("/home/workspaces").status_code == 403


def test_the_page_keeps_its_query_count_with_1000_workspaces(owner, project, django_assert_max_num_queries):
    fund(project)
    spend(project, owner, "2.00")
    other = make_project(project.organization, "Second", owner)
    fund(other)
    client = signed_in(owner)
    client.get("/")
    with CaptureQueriesContext(connection) as small:
        assert client.get("/").status_code == 200
        assert client.get("/home/workspaces").status_code == 200
    add_crowd(project, owner, count=1000)
    for index in range(5):
        fund(make_project(project.organization, f"More {index}", owner))
    with django_assert_max_num_queries(len(small)):
        body = client.get("/").content.decode()
        assert client.get("/home/workspaces").status_code == 200
    assert "Showing your 50 newest workspaces." in body
