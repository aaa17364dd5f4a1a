"""Screenshots of every console page at 1280×800 (desktop) and 390×844 (phone), full page, in headless Chromium
against the live server, with realistic data: an organization with a budget pool and allocation, a project with
members, ledger rows over several days, invitations in several states, API tokens and a workspace launched on
the moto server (so its page has a connect panel).

`scripts/screenshots.sh [DIR]` runs this test with CARREL_SCREENSHOTS_DIR naming the folder (default
var/screenshots); in the normal suite the PNGs go to the test's tmp_path. Either way every page at both sizes must
answer its status (200; the 404 page 404), fit 390 px without horizontal scrolling, show no raw JSON or Python
reprs, and wear the console's stylesheet. The failures of all pages are reported together, after every
screenshot was written. Files: `<page>-desktop.png`, `<page>-phone.png`."""

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import OrgRole
from accounts.services import token_create, token_revoke
from budgets.models import Allocation, BudgetPool
from invitations import services as invitations
from projects.models import ProjectMember, ProjectRole
from tests.conftest import add_org_member, make_project, make_user
from tests.console.conftest import needs_chromium
from tests.support import record_cost
from workspaces.models import Workspace
from workspaces.services.launch import workspace_launch

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), needs_chromium]

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
WAIT_MS = 15_000
# What must never reach a reader: JSON objects and lists, Python's None and reprs of objects and querysets.
RAW = [
    ('{"', "JSON object"),
    ("[{", "JSON list"),
    ("{'", "Python dict"),
    ("None", "Python None"),
    ("<QuerySet", "queryset repr"),
    (" object at 0x", "object repr"),
    ("Decimal(", "Decimal repr"),
    ("datetime.", "datetime repr"),
    ("[]", "empty list"),
]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; the test's ORM calls stay synchronous."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("CARREL_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def verified(user):
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    return user


def named(email: str, first: str, last: str):
    user = verified(make_user(email))
    user.first_name, user.last_name = first, last
    user.save(update_fields=["first_name", "last_name"])
    return user


def spend(project, member, workspace, amount: str, *, days_ago: int, kind: str = "compute", item: str = "c5.xlarge"):
    start = timezone.now() - timedelta(days=days_ago, hours=2)
    record_cost(
        organization=project.organization,
        project=project,
        workspace=workspace,
        member=member,
        kind=kind,
        item=item,
        start=start,
        end=start + timedelta(hours=1),
        day=timezone.localtime(start).date(),
        quantity=Decimal(3600),
        unit="seconds",
        rate=Decimal(amount),
        amount=Decimal(amount),
    )


@dataclass
class World:
    owner: object
    newcomer: object
    invitee: object
    org: object
    project: object
    pool: object
    workspace: Workspace
    invitation_token: str


