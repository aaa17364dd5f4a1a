"""Console tests: Django's test client signed in as a person, the moto server's cloud, a crowd of workspaces for
query counts, and headless Chromium (Debian's package through Playwright) for the browser tests."""

import shutil
from decimal import Decimal

import pytest
from django.test import Client

from budgets import ledger
from budgets.models import CostEntry
from tests.workspaces.conftest import (  # noqa: F401 (fixtures)
    account,
    catalog,
    cloud,
    eager_tasks,
    ec2,
    moto,
    moto_image,
    retries,
)
from workspaces.models import ProvisionJob, StateTransition, Workspace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def signed_in(user) -> Client:
    """A browser-like client (CSRF checks on) with `user` signed in."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def csrf_post(client: Client, url: str, data: dict | None = None, **extra):
    """POST a form as a browser does: with the CSRF token the page's form carries."""
    page = client.get(url if not extra.get("from_page") else extra.pop("from_page"))
    token = page.cookies.get("csrftoken") or client.cookies.get("csrftoken")
    payload = dict(data or {})
    payload["csrfmiddlewaretoken"] = token.value if token else ""
    return client.post(url, payload, **extra)


def add_crowd(project, owner, *, count: int = 1000, cloud_account=None, prefix: str = "crowd") -> list[Workspace]:
    """`count` workspaces shaped as launches leave them: a transition, a finished job and a ledger row each."""
    crowd = Workspace.objects.bulk_create(
        Workspace(
            organization=project.organization,
            project=project,
            owner=owner,
            name=f"{prefix}-{index}",
            state="stopped" if index % 2 else "running",
            cloud_account=cloud_account,
            instance_type="t3.medium",
            hourly_rate=Decimal("0.0416"),
        )
        for index in range(count)
    )
    StateTransition.objects.bulk_create(
        StateTransition(workspace=w, from_state="", to_state=w.state, hourly_rate=Decimal("0")) for w in crowd
    )
    ProvisionJob.objects.bulk_create(ProvisionJob(workspace=w, status="succeeded") for w in crowd)
    costs = CostEntry.objects.bulk_create(
        CostEntry(
            organization=project.organization,
            workspace=w,
            project=project,
            kind="compute",
            item="t3.medium",
            start=w.created_at,
            end=w.created_at,
            day=w.created_at.date(),
            quantity=Decimal(3600),
            unit="seconds",
            rate=Decimal("0.0416"),
            amount=Decimal("0.0416"),
        )
        for w in crowd
    )
    ledger.roll_up(costs)
    return crowd


@pytest.fixture
def browser():
    """Headless Chromium. Skips without Chromium, which CI (CARREL_REQUIRE_BROWSER=1) turns into a failure."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
