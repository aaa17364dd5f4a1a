"""Invitations cannot be turned into a spam or phishing cannon: only verified accounts invite, sending is limited
per inviter and per organization over 24 hours (counted in the database), bulk requests are capped and refused
whole when they do not fit, and the inviter's message is short plain text in a one-line-subject e-mail."""

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.db import connection
from django.utils import timezone

from accounts.models import OrgRole
from audit.models import AuditEvent
from invitations import services, tasks
from invitations.models import Invitation, InvitationResend
from platform_site.errors import CarrelError, ValidationFailed
from projects.models import Project, ProjectMember, ProjectRole
from tests.conftest import add_org_member, assert_error, bearer_client, make_org, make_project, make_user
from tests.invitations.conftest import verify
from tests.invitations.test_api import send


def bulk(client, project, emails, **extra):
    return client.post(
        "/api/v1/invitations/bulk",
        {"project_id": project.id, "invitations": [{"email": email} for email in emails], **extra},
        format="json",
    )


def emails(count: int, prefix: str = "guest") -> list[str]:
    return [f"{prefix}{number}@partner.example" for number in range(count)]


@pytest.fixture
def delivered(django_capture_on_commit_callbacks):
    """`with delivered(): ...` runs the e-mail tasks queued on commit in-process (work rolled back queues none)."""
    from platform_site.celery import app

    @contextmanager
    def deliver():
        app.conf.task_always_eager = True
        try:
            with django_capture_on_commit_callbacks(execute=True):
                yield
        finally:
            app.conf.task_always_eager = False

    return deliver


def admin_of(org, project, email: str):
    user = verify(make_user(email))
    add_org_member(org, user, OrgRole.MEMBER)
    ProjectMember.objects.create(project=project, user=user, role=ProjectRole.ADMIN)
    return user


# --- Verified inviters only --------------------------------------------------------------------------


@pytest.fixture
def newcomer(db):
    """An account that signed up a minute ago and never confirmed its address, owning its own project."""
    user = make_user("newcomer@fresh.example")
    EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    make_project(make_org("Fresh Lab", user), "Fresh", user)
    return user


def test_it_refuses_invitations_from_an_unverified_account(newcomer):
    project = Project.objects.get(name="Fresh")
    client = bearer_client(newcomer)
    error = assert_error(send(client, project, message="Urgent: log in here"), 403, "EMAIL_NOT_VERIFIED")
    assert "verify" in error["message"].lower()
    assert "/accounts/email/" in error["remediation"]
    assert_error(bulk(client, project, emails(500)[:100]), 403, "EMAIL_NOT_VERIFIED")
    assert Invitation.objects.count() == 0 and len(mail.outbox) == 0


def test_it_refuses_a_resend_from_an_unverified_account(owner, org, project, newcomer):
    invitation = services.invitation_send(actor=owner, project=project, email="guest@partner.example")
    add_org_member(org, newcomer, OrgRole.ADMIN)
    ProjectMember.objects.create(project=project, user=newcomer, role=ProjectRole.ADMIN)
    response = bearer_client(newcomer).post(f"/api/v1/invitations/{invitation.pk}/resend")
    assert_error(response, 403, "EMAIL_NOT_VERIFIED")
    invitation.refresh_from_db()
    assert invitation.resend_count == 0


def test_it_wants_the_accounts_own_address_verified(db):
    user = make_user("main@fresh.example")  # no EmailAddress row at all (e.g. created in the admin)
    project = make_project(make_org("Fresh Lab", user), "Fresh", user)
    assert_error(send(bearer_client(user), project), 403, "EMAIL_NOT_VERIFIED")
    EmailAddress.objects.create(user=user, email="other@fresh.example", verified=True)  # another address
    assert_error(send(bearer_client(user), project), 403, "EMAIL_NOT_VERIFIED")
    verify(user)
    assert send(bearer_client(user), project).status_code == 201


def test_it_answers_404_not_403_for_another_tenants_project(newcomer, project):
    assert_error(send(bearer_client(newcomer), project), 404, "PROJECT_NOT_FOUND")


def test_it_lets_superusers_invite_without_an_address_row(org, project):
    root = make_user("root@carrel.example")
    root.is_staff = root.is_superuser = True
    root.save()
    ProjectMember.objects.create(project=project, user=root, role=ProjectRole.OWNER)
    assert services.invitation_send(actor=root, project=project, email="guest@partner.example").pk


# --- Daily limits ------------------------------------------------------------------------------------


