"""The idle warning's snooze button in headless Chromium against the live server: on the home page with
JavaScript off (a plain form), and on the workspace page; the warning goes, the snooze holds, the page says so."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from idle.models import IdleEvent, WorkspaceIdle
from tests.conftest import make_org, make_project, make_user
from tests.console.conftest import browser, needs_chromium  # noqa: F401 (fixture)
from tests.idle.policy_support import idle_workspace, quiet_for, warned

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), needs_chromium]

WAIT_MS = 15_000


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; the test's ORM calls stay synchronous."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def session_cookie(user, base_url: str) -> dict:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": base_url,
    }


@pytest.fixture
def warned_box():
    owner = make_user("researcher@lab-a.example")
    project = make_project(make_org("Lab A", owner), "Genomics", owner)
    workspace = idle_workspace(project, owner, "gpu-box")
    quiet_for(workspace, 55)
    warned(workspace)
    return owner, workspace


@pytest.mark.parametrize("javascript", [False, True], ids=["without JavaScript", "with JavaScript"])
def test_it_snoozes_from_the_home_pages_banner(live_server, browser, warned_box, javascript):  # noqa: F811
    owner, workspace = warned_box
    context = browser.new_context(java_script_enabled=javascript)
    try:
        context.add_cookies([session_cookie(owner, live_server.url)])
        page = context.new_page()
        page.goto(f"{live_server.url}/", timeout=WAIT_MS)
        banner = page.locator(f'[data-idle-warning="{workspace.pk}"]')
        expect(banner).to_contain_text("will be hibernated", timeout=WAIT_MS)
        with page.expect_navigation(timeout=WAIT_MS):
            banner.get_by_role("button", name="Snooze for an hour").click()
        assert page.url.rstrip("/") == live_server.url
        expect(page.locator(".messages")).to_contain_text("Snoozed: gpu-box", timeout=WAIT_MS)
        expect(page.locator("[data-idle-warning]")).to_have_count(0)
    finally:
        context.close()
    state = WorkspaceIdle.objects.get(workspace=workspace)
    assert state.warned_at is None and state.snoozed_until > timezone.now() + timedelta(minutes=55)
    assert IdleEvent.objects.filter(workspace=workspace, kind="snoozed", actor=owner).count() == 1


def test_it_snoozes_from_the_workspace_pages_banner(live_server, browser, warned_box):  # noqa: F811
    owner, workspace = warned_box
    context = browser.new_context()
    try:
        context.add_cookies([session_cookie(owner, live_server.url)])
        page = context.new_page()
        page.goto(f"{live_server.url}/workspaces/{workspace.pk}/", timeout=WAIT_MS)
        with page.expect_navigation(timeout=WAIT_MS):
            page.locator(f"#snooze-{workspace.pk}").click()
        assert page.url.endswith(f"/workspaces/{workspace.pk}/")
        expect(page.locator("#idle-status")).to_contain_text("Snoozed until", timeout=WAIT_MS)
        expect(page.locator("[data-idle-warning]")).to_have_count(0)
        expect(page.locator("#idle-events")).to_contain_text("Snoozed by researcher@lab-a.example")
    finally:
        context.close()
    assert WorkspaceIdle.objects.get(workspace=workspace).snoozed_until is not None
