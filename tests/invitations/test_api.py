import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Membership, OrgRole
from audit.models import AuditEvent
from invitations import services
from invitations.models import Invitation
from invitations.tasks import expire_invitations_and_memberships
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_user
from tests.invitations.conftest import verify

INVITEE = "guest@partner.example"


def verified_user(email: str):
    user = make_user(email)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def send(client, project, email=INVITEE, role="member", **extra):
    return client.post(
        "/api/v1/invitations/send", {"project_id": project.id, "email": email, "role": role, **extra}, format="json"
    )


def link_token(message) -> str:
    return re.search(r"/invitations/accept/([A-Za-z0-9_-]+)/", message.body).group(1)


@pytest.fixture
def sent(owner_client, project, django_capture_on_commit_callbacks):
    """An invitation whose e-mail went out (tasks run in-process here; the worker test runs a real one)."""
    from platform_site.celery import app

    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = send(owner_client, project, role="admin", message="Join our genomics work")
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 201, response.content
    return Invitation.objects.get(pk=response.json()["id"])


def test_it_sends_an_invitation_with_a_text_and_html_email(sent, project, owner):
    assert sent.status == "pending" and sent.role == "admin"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [INVITEE]
    assert "owner@lab-a.example" in message.body and "Genomics" in message.body and "admin" in message.body
    assert "Join our genomics work" in message.body
    html = message.alternatives[0][0]
    assert "Genomics" in html and "/invitations/accept/" in html
    assert services.token_digest(link_token(message)) == sent.token_hash
    sent.refresh_from_db()
    assert sent.delivery_status == "sent" and sent.delivery_attempts == 1
    assert AuditEvent.objects.filter(action="invitation.send", target_id=sent.pk, ip="127.0.0.1").exists()


def test_the_api_never_returns_the_token(sent, owner_client, project):
    token = link_token(mail.outbox[0])
    for path in (f"/api/v1/invitations/{sent.pk}", f"/api/v1/invitations/project/{project.id}"):
        body = owner_client.get(path).content.decode()
        assert token not in body and sent.token_hash not in body and sent.token_salt not in body
        assert "token" not in owner_client.get(f"/api/v1/invitations/{sent.pk}").json()


def test_the_response_fields_follow_prism(sent, owner_client, project):
    body = owner_client.get(f"/api/v1/invitations/{sent.pk}").json()
    assert {
        "id",
        "project_id",
        "project_name",
        "email",
        "role",
        "invited_by",
        "invited_at",
        "expires_at",
        "status",
        "resend_count",
        "message",
        "accepted_at",
        "decline_reason",
        "last_resent",
    } <= set(body)
    assert body["invited_by"] == "owner@lab-a.example"
    listing = owner_client.get(f"/api/v1/invitations/project/{project.id}").json()
    assert listing["count"] == 1 and listing["invitations"][0]["id"] == sent.pk


def test_it_expires_after_seven_days_by_default(sent):
    assert timedelta(days=6, hours=23) < sent.expires_at - sent.invited_at <= timedelta(days=7)