def test_it_limits_each_inviter_per_day(owner_client, project, settings, delivered):
    settings.CARREL_INVITATIONS_PER_INVITER_PER_DAY = 3
    for email in emails(3):
        with delivered():
            assert send(owner_client, project, email=email).status_code == 201
    with delivered():
        response = send(owner_client, project, email="one-too-many@partner.example")
    error = assert_error(response, 429, "INVITATION_RATE_LIMITED")
    assert "0 more" in error["message"] and "3" in error["message"]
    assert 86000 < int(response["Retry-After"]) <= 86400
    assert "Z" in error["details"]  # when the window frees up
    assert not Invitation.objects.filter(email="one-too-many@partner.example").exists()
    assert len(mail.outbox) == 3


def test_it_counts_resends_toward_the_limit(owner_client, project, settings, delivered):
    settings.CARREL_INVITATIONS_PER_INVITER_PER_DAY = 3
    with delivered():
        first = send(owner_client, project, email="a@partner.example").json()["id"]
    for _ in range(2):
        with delivered():
            assert owner_client.post(f"/api/v1/invitations/{first}/resend").status_code == 200
    with delivered():
        response = owner_client.post(f"/api/v1/invitations/{first}/resend")
    assert_error(response, 429, "INVITATION_RATE_LIMITED")
    assert int(response["Retry-After"]) > 0
    assert_error(send(owner_client, project, email="b@partner.example"), 429, "INVITATION_RATE_LIMITED")
    assert Invitation.objects.get(pk=first).resend_count == 2
    assert InvitationResend.objects.count() == 2
    assert len(mail.outbox) == 3


def test_it_limits_each_organization_per_day(owner, owner_client, org, project, settings):
    settings.CARREL_INVITATIONS_PER_ORGANIZATION_PER_DAY = 2
    admin = bearer_client(admin_of(org, project, "admin@lab-a.example"))
    assert send(owner_client, project, email="a@partner.example").status_code == 201
    assert send(admin, project, email="b@partner.example").status_code == 201
    error = assert_error(send(admin, project, email="c@partner.example"), 429, "INVITATION_RATE_LIMITED")
    assert "Lab A" in error["message"]
    # Another organization's budget is its own.
    other_owner = verify(make_user("boss@lab-c.example"))
    other_project = make_project(make_org("Lab C", other_owner), "Oceans", other_owner)
    assert send(bearer_client(other_owner), other_project, email="c@partner.example").status_code == 201


def test_it_counts_across_projects_and_frees_up_after_24_hours(
    owner, owner_client, org, project, settings, monkeypatch
):
    settings.CARREL_INVITATIONS_PER_INVITER_PER_DAY = 2
    second_project = make_project(org, "Proteomics", owner)
    start = timezone.now()
    monkeypatch.setattr("django.utils.timezone.now", lambda: start)
    assert send(owner_client, project, email="a@partner.example").status_code == 201
    monkeypatch.setattr("django.utils.timezone.now", lambda: start + timedelta(hours=2))
    assert send(owner_client, second_project, email="b@partner.example").status_code == 201
    refused = send(owner_client, second_project, email="c@partner.example")
    assert_error(refused, 429, "INVITATION_RATE_LIMITED")
    assert int(refused["Retry-After"]) == 22 * 3600  # when the first one leaves the window
    monkeypatch.setattr("django.utils.timezone.now", lambda: start + timedelta(hours=24, seconds=1))
    assert send(owner_client, second_project, email="c@partner.example").status_code == 201


def test_it_refuses_a_bulk_request_over_the_limit_whole(owner_client, project, settings, delivered):
    settings.CARREL_INVITATIONS_PER_INVITER_PER_DAY = 5
    for email in emails(2, "early"):
        with delivered():
            assert send(owner_client, project, email=email).status_code == 201
    invitations, events, outbox = Invitation.objects.count(), AuditEvent.objects.count(), len(mail.outbox)
    assert outbox == 2

    with delivered():
        response = bulk(owner_client, project, emails(4))
    error = assert_error(response, 429, "INVITATION_RATE_LIMITED")
    assert "3 more" in error["message"] and "needs 4" in error["message"]
    assert int(response["Retry-After"]) > 0
    assert (Invitation.objects.count(), AuditEvent.objects.count()) == (invitations, events)
    assert len(mail.outbox) == outbox  # nothing was sent

    # Rows that would not be sent (bad, duplicate, already invited) do not count.
    with delivered():
        fits = bulk(
            owner_client, project, [*emails(3), "broken-address", "guest0@partner.example", "early0@partner.example"]
        )
    assert fits.status_code == 200, fits.content
    assert fits.json()["summary"] == {"total": 6, "sent": 3, "failed": 1, "skipped": 2}
    assert len(mail.outbox) == outbox + 3


def test_it_says_when_a_bulk_request_is_larger_than_the_limit(owner_client, project, settings):
    settings.CARREL_INVITATIONS_PER_INVITER_PER_DAY = 3
    error = assert_error(bulk(owner_client, project, emails(4)), 429, "INVITATION_RATE_LIMITED")
    assert "smaller requests" in error["remediation"]
    assert Invitation.objects.count() == 0


