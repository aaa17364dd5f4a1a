"""Helpers for the console's end-to-end browser test: stages that explain themselves when they fail (the page's
address and text, the worker's log, a screenshot), the login form, the e-mails the worker wrote, and the API
called over HTTP as a script would."""

import email
import json
import re
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from allauth.account.models import EmailAddress

PASSWORD = "correct horse battery staple"  # tests.conftest.make_user's
WAIT_MS = 15_000  # a page's element after a navigation or a form post
WORKER_WAIT_MS = 90_000  # something the worker does (a launch, a stop), followed live by the page


def verified(user):
    """allauth's verified primary address (e-mail verification is mandatory): the person can sign in."""
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    return user


def tail(path: Path | None, chars: int = 6000) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return path.read_text(errors="replace")[-chars:]


def page_text(page) -> str:
    try:
        return page.inner_text("body", timeout=2000)[:6000]
    except Exception as error:  # noqa: BLE001 (the page may be gone; say so instead)
        return f"(the page's text could not be read: {error})"


@dataclass
class Story:
    """One browser story: each stage ends with a screenshot; a stage that fails says where the page was, what it
    showed and what the worker logged."""

    shots: Path
    worker_log: Path | None = None
    stages: list[str] = field(default_factory=list)
    browser_errors: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.shots.mkdir(parents=True, exist_ok=True)

    def watch(self, page):
        """Collect the page's uncaught script errors, console errors and failed loads of assets and fragments (a
        page itself may answer 400 with a form's errors: that is not counted)."""
        errors = self.browser_errors
        page.on("pageerror", lambda error: errors.append(f"{page.url}: uncaught {error}"))
        page.on(
            "console",
            lambda message: (
                message.type == "error"
                and not message.text.startswith("Failed to load resource")  # reported by "response" below
                and errors.append(f"{page.url}: console: {message.text}")
            ),
        )
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and response.request.resource_type != "document"
                and errors.append(f"{page.url}: {response.request.method} {response.url} answered {response.status}")
            ),
        )
        page.on(
            "requestfailed",
            lambda request: (
                "ERR_ABORTED" not in (request.failure or "")  # a poll cut short by a navigation
                and errors.append(f"{page.url}: {request.url} failed: {request.failure}")
            ),
        )
        return page

    def assert_no_browser_errors(self):
        assert not self.browser_errors, "the browser reported errors:\n" + "\n".join(self.browser_errors)

    @contextmanager
    def stage(self, name: str, page):
        self.stages.append(name)
        number = len(self.stages)
        try:
            yield
        except Exception as error:
            with suppress(Exception):  # a screenshot is a bonus
                page.screenshot(path=str(self.shots / f"{number:02d}-{name}-FAILED.png"), full_page=True)
            raise AssertionError(
                f"stage {number} '{name}' failed: {type(error).__name__}: {error}\n"
                f"--- page {page.url} ---\n{page_text(page)}\n"
                f"--- worker log (last lines) ---\n{tail(self.worker_log)}\n"
                f"--- screenshots in {self.shots} ---"
            ) from error
        page.screenshot(path=str(self.shots / f"{number:02d}-{name}.png"), full_page=True)


def sign_in(page, base_url: str, user, password: str = PASSWORD) -> None:
    """Through allauth's login form, as a person does."""
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", password)
    with page.expect_navigation(timeout=WAIT_MS):
        page.press("input[name=password]", "Enter")
    if "/accounts/login" in page.url:
        raise AssertionError(f"the login form did not let {user.email} in")


def wait_for_state(page, state: str, timeout: int = WORKER_WAIT_MS) -> None:
    """The workspace page's state badge (live region) reads `state`."""
    page.wait_for_selector(f'#workspace-state [data-state="{state}"]', timeout=timeout)


def sent_messages(mail_dir: Path) -> list[email.message.Message]:
    return [email.message_from_bytes(path.read_bytes()) for path in sorted(mail_dir.glob("*.log"))]


def text_part(message: email.message.Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("the e-mail has no text part")


def invitation_link(mail_dir: Path, to: str, base_url: str) -> str:
    messages = [m for m in sent_messages(mail_dir) if m["To"] == to]
    assert len(messages) == 1, f"expected one e-mail to {to}, found {[m['To'] for m in sent_messages(mail_dir)]}"
    body = text_part(messages[0])
    found = re.search(r"(https?://\S+/invitations/accept/[A-Za-z0-9_-]+/)", body)
    assert found, f"no invitation link in the e-mail:\n{body}"
    assert found.group(1).startswith(base_url), found.group(1)
    return found.group(1)


def api_get(base_url: str, path: str, secret: str) -> tuple[int, dict | None]:
    """GET an API route over HTTP with a bearer token, as a script would: (status, JSON body)."""
    request = urllib.request.Request(  # noqa: S310 (the live server's loopback address)
        f"{base_url}{path}", headers={"Authorization": f"Bearer {secret}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body or b"null")
        except ValueError:
            return error.code, {"raw": body.decode(errors="replace")[:500]}