def test_accept_adds_the_memberships_in_one_go(sent, project):
    guest = verified_user(INVITEE)
    client = bearer_client(guest)
    assert [i["id"] for i in client.get("/api/v1/invitations/me").json()["invitations"]] == [sent.pk]
    response = client.post(f"/api/v1/invitations/{sent.pk}/accept", {}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert response.json()["message"] == "Successfully joined project as admin"
    assert ProjectMember.objects.get(project=project, user=guest).role == "admin"
    assert Membership.objects.get(organization=project.organization, user=guest).role == "member"
    assert AuditEvent.objects.filter(action="invitation.accept", actor=guest).exists()
    # Used: 409. The same link again in the browser: 409 too.
    assert_error(
        client.post(f"/api/v1/invitations/{sent.pk}/accept", {}, format="json"), 409, "INVITATION_ALREADY_ACCEPTED"
    )


def test_decline_records_the_reason(sent):
    guest = verified_user(INVITEE)
    response = bearer_client(guest).post(
        f"/api/v1/invitations/{sent.pk}/decline", {"reason": "On leave until spring"}, format="json"
    )
    assert response.json()["status"] == "declined"
    assert response.json()["decline_reason"] == "On leave until spring"
    sent.refresh_from_db()
    assert sent.status == "declined" and sent.declined_at is not None
    assert AuditEvent.objects.filter(action="invitation.decline").exists()


def test_only_the_invited_verified_address_may_answer(sent, settings):
    stranger = verified_user("someone-else@partner.example")
    client = bearer_client(stranger)
    assert_error(client.post(f"/api/v1/invitations/{sent.pk}/accept", {}, format="json"), 404, "INVITATION_NOT_FOUND")
    token = link_token(mail.outbox[0])
    response = client.post(f"/api/v1/invitations/{sent.pk}/accept", {"token": token}, format="json")
    assert_error(response, 403, "INVITATION_EMAIL_MISMATCH")
    unverified = make_user(INVITEE)
    EmailAddress.objects.create(user=unverified, email=INVITEE, verified=False, primary=True)
    response = bearer_client(unverified).post(f"/api/v1/invitations/{sent.pk}/accept", {"token": token}, format="json")
    assert_error(response, 403, "INVITATION_EMAIL_MISMATCH")

    settings.CARREL_INVITATIONS_ALLOW_ANY_ACCOUNT = True
    assert client.post(f"/api/v1/invitations/{sent.pk}/accept", {"token": token}, format="json").status_code == 200


def test_resend_issues_a_new_link_and_kills_the_old_one(sent, owner_client, django_capture_on_commit_callbacks):
    from platform_site.celery import app

    old_token = link_token(mail.outbox[0])
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post(f"/api/v1/invitations/{sent.pk}/resend")
    finally:
        app.conf.task_always_eager = False
    assert response.json()["resend_count"] == 1 and response.json()["last_resent"]
    new_token = link_token(mail.outbox[1])
    assert new_token != old_token
    with pytest.raises(Exception) as raised:
        services.invitation_by_token(old_token)
    assert raised.value.code == "INVITATION_NOT_FOUND"
    assert services.invitation_by_token(new_token).pk == sent.pk
    assert AuditEvent.objects.filter(action="invitation.resend").exists()


def test_revoke_invalidates_the_link(sent, owner_client):
    assert owner_client.delete(f"/api/v1/invitations/{sent.pk}").status_code == 204
    sent.refresh_from_db()
    assert sent.status == "revoked" and sent.revoked_at
    guest = verified_user(INVITEE)
    response = bearer_client(guest).post(f"/api/v1/invitations/{sent.pk}/accept", {}, format="json")
    assert_error(response, 410, "INVITATION_REVOKED")
    assert_error(owner_client.post(f"/api/v1/invitations/{sent.pk}/resend"), 409, "INVITATION_NOT_PENDING")
    assert AuditEvent.objects.filter(action="invitation.revoke").exists()


def test_expiry_with_a_controlled_clock(sent, monkeypatch):
    guest = verified_user(INVITEE)
    later = timezone.now() + timedelta(days=8)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    response = bearer_client(guest).post(f"/api/v1/invitations/{sent.pk}/accept", {}, format="json")
    assert_error(response, 410, "INVITATION_EXPIRED")
    expire_invitations_and_memberships()
    sent.refresh_from_db()
    assert sent.status == "expired"


def test_access_expiry_ends_the_membership(owner_client, project, monkeypatch):
    until = timezone.now() + timedelta(days=30)
    response = send(owner_client, project, access_expires_at=until.isoformat())
    invitation = Invitation.objects.get(pk=response.json()["id"])
    guest = verified_user(INVITEE)
    bearer_client(guest).post(f"/api/v1/invitations/{invitation.pk}/accept", {}, format="json")
    assert ProjectMember.objects.get(project=project, user=guest).expires_at == until
    expire_invitations_and_memberships()
    assert ProjectMember.objects.filter(project=project, user=guest).exists()
    monkeypatch.setattr("django.utils.timezone.now", lambda: until + timedelta(minutes=1))
    expire_invitations_and_memberships()
    assert not ProjectMember.objects.filter(project=project, user=guest).exists()
    assert AuditEvent.objects.filter(action="project_member.expire").exists()


def test_status_filters(sent, owner_client, project):
    send(owner_client, project, email="second@partner.example")
    owner_client.delete(f"/api/v1/invitations/{sent.pk}")
    for status, expected in (("pending", 1), ("revoked", 1), ("accepted", 0)):
        listing = owner_client.get(f"/api/v1/invitations/project/{project.id}", {"status": status}).json()
        assert listing["count"] == expected, status
    assert_error(owner_client.get(f"/api/v1/invitations/project/{project.id}", {"status": "lost"}), 400)


# --- Rules -------------------------------------------------------------------------------------


def project_person(org, project, email, role):
    user = verify(make_user(email))
    add_org_member(org, user, OrgRole.MEMBER)
    ProjectMember.objects.create(project=project, user=user, role=role)
    return bearer_client(user)


@pytest.mark.parametrize("role,status", [("owner", 201), ("admin", 201), ("member", 403), ("viewer", 403)])
def test_only_owners_and_admins_invite(org, project, role, status):
    client = project_person(org, project, f"{role}-person@lab-a.example", role)
    assert send(client, project, role="viewer").status_code == status


def test_nobody_invites_above_their_own_role(org, project):
    admin = project_person(org, project, "admin@lab-a.example", ProjectRole.ADMIN)
    assert_error(send(admin, project, role="owner"), 403, "ROLE_TOO_HIGH")
    assert send(admin, project, role="admin").status_code == 201


def test_duplicates_and_existing_members_answer_409(owner_client, project, owner):
    assert send(owner_client, project).status_code == 201
    assert_error(send(owner_client, project), 409, "INVITATION_EXISTS")
    assert_error(send(owner_client, project, email=owner.email), 409, "ALREADY_MEMBER")
    assert_error(send(owner_client, project, email="not-an-address"), 400, "VALIDATION_ERROR")
    assert Invitation.objects.count() == 1


def test_bulk_reports_each_row(owner_client, project, owner):
    send(owner_client, project, email="already@partner.example")
    response = owner_client.post(
        "/api/v1/invitations/bulk",
        {
            "project_id": project.id,
            "default_role": "viewer",
            "default_message": "Welcome to the course",
            "invitations": [
                {"email": "student1@uni.example"},
                {"email": "ta@uni.example", "role": "admin", "message": "TA access"},
                {"email": "broken-address"},
                {"email": owner.email},
                {"email": "already@partner.example"},
                {"email": "student1@uni.example"},
                {"email": "boss@uni.example", "role": "emperor"},
            ],
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["summary"] == {"total": 7, "sent": 2, "failed": 2, "skipped": 3}
    statuses = [(row["email"], row["status"]) for row in body["results"]]
    assert statuses == [
        ("student1@uni.example", "sent"),
        ("ta@uni.example", "sent"),
        ("broken-address", "failed"),
        (owner.email, "skipped"),
        ("already@partner.example", "skipped"),
        ("student1@uni.example", "skipped"),
        ("boss@uni.example", "failed"),
    ]
    assert Invitation.objects.get(email="student1@uni.example").role == "viewer"
    ta = Invitation.objects.get(email="ta@uni.example")
    assert ta.role == "admin" and ta.message == "TA access"
    assert Invitation.objects.get(email="student1@uni.example").message == "Welcome to the course"


# --- Tenancy -------------------------------------------------------------------------------------


def test_other_organizations_invitations_answer_404(sent, outsider_client, project):
    for method, path in (
        ("get", f"/api/v1/invitations/{sent.pk}"),
        ("delete", f"/api/v1/invitations/{sent.pk}"),
        ("post", f"/api/v1/invitations/{sent.pk}/resend"),
        ("post", f"/api/v1/invitations/{sent.pk}/accept"),
        ("post", f"/api/v1/invitations/{sent.pk}/decline"),
        ("get", f"/api/v1/invitations/project/{project.id}"),
    ):
        response = getattr(outsider_client, method)(path, {}, format="json")
        assert response.status_code == 404, (method, path)
    assert_error(send(outsider_client, project), 404, "PROJECT_NOT_FOUND")
    assert outsider_client.get("/api/v1/invitations/me").json()["count"] == 0
    sent.refresh_from_db()
    assert sent.status == "pending"


def test_members_below_admin_cannot_list_a_projects_invitations(sent, org, project):
    viewer = project_person(org, project, "viewer@lab-a.example", ProjectRole.VIEWER)
    assert_error(viewer.get(f"/api/v1/invitations/project/{project.id}"), 403, "PERMISSION_DENIED")
    assert_error(viewer.get(f"/api/v1/invitations/{sent.pk}"), 404, "INVITATION_NOT_FOUND")


# --- Secrets --------------------------------------------------------------------------------------


def test_no_plaintext_token_in_the_database_responses_or_logs(
    owner_client, project, caplog, django_capture_on_commit_callbacks
):
    from io import StringIO

    from django.core.management import call_command

    from platform_site.celery import app

    caplog.set_level("DEBUG")
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = send(owner_client, project)
    finally:
        app.conf.task_always_eager = False
    token = link_token(mail.outbox[0])
    dump = StringIO()
    call_command("dumpdata", stdout=dump)
    assert token not in dump.getvalue()
    assert token not in response.content.decode()
    assert token not in caplog.text
    guest = verified_user(INVITEE)
    accepted = APIClient()
    accepted.force_authenticate(guest)
    assert (
        token
        not in accepted.post(
            f"/api/v1/invitations/{response.json()['id']}/accept", {"token": token}, format="json"
        ).content.decode()
    )


class FailingBackend:
    """An SMTP server that is down."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp.example: connection refused")


class DownOnceBackend(FailingBackend):
    """An SMTP server that refuses the first message and accepts the next ones."""

    failures_left = 1

    def send_messages(self, messages):
        if DownOnceBackend.failures_left:
            DownOnceBackend.failures_left -= 1
            super().send_messages(messages)
        mail.outbox.extend(messages)
        return len(messages)


def test_a_failed_send_is_retried_and_visible_on_the_invitation(owner, project, settings, owner_client):
    from celery.signals import task_retry

    from platform_site.celery import app as celery_app

    settings.EMAIL_BACKEND = "tests.invitations.test_api.DownOnceBackend"
    DownOnceBackend.failures_left = 1
    retried = []

    def on_retry(sender=None, reason=None, **kwargs):
        retried.append(reason.when)

    task_retry.connect(on_retry, weak=False)
    celery_app.conf.task_always_eager = True
    try:
        invitation = services.invitation_send(actor=owner, project=project, email=INVITEE)
        from invitations import tasks

        tasks.send_invitation_email.apply(args=[invitation.pk])
    finally:
        celery_app.conf.task_always_eager = False
        task_retry.disconnect(on_retry)
    assert retried == [30]  # the first attempt failed and was retried after 30 s
    body = owner_client.get(f"/api/v1/invitations/{invitation.pk}").json()
    assert body["delivery"]["status"] == "sent" and body["delivery"]["attempts"] == 2
    assert len(mail.outbox) == 1


def test_a_send_that_keeps_failing_is_visible_on_the_invitation(owner, project, settings, owner_client):
    from invitations import tasks

    settings.EMAIL_BACKEND = "tests.invitations.test_api.FailingBackend"
    invitation = services.invitation_send(actor=owner, project=project, email=INVITEE)
    result = tasks.send_invitation_email.apply(args=[invitation.pk], retries=settings.CARREL_INVITATION_SEND_RETRIES)
    assert result.successful()  # the last attempt records the failure instead of retrying
    body = owner_client.get(f"/api/v1/invitations/{invitation.pk}").json()
    assert body["delivery"]["status"] == "failed"
    assert "connection refused" in body["delivery"]["last_error"]


def test_the_admin_resends_and_revokes_through_the_services(owner, project):
    from django.test import Client
    from django.urls import reverse

    root = make_user("root@carrel.example")
    root.is_staff = root.is_superuser = True
    root.save()
    first = services.invitation_send(actor=owner, project=project, email="a@partner.example")
    second = services.invitation_send(actor=owner, project=project, email="b@partner.example")
    browser = Client()
    browser.force_login(root)
    url = reverse("admin:invitations_invitation_changelist")
    browser.post(url, {"action": "resend_selected", "_selected_action": [first.pk]})
    browser.post(url, {"action": "revoke_selected", "_selected_action": [second.pk]})
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.resend_count == 1 and second.status == "revoked"
    assert AuditEvent.objects.filter(action="invitation.revoke", actor=root).exists()
    change = browser.get(reverse("admin:invitations_invitation_change", args=[first.pk])).content.decode()
    assert first.token_hash not in change and first.token_salt not in change