def test_it_caps_bulk_requests(owner, owner_client, project, settings):
    settings.CARREL_INVITATIONS_PER_INVITER_PER_DAY = settings.CARREL_INVITATIONS_PER_ORGANIZATION_PER_DAY = 1000
    error = assert_error(bulk(owner_client, project, emails(101)), 400, "VALIDATION_ERROR")
    assert "invitations" in error["fields"]
    assert Invitation.objects.count() == 0
    assert bulk(owner_client, project, emails(100)).status_code == 200
    settings.CARREL_INVITATIONS_BULK_MAX = 2
    rows = [{"email": email} for email in emails(3, "more")]
    with pytest.raises(ValidationFailed):
        services.invitation_bulk(actor=owner, project=project, rows=rows)
    assert Invitation.objects.count() == 100


@pytest.mark.django_db(transaction=True)
def test_it_holds_the_limit_under_concurrent_sends(owner, project, settings):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (CI runs it); SQLite serialises them")
    settings.CARREL_INVITATIONS_PER_INVITER_PER_DAY = 3
    barrier = threading.Barrier(10)
    outcomes: list[str] = []
    lock = threading.Lock()

    def invite(number: int):
        from django.db import connections

        try:
            barrier.wait()
            services.invitation_send(actor=owner, project=project, email=f"racer{number}@partner.example")
            result = "sent"
        except CarrelError as error:
            result = error.code
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=invite, args=(number,)) for number in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["INVITATION_RATE_LIMITED"] * 7 + ["sent"] * 3
    assert Invitation.objects.count() == 3


# --- The message and the e-mail -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "x" * 1001,
        "Your account is locked \u202eelif.exe",  # right-to-left override
        "Ring ring\x07",
        "Hidden\x1b[2Jtext",
        "Line\u2028separator",
    ],
)
def test_it_wants_the_message_short_plain_text(owner_client, project, message):
    assert_error(send(owner_client, project, message=message), 400, "VALIDATION_ERROR")
    assert Invitation.objects.count() == 0


def test_it_keeps_the_messages_line_breaks(owner_client, project):
    response = send(owner_client, project, message="Hello,\r\n\tsee you on Monday.\n" + "x" * 900)
    assert response.status_code == 201
    assert Invitation.objects.get().message.startswith("Hello,\n\tsee you on Monday.\n")


def test_it_checks_bulk_messages_too(owner_client, project):
    assert_error(bulk(owner_client, project, emails(2), default_message="Click \u202egnp.exe"), 400, "VALIDATION_ERROR")
    response = owner_client.post(
        "/api/v1/invitations/bulk",
        {
            "project_id": project.id,
            "invitations": [{"email": "a@partner.example", "message": "Bad\x07bell"}, {"email": "b@partner.example"}],
        },
        format="json",
    )
    assert response.status_code == 200
    assert [row["status"] for row in response.json()["results"]] == ["failed", "sent"]


def test_it_shows_the_message_as_plain_text_in_the_email(owner_client, project, delivered):
    message = (
        'Your access expires. <a href="https://evil.example/login">Sign in again</a>\n'
        "https://evil.example/reset <script>alert(1)</script> <b>now</b>"
    )
    with delivered():
        assert send(owner_client, project, message=message).status_code == 201
    [sent] = mail.outbox
    assert message in sent.body  # the text part, verbatim
    html = sent.alternatives[0][0]
    assert html.count("<a ") == 1 and "/invitations/accept/" in html  # only our own link is a link
    assert "evil.example" in html and 'href="https://evil.example' not in html
    assert "&lt;a href=&quot;https://evil.example/login&quot;&gt;" in html
    assert "<script>" not in html and "<b>now</b>" not in html
    assert "not by Carrel" in html and "not by Carrel" in sent.body


def test_it_keeps_the_subject_on_one_line(owner, project):
    invitation = services.invitation_send(actor=owner, project=project, email="guest@partner.example")
    mail.outbox.clear()
    # Names written before they were validated (or around it): line breaks would inject headers.
    Project.objects.filter(pk=project.pk).update(name="Genomics\r\nBcc: victim@evil.example")
    type(owner).objects.filter(pk=owner.pk).update(first_name="Eve\n", last_name="\u202eCEO\tAdmin")
    tasks.send_invitation_email.run(invitation.pk)
    [sent] = mail.outbox
    assert sent.subject.startswith("Eve") and sent.subject.endswith(
        "invited you to Genomics Bcc: victim@evil.example on Carrel"
    )
    assert not {"\r", "\n", "\t", "\u202e"} & set(sent.subject)
    assert sent.bcc == [] and sent.recipients() == ["guest@partner.example"]
    invitation.refresh_from_db()
    assert invitation.delivery_status == "sent"
