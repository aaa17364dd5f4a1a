"""The accept page: distinct answers for bad links, POST-only answers, no token in Referer or the URL bar."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from invitations import services
from invitations.models import Invitation
from platform_site.errors import CarrelError
from projects.models import ProjectMember
from tests.invitations.test_api import INVITEE, verified_user


@pytest.fixture
def invitation(owner, project):
    return services.invitation_send(actor=owner, project=project, email=INVITEE, role="viewer", message="Hi!")


def open_link(client: Client, invitation: Invitation):
    token = services.invitation_token(invitation)
    response = client.get(f"/invitations/accept/{token}/")
    assert response.status_code == 302
    assert response["Location"] == "/invitations/accept/"  # the token leaves the address bar
    assert response["Referrer-Policy"] == "no-referrer"
    return client.get("/invitations/accept/")


def test_an_anonymous_visitor_sees_the_invitation_and_is_sent_to_sign_up(invitation):
    page = open_link(Client(), invitation)
    assert page.status_code == 200
    assert page["Referrer-Policy"] == "same-origin"  # and the page's own URL holds no token
    html = page.content.decode()
    assert "Genomics" in html and "viewer" in html and "owner@lab-a.example" in html and "Hi!" in html
    assert f"/accounts/signup/?email={INVITEE.replace('@', '%40')}&amp;next=%2Finvitations%2Faccept%2F" in html
    assert services.invitation_token(invitation) not in html


def test_signing_up_from_the_link_verifies_the_address_and_comes_back(invitation):
    browser = Client()
    open_link(browser, invitation)
    signup_page = browser.get("/accounts/signup/", {"email": INVITEE, "next": "/invitations/accept/"})
    assert f'value="{INVITEE}"' in signup_page.content.decode()
    response = browser.post(
        "/accounts/signup/?next=/invitations/accept/",
        {
            "email": INVITEE,
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
            "next": "/invitations/accept/",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/invitations/accept/"
    page = browser.get("/invitations/accept/")
    assert b'id="accept"' in page.content
    accepted = browser.post("/invitations/accept/", {"action": "accept"})
    assert b"You joined Genomics" in accepted.content
    assert ProjectMember.objects.get(project=invitation.project, user__email=INVITEE).role == "viewer"


def test_a_get_never_accepts(invitation):
    guest = verified_user(INVITEE)
    browser = Client()
    browser.force_login(guest)
    for _ in range(3):
        open_link(browser, invitation)
    invitation.refresh_from_db()
    assert invitation.status == "pending"


def test_accepting_needs_csrf(invitation):
    guest = verified_user(INVITEE)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(guest)
    open_link(browser, invitation)
    assert browser.post("/invitations/accept/", {"action": "accept"}).status_code == 403
    invitation.refresh_from_db()
    assert invitation.status == "pending"


def test_decline_from_the_page(invitation):
    guest = verified_user(INVITEE)
    browser = Client()
    browser.force_login(guest)
    open_link(browser, invitation)
    page = browser.post("/invitations/accept/", {"action": "decline", "reason": "busy"})
    assert b"Invitation declined" in page.content
    invitation.refresh_from_db()
    assert invitation.status == "declined" and invitation.decline_reason == "busy"


def test_bad_links_get_distinct_answers(invitation, owner):
    browser = Client()
    browser.get("/invitations/accept/not-a-real-token/")
    assert browser.get("/invitations/accept/").status_code == 404

    guest = verified_user(INVITEE)
    services.invitation_accept(actor=guest, invitation=invitation)
    assert open_link(Client(), invitation).status_code == 409

    second = services.invitation_send(actor=owner, project=invitation.project, email="two@partner.example")
    services.invitation_revoke(actor=owner, invitation=second)
    revoked = open_link(Client(), second)
    assert revoked.status_code == 410 and b"revoked" in revoked.content

    third = services.invitation_send(actor=owner, project=invitation.project, email="three@partner.example")
    Invitation.objects.filter(pk=third.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = open_link(Client(), third)
    assert expired.status_code == 410 and b"expired" in expired.content


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_accepts_let_exactly_one_through(owner, project):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (CI runs it)")
    invitation = services.invitation_send(actor=owner, project=project, email=INVITEE, role="member")
    guest = verified_user(INVITEE)
    token = services.invitation_token(invitation)
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def accept():
        from django.db import connections

        try:
            barrier.wait()
            services.invitation_accept(actor=guest, invitation=invitation, token=token)
            result = "accepted"
        except CarrelError as error:
            result = error.code
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=accept) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["INVITATION_ALREADY_ACCEPTED"] * 19 + ["accepted"]
    assert ProjectMember.objects.filter(project=project, user=guest).count() == 1
    assert Invitation.objects.get(pk=invitation.pk).status == "accepted"


# --- What the session keeps -------------------------------------------------------------------------


def session_rows() -> list[str]:
    """Every stored session, decoded, as text (the session table is what database access and backups expose)."""
    from django.contrib.sessions.models import Session

    return [f"{session.session_data} {session.get_decoded()!r}" for session in Session.objects.all()]


def test_it_keeps_no_raw_token_in_the_session_table(invitation):
    token = services.invitation_token(invitation)
    browser = Client()
    assert open_link(browser, invitation).status_code == 200
    rows = session_rows()
    assert rows  # the visit was remembered...
    assert all(token not in row for row in rows)  # ...without the token
    # Not after signing up and accepting either.
    browser.post(
        "/accounts/signup/?next=/invitations/accept/",
        {"email": INVITEE, "password1": "a long passphrase 42", "password2": "a long passphrase 42"},
    )
    assert all(token not in row for row in session_rows())
    assert b"You joined Genomics" in browser.post("/invitations/accept/", {"action": "accept"}).content
    assert all(token not in row for row in session_rows())


def test_it_keeps_no_raw_token_for_a_logged_in_visitor(invitation):
    token = services.invitation_token(invitation)
    browser = Client()
    browser.force_login(verified_user(INVITEE))
    assert open_link(browser, invitation).status_code == 200
    assert session_rows() and all(token not in row for row in session_rows())


def test_it_stops_a_remembered_link_once_the_invitation_is_resent(invitation, owner):
    browser = Client()
    browser.force_login(verified_user(INVITEE))
    open_link(browser, invitation)
    services.invitation_resend(actor=owner, invitation=invitation)
    assert browser.get("/invitations/accept/").status_code == 404
    assert browser.post("/invitations/accept/", {"action": "accept"}).status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == "pending"


def test_it_opens_nothing_with_a_tampered_session(invitation, owner):
    from invitations.views import SESSION_KEY

    other = services.invitation_send(actor=owner, project=invitation.project, email="other@partner.example")
    browser = Client()
    open_link(browser, invitation)
    session = browser.session
    session[SESSION_KEY] = {"id": other.pk, "proof": session[SESSION_KEY]["proof"]}
    session.save()
    assert browser.get("/invitations/accept/").status_code == 404
    session[SESSION_KEY] = {"id": other.pk, "proof": other.token_hash}  # what the database holds is no proof
    session.save()
    assert browser.get("/invitations/accept/").status_code == 404


def test_it_lets_any_account_accept_from_the_link_when_allowed(invitation, settings):
    stranger = verified_user("someone-else@partner.example")
    browser = Client()
    browser.force_login(stranger)
    open_link(browser, invitation)
    refused = browser.post("/invitations/accept/", {"action": "accept"})
    assert refused.status_code == 403 and b"another e-mail address" in refused.content
    settings.CARREL_INVITATIONS_ALLOW_ANY_ACCOUNT = True
    assert b"You joined Genomics" in browser.post("/invitations/accept/", {"action": "accept"}).content
    assert ProjectMember.objects.get(project=invitation.project, user=stranger).role == "viewer"


def test_it_converts_a_session_that_holds_a_raw_token_from_before(invitation):
    from invitations.views import LEGACY_SESSION_KEY

    token = services.invitation_token(invitation)
    browser = Client()
    session = browser.session
    session[LEGACY_SESSION_KEY] = token
    session.save()
    page = browser.get("/invitations/accept/")
    assert page.status_code == 200 and b"Genomics" in page.content
    assert all(token not in row for row in session_rows())