@pytest.fixture
def world(owner, org, project, account, eager_tasks, django_capture_on_commit_callbacks) -> World:
    owner.first_name, owner.last_name = "Ada", "Lovelace"
    owner.save(update_fields=["first_name", "last_name"])
    verified(owner)
    now = timezone.now()
    pool = BudgetPool.objects.create(
        organization=org,
        name="NSF award 2026",
        total_amount=Decimal("25000.00"),
        start_date=now - timedelta(days=20),
        end_date=now + timedelta(days=160),
        created_by=owner,
    )
    Allocation.objects.create(pool=pool, project=project, amount=Decimal("4000.00"), alert_thresholds=["0.5", "0.8"])
    climate = make_project(org, "Climate models", owner)
    Allocation.objects.create(pool=pool, project=climate, amount=Decimal("6000.00"))

    grace = named("grace.hopper@lab-a.example", "Grace", "Hopper")
    alan = named("alan.turing@lab-a.example", "Alan", "Turing")
    add_org_member(org, grace, OrgRole.ADMIN)
    add_org_member(org, alan)
    ProjectMember.objects.create(project=project, user=grace, role=ProjectRole.ADMIN)
    ProjectMember.objects.create(project=project, user=alan, role=ProjectRole.VIEWER)

    with django_capture_on_commit_callbacks(execute=True):
        launched = workspace_launch(
            actor=owner, project=project, name="ml-box", template="Python Machine Learning", size="S"
        )
    workspace = Workspace.objects.get(pk=launched.workspace.pk)
    assert workspace.state == "running", workspace.state

    past = []
    for name, member, state in (
        ("rnaseq-align", grace, "stopped"),
        ("notebook", alan, "terminated"),
        ("genome-assembly", owner, "stopped"),
    ):
        past.append(
            Workspace.objects.create(
                organization=org,
                project=project,
                owner=member,
                name=name,
                state=state,
                instance_type="r5.2xlarge",
                hourly_rate=Decimal("0.5040"),
            )
        )
    for days_ago in range(1, 9):
        spend(project, grace, past[0], f"{12 + days_ago * 3}.40", days_ago=days_ago, item="r5.2xlarge")
        spend(project, owner, past[2], f"{4 + days_ago}.08", days_ago=days_ago)
        spend(project, grace, past[0], "0.80", days_ago=days_ago, kind="storage", item="gp3")
    spend(project, alan, past[1], "3.15", days_ago=6, item="t3.large")

    newcomer = verified(make_user("new.researcher@university.example"))
    invitee = verified(make_user("visiting.scholar@partner.example"))
    pending = invitations.invitation_send(
        actor=owner, project=project, email=invitee.email, role=ProjectRole.MEMBER, message="Welcome to the lab!"
    )
    accepted_by = verified(make_user("postdoc@partner.example"))
    accepted = invitations.invitation_send(actor=owner, project=project, email=accepted_by.email)
    invitations.invitation_accept(actor=accepted_by, invitation=accepted, token=invitations.invitation_token(accepted))
    declined_by = verified(make_user("busy.person@partner.example"))
    declined = invitations.invitation_send(actor=owner, project=project, email=declined_by.email)
    invitations.invitation_decline(
        actor=declined_by, invitation=declined, reason="No time", token=invitations.invitation_token(declined)
    )
    revoked = invitations.invitation_send(actor=owner, project=project, email="wrong.address@partner.example")
    invitations.invitation_revoke(actor=owner, invitation=revoked)

    token_create(actor=owner, name="laptop CLI", scopes=["read", "write"])
    token_create(actor=owner, name="nightly pipeline", scopes=["read"], expires_at=now + timedelta(days=30))
    old = token_create(actor=owner, name="old script", scopes=["read"])
    token_revoke(actor=owner, token=old.token)

    return World(
        owner=owner,
        newcomer=newcomer,
        invitee=invitee,
        org=org,
        project=project,
        pool=pool,
        workspace=workspace,
        invitation_token=invitations.invitation_token(pending),
    )


def pages(world: World) -> dict[str, tuple]:
    """page name → (who is signed in (None: nobody), address, expected status, what to do before the shot)."""
    org, project, owner = world.org, world.project, world.owner
    token = owner.api_tokens.filter(revoked_at__isnull=True).order_by("created_at").first()
    return {
        "login": (None, "/accounts/login/", 200, None),
        "signup": (None, "/accounts/signup/", 200, None),
        "password-reset": (None, "/accounts/password/reset/", 200, None),
        "home-new-person": (world.newcomer, "/", 200, None),
        "home-invited": (world.invitee, "/", 200, None),
        "home": (owner, "/", 200, None),
        "launch": (owner, "/launch/", 200, None),
        "workspace": (owner, f"/workspaces/{world.workspace.pk}/", 200, None),
        "project": (owner, f"/projects/{project.pk}/", 200, None),
        "organization": (owner, f"/organizations/{org.pk}/", 200, None),
        "organization-pool": (owner, f"/organizations/{org.pk}/budgets/{world.pool.pk}/", 200, None),
        "organization-members": (owner, f"/organizations/{org.pk}/members/", 200, None),
        "organization-cloud-accounts": (owner, f"/organizations/{org.pk}/cloud-accounts/", 200, None),
        "tokens": (owner, "/tokens/", 200, None),
        "token-secret": (owner, "/tokens/", 200, create_token),
        "token-revoke": (owner, f"/tokens/{token.pk}/revoke", 200, None),
        "invitation": (world.invitee, f"/invitations/accept/{world.invitation_token}/", 200, None),
        "invitation-signed-out": (None, f"/invitations/accept/{world.invitation_token}/", 200, None),
        "email": (owner, "/accounts/email/", 200, None),
        "password-change": (owner, "/accounts/password/change/", 200, None),
        "not-found": (owner, "/workspaces/no-such-workspace/", 404, None),
    }


