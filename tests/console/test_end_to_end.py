"""The console end to end, in headless Chromium against the live server, with a real Celery worker and the moto
server as the cloud: a researcher signs in through the login form, launches a workspace from the launch page and
watches it reach running, stops it and sees its cost; an over-budget launch is refused on the form; a
collaborator invited from the project page follows the e-mailed link, signs up and accepts; a token created on
the tokens page works against the API until it is revoked there.

Each stage leaves a screenshot in the test's tmp_path (shots/); a stage that fails reports the page's address and
text and the worker's log."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from budgets.models import Allocation, BudgetPool
from invitations.models import Invitation
from projects.models import ProjectMember
from tests.console.conftest import needs_chromium
from tests.console.e2e_support import (
    WAIT_MS,
    WORKER_WAIT_MS,
    Story,
    api_get,
    invitation_link,
    sign_in,
    verified,
    wait_for_state,
)
from tests.support import celery_worker, wait_until
from tests.workspaces.conftest import cloud_instances
from workspaces.models import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), needs_chromium]

INVITEE = "new.collaborator@partner.example"
MONEY = re.compile(r"^<?\$\d[\d,]*\.\d{2}$")  # the money filter: "$1,234.56", or "<$0.01" for a few seconds' run


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; the test's own ORM reads and writes are still
    synchronous and between browser calls, so Django may allow them."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def worker_env(live_server, mail_dir) -> dict:
    return {
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "CARREL_PUBLIC_URL": live_server.url,
        "CARREL_LAUNCH_POLL_SECONDS": "2",
    }


def fill_launch_form(page, project, *, template: str, size: str, name: str) -> None:
    """Pick the project, template and size (each change refreshes the form from the server: wait for it to
    settle before the next), then the name, last, so a refresh cannot wipe it."""
    form = page.locator("#launch-form")
    page.wait_for_selector("#launch-form", timeout=WAIT_MS)
    settled = "() => !document.getElementById('launch-form').hasAttribute('aria-busy')"
    if page.input_value("#id_project") != str(project.pk):
        page.select_option("#id_project", str(project.pk))
        page.wait_for_function(settled, timeout=WAIT_MS)
    radio = page.locator(f"input[name=template][value='{template}']")
    if not radio.is_checked():
        radio.check()
        page.wait_for_function(settled, timeout=WAIT_MS)
    radio = page.locator(f"input[name=size][value='{size}']")
    if not radio.is_checked():
        radio.check()
        page.wait_for_function(settled, timeout=WAIT_MS)
    page.fill("#id_name", name)
    expect(page.locator("#id_project")).to_have_value(str(project.pk))
    expect(form.locator(f"input[name=template][value='{template}']")).to_be_checked()
    expect(form.locator(f"input[name=size][value='{size}']")).to_be_checked()
    expect(page.locator("#id_name")).to_have_value(name)


def test_it_launches_watches_running_stops_shows_the_cost_and_refuses_an_over_budget_launch(
    owner, project, account, ec2, live_server, browser, tmp_path
):
    verified(owner)
    story = Story(tmp_path / "shots", worker_log=tmp_path / "worker.log")
    page = story.watch(browser.new_page(viewport={"width": 1280, "height": 800}))
    with celery_worker(tmp_path, **worker_env(live_server, tmp_path / "mail")):
        with story.stage("sign-in", page):
            sign_in(page, live_server.url, owner)
            expect(page.locator("#my-projects")).to_contain_text(project.name, timeout=WAIT_MS)

        with story.stage("launch-form", page):
            page.goto(f"{live_server.url}/launch/")
            fill_launch_form(page, project, template="python-machine-learning", size="S", name="e2e-box")
            expect(page.locator("#launch-price")).to_contain_text("$0.1700", timeout=WAIT_MS)  # size S: c5.xlarge
            with page.expect_navigation(timeout=WAIT_MS):
                page.click("#launch-submit")
            assert re.search(r"/workspaces/[^/]+/$", page.url), f"the launch did not lead to its workspace: {page.url}"
            workspace = Workspace.objects.get(project=project, name="e2e-box")
            assert page.url == f"{live_server.url}/workspaces/{workspace.pk}/"
            assert workspace.size == "S"
            page.wait_for_selector("#workspace-state [data-state]", timeout=WAIT_MS)
            first_state, progress_shown = page.evaluate(
                """() => [document.querySelector('#workspace-state [data-state]').dataset.state,
                          document.querySelector('#launch-progress') !== null]"""
            )
            if first_state != "running":  # the usual case: the page follows the job's steps live
                assert progress_shown, f"the workspace is {first_state} but the page shows no #launch-progress"

        with story.stage("running", page):
            wait_for_state(page, "running")
            page.wait_for_selector("#connect-panel", timeout=WAIT_MS)  # the page reloads once the state settles
            workspace.refresh_from_db()
            assert workspace.state == "running" and workspace.provider_instance_id
            ssh = page.inner_text("#ssh-command").strip()
            assert ssh.startswith("ssh ") and (workspace.public_ip or workspace.private_ip) in ssh, ssh
            assert [i["InstanceId"] for i in cloud_instances(ec2, states=("running",))] == [
                workspace.provider_instance_id
            ]

        with story.stage("stopped", page):
            with page.expect_navigation(timeout=WAIT_MS):
                page.click("#workspace-actions button[name=action][value=stop]")
            wait_for_state(page, "stopped")
            expect(page.locator("#connect-panel")).to_have_count(0, timeout=WAIT_MS)
            expect(page.locator("#workspace-actions button[name=action][value=start]")).to_be_visible(timeout=WAIT_MS)
            wait_until(
                lambda: Workspace.objects.get(pk=workspace.pk).state == "stopped",
                what="the workspace to be stopped in the database",
                log_path=tmp_path / "worker.log",
            )
            assert cloud_instances(ec2, states=("stopped",))[0]["InstanceId"] == workspace.provider_instance_id

        with story.stage("cost", page):
            cost = page.inner_text("#workspace-cost", timeout=WAIT_MS).strip()
            assert MONEY.match(cost), f"#workspace-cost is not a money figure: {cost!r}"

    # The project gets a tiny allocation: a launch's first hours no longer fit, and the form says so.
    pool = BudgetPool.objects.create(
        organization=project.organization,
        name="Seed grant",
        total_amount=Decimal("100"),
        start_date=datetime(2020, 1, 1, tzinfo=UTC),
        end_date=datetime(2040, 1, 1, tzinfo=UTC),
    )
    Allocation.objects.create(pool=pool, project=project, amount=Decimal("0.01"))
    with story.stage("home-and-budget", page):
        page.goto(f"{live_server.url}/")
        row = page.locator('#my-workspaces tr[data-workspace="e2e-box"]')
        expect(row.locator('[data-state="stopped"]')).to_have_count(1, timeout=WAIT_MS)
        assert MONEY.match(row.locator(".workspace-cost").inner_text().strip()), row.inner_text()
        page.goto(f"{live_server.url}/projects/{project.pk}/")
        expect(page.locator("#budget-summary")).to_contain_text("$0.01", timeout=WAIT_MS)
        expect(page.locator("svg#budget-chart")).to_be_visible(timeout=WAIT_MS)
    with story.stage("over-budget", page):
        page.goto(f"{live_server.url}/launch/")
        fill_launch_form(page, project, template="python-machine-learning", size="S", name="e2e-over-budget")
        expect(page.locator("#launch-whatif")).to_contain_text("$0.01", timeout=WAIT_MS)
        with page.expect_navigation(timeout=WAIT_MS):
            page.click("#launch-submit")
        assert page.url == f"{live_server.url}/launch/", f"an over-budget launch left the form: {page.url}"
        refusal = page.locator("#error-size, #error-price")
        expect(refusal.first).to_be_visible(timeout=WAIT_MS)
        assert "budget" in refusal.first.inner_text().lower(), refusal.first.inner_text()
        expect(page.locator("#id_name")).to_have_value("e2e-over-budget")  # the form keeps what was chosen
        assert not Workspace.objects.filter(name="e2e-over-budget").exists()
        assert Workspace.objects.filter(project=project).count() == 1
    story.assert_no_browser_errors()


def test_it_invites_a_collaborator_who_follows_the_email_signs_up_and_accepts(
    owner, project, live_server, browser, tmp_path
):
    verified(owner)
    mail_dir = tmp_path / "mail"
    story = Story(tmp_path / "shots", worker_log=tmp_path / "worker.log")
    page = story.watch(browser.new_page(viewport={"width": 1280, "height": 800}))
    with celery_worker(tmp_path, **worker_env(live_server, mail_dir)):
        with story.stage("sign-in", page):
            sign_in(page, live_server.url, owner)

        with story.stage("invite", page):
            page.goto(f"{live_server.url}/projects/{project.pk}/")
            page.fill("#invite-form #id_email", INVITEE)
            page.select_option("#invite-form #id_role", "member")
            page.fill("#invite-form #id_message", "Welcome to the genomics work")
            with page.expect_navigation(timeout=WAIT_MS):
                page.click("#invite-submit")
            row = page.locator(f'table#invitations tr[data-email="{INVITEE}"]')
            expect(row).to_have_count(1, timeout=WAIT_MS)
            expect(row.locator(".invitation-status")).to_contain_text(re.compile("pending", re.I), timeout=WAIT_MS)
            invitation = Invitation.objects.get(project=project, email=INVITEE)
            assert invitation.role == "member"
            # The e-mail column follows the worker live: queued, then sent.
            expect(row.locator(".invitation-delivery")).to_contain_text(
                re.compile("sent", re.I), timeout=WORKER_WAIT_MS
            )
            assert Invitation.objects.get(pk=invitation.pk).delivery_status == "sent"

    link = invitation_link(mail_dir, INVITEE, live_server.url)
    context = browser.new_context(viewport={"width": 390, "height": 844})  # the invitee, on a phone
    try:
        guest = story.watch(context.new_page())
        with story.stage("invitee-signs-up", guest):
            guest.goto(link)
            guest.click("#signup")
            expect(guest.locator("input[name=email]")).to_have_value(INVITEE, timeout=WAIT_MS)
            guest.fill("input[name=password1]", "a long passphrase for carrel 42")
            guest.fill("input[name=password2]", "a long passphrase for carrel 42")
            guest.press("input[name=password2]", "Enter")
            guest.wait_for_selector("#accept", timeout=WAIT_MS)

        with story.stage("invitee-accepts", guest):
            guest.click("#accept")
            guest.wait_for_selector("#invitation-accepted", timeout=WAIT_MS)
            member = ProjectMember.objects.get(project=project, user__email=INVITEE)
            assert member.role == "member"
            assert Invitation.objects.get(pk=invitation.pk).status == "accepted"

        with story.stage("invitee-home", guest):
            guest.goto(f"{live_server.url}/")
            expect(guest.locator("#my-projects")).to_contain_text(project.name, timeout=WAIT_MS)
            expect(guest.locator("#my-invitations")).to_have_count(0)  # nothing left to accept
    finally:
        context.close()

    with story.stage("owner-sees-accepted", page):
        page.goto(f"{live_server.url}/projects/{project.pk}/")
        row = page.locator(f'table#invitations tr[data-email="{INVITEE}"]')
        expect(row.locator(".invitation-status")).to_contain_text(re.compile("accepted", re.I), timeout=WAIT_MS)
        expect(page.locator("body")).to_contain_text(INVITEE)
    story.assert_no_browser_errors()


def test_it_creates_a_token_that_works_until_it_is_revoked_on_the_page(owner, project, live_server, browser, tmp_path):
    verified(owner)
    story = Story(tmp_path / "shots")
    page = story.watch(browser.new_page(viewport={"width": 1280, "height": 800}))
    with story.stage("sign-in", page):
        sign_in(page, live_server.url, owner)

    with story.stage("token-created", page):
        page.goto(f"{live_server.url}/tokens/")
        page.fill("#token-form #id_name", "e2e-notebook")
        page.check("#token-form input[name=scopes][value=read]")
        with page.expect_navigation(timeout=WAIT_MS):
            page.click("#token-form button[type=submit]")
        secret = page.inner_text("#token-secret", timeout=WAIT_MS).strip()
        assert secret and " " not in secret, secret
        row = page.locator('table#tokens tr[data-token-name="e2e-notebook"]')
        expect(row.locator(".token-status")).to_contain_text("active", timeout=WAIT_MS)

    status, body = api_get(live_server.url, "/api/v1/projects", secret)
    assert status == 200, body
    assert project.name in str(body), body

    with story.stage("token-revoked", page):
        page.goto(f"{live_server.url}/tokens/")
        assert page.locator("#token-secret").count() == 0  # the secret is shown once
        with page.expect_navigation(timeout=WAIT_MS):
            row.locator("form.revoke-form button[type=submit]").click()
        if page.locator("#confirm-revoke").count():  # the tokens page asks before it revokes
            with page.expect_navigation(timeout=WAIT_MS):
                page.click("#confirm-revoke")
        expect(row.locator(".token-status")).to_contain_text("revoked", timeout=WAIT_MS)

    status, body = api_get(live_server.url, "/api/v1/projects", secret)
    assert status == 401, (status, body)
    story.assert_no_browser_errors()
