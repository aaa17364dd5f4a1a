"""/api/v1/docs/ works on a machine without internet: Swagger UI and its assets come from Carrel itself
(drf-spectacular-sidecar's static files). Headless Chromium loads the page with every request to another host
aborted and must still show the operations."""

from urllib.parse import urlsplit

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.conftest import make_user
from tests.console.conftest import needs_chromium

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), needs_chromium]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; the test's ORM calls stay synchronous."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def session_cookie(user, base_url: str) -> dict:
    """A signed-in session for `user`, as the cookie a browser would hold after the login form."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}


def test_it_renders_the_api_docs_with_the_network_cut(live_server, browser):
    user = make_user("reader@lab-a.example")
    server = urlsplit(live_server.url).netloc
    aborted: list[str] = []
    failed: list[str] = []

    def only_the_server(route):
        if urlsplit(route.request.url).netloc == server:
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort("internetdisconnected")

    context = browser.new_context()
    context.add_cookies([session_cookie(user, live_server.url)])
    page = context.new_page()
    page.route("**/*", only_the_server)
    page.on("requestfailed", lambda request: failed.append(f"{request.url} ({request.failure})"))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    response = page.goto(f"{live_server.url}/api/v1/docs/")
    assert response is not None and response.status == 200
    try:
        operation = page.locator(".opblock", has_text="/api/v1/instances").first
        expect(operation).to_be_visible(timeout=20_000)
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Carrel API")
    except AssertionError as error:
        raise AssertionError(
            f"Swagger UI did not render offline: {error}\n"
            f"aborted (outside the server): {aborted}\nfailed: {failed}\npage errors: {errors}"
        ) from error
    assert page.locator(".opblock").count() > 10
    assert aborted == [], f"the docs page asked the internet for: {aborted}"
    assert failed == [], f"requests that failed: {failed}"
    context.close()