def create_token(page):
    """The one-time secret view: the answer to the tokens form."""
    page.fill("#id_name", "analysis notebook")
    with page.expect_navigation(timeout=WAIT_MS) as navigation:
        page.click("#token-form button[type=submit]")
    page.wait_for_selector("#token-secret", timeout=WAIT_MS)
    return navigation.value


def session_cookie(user, base_url: str) -> dict:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": base_url,
    }


def problems_of(page, size: str, expected_status: int, response) -> list[str]:
    problems = []
    status = response.status if response is not None else None
    if status != expected_status:
        problems.append(f"status {status}, expected {expected_status}")
    if size == "phone":
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > SIZES["phone"][0]:
            wide = page.evaluate(
                """() => [...document.querySelectorAll('body *')]
                     .filter(e => e.getBoundingClientRect().right > 391)
                     .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (
                       e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : ''))"""
            )
            problems.append(f"overflows horizontally at 390 px (scrollWidth {width}; widest: {wide})")
    text = page.inner_text("body")
    for raw, what in RAW:
        if raw in text:
            at = text.index(raw)
            problems.append(f"shows a {what}: …{text[max(0, at - 60) : at + 60]!r}…")
    if re.search(r"\b[0-9a-f]{32}\b", text):
        problems.append("shows a raw 32-hex id")
    styled = page.evaluate(
        """() => [...document.styleSheets]
                   .some(s => (s.href || '').includes('/console/carrel.css') && s.cssRules.length > 50)
                 && getComputedStyle(document.documentElement).backgroundColor === 'rgb(245, 246, 248)'"""
    )
    if not styled:
        problems.append("the console's stylesheet is not applied")
    return problems


def test_it_screenshots_every_page_at_desktop_and_phone_sizes(live_server, browser, world, shots):
    failures: dict[str, list[str]] = {}
    written = []
    for name, (user, address, expected_status, before) in pages(world).items():
        for size, (width, height) in SIZES.items():
            context = browser.new_context(viewport={"width": width, "height": height})
            if user is not None:
                context.add_cookies([session_cookie(user, live_server.url)])
            page = context.new_page()
            try:
                response = page.goto(f"{live_server.url}{address}", wait_until="load", timeout=WAIT_MS)
                if before is not None:
                    response = before(page)
                page.wait_for_timeout(150)  # live regions' first refresh, web fonts: none, but layout settles
                path = shots / f"{name}-{size}.png"
                page.screenshot(path=str(path), full_page=True)
                written.append(path)
                problems = problems_of(page, size, expected_status, response)
            except Exception as error:  # noqa: BLE001 (reported with the other pages' problems)
                problems = [f"{type(error).__name__}: {error}"]
            finally:
                context.close()
            if problems:
                failures[f"{name}-{size}"] = problems
    report = "\n".join(f"{page}: " + "; ".join(problems) for page, problems in failures.items())
    assert not failures, f"pages that do not look finished (screenshots in {shots}):\n{report}"
    assert len(written) == 2 * len(pages(world))
