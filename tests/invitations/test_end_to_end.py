"""An invitation e-mailed by a real Celery worker, followed in headless Chromium by a new user who signs
up, verifies and accepts: they end as a member of the project at the invited role."""

import email
import re
import shutil

import pytest
from allauth.account.models import EmailAddress

from invitations.models import Invitation
from projects.models import ProjectMember
from tests.conftest import bearer_client
from tests.support import celery_worker, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INVITEE = "new.collaborator@partner.example"


def sent_messages(mail_dir) -> list[email.message.Message]:
    return [email.message_from_bytes(path.read_bytes()) for path in sorted(mail_dir.glob("*.log"))]


def text_part(message: email.message.Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text part")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_an_emailed_invitation_brings_a_new_user_into_the_project(owner, project, live_server, tmp_path):
    from playwright.sync_api import sync_playwright

    mail_dir = tmp_path / "mail"
    with celery_worker(
        tmp_path,
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail_dir),
        CARREL_PUBLIC_URL=live_server.url,
    ):
        response = bearer_client(owner).post(
            "/api/v1/invitations/send",
            {"project_id": project.id, "email": INVITEE, "role": "admin", "message": "Welcome aboard"},
            format="json",
        )
        assert response.status_code == 201
        invitation_id = response.json()["id"]
        wait_until(
            lambda: Invitation.objects.get(pk=invitation_id).delivery_status == "sent",
            what="the worker to send the e-mail",
            log_path=tmp_path / "worker.log",
        )

    [message] = sent_messages(mail_dir)
    assert message["To"] == INVITEE
    body = text_part(message)
    assert "Genomics" in body and "admin" in body and "Welcome aboard" in body
    link = re.search(r"(http://\S+/invitations/accept/[A-Za-z0-9_-]+/)", body).group(1)
    assert link.startswith(live_server.url)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(link)
            assert page.url == f"{live_server.url}/invitations/accept/"  # the token left the address bar
            assert "Genomics" in page.inner_text("#invitation-project")
            assert page.inner_text("#invitation-role") == "admin"

            page.click("#signup")
            assert page.input_value("input[name=email]") == INVITEE
            page.fill("input[name=password1]", "a long passphrase for carrel 42")
            page.fill("input[name=password2]", "a long passphrase for carrel 42")
            page.press("input[name=password2]", "Enter")
            page.wait_for_selector("#accept")
            page.click("#accept")
            page.wait_for_selector("#invitation-accepted")
            page.screenshot(path=str(tmp_path / "accepted.png"))
        finally:
            browser.close()

    member = ProjectMember.objects.get(project=project, user__email=INVITEE)
    assert member.role == "admin"
    assert EmailAddress.objects.get(email=INVITEE).verified
    assert Invitation.objects.get(pk=invitation_id).status == "accepted"
