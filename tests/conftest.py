import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import Membership, Organization, OrgRole, TokenScope, User
from accounts.services import token_create
from projects.models import Project, ProjectMember, ProjectRole


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate-limit counters and heartbeats live in the cache; each test starts from zero.
    cache.clear()
    yield
    cache.clear()


def make_user(email: str, password: str = "correct horse battery staple") -> User:
    return User.objects.create_user(email=email, password=password)


def make_org(name: str, owner: User) -> Organization:
    org = Organization.objects.create(name=name, slug=name.lower().replace(" ", "-"))
    Membership.objects.create(organization=org, user=owner, role=OrgRole.OWNER)
    return org


def add_org_member(org: Organization, user: User, role: str = OrgRole.MEMBER) -> Membership:
    return Membership.objects.create(organization=org, user=user, role=role)


def make_project(org: Organization, name: str, owner: User) -> Project:
    project = Project.objects.create(organization=org, name=name, created_by=owner)
    ProjectMember.objects.create(project=project, user=owner, role=ProjectRole.OWNER)
    return project


def bearer_client(user: User, scopes=(TokenScope.READ, TokenScope.WRITE)) -> APIClient:
    issued = token_create(actor=user, name="test", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    client.token = issued  # for tests that need the secret or row
    return client


@pytest.fixture
def owner(db) -> User:
    return make_user("owner@lab-a.example")


@pytest.fixture
def org(owner) -> Organization:
    return make_org("Lab A", owner)


@pytest.fixture
def project(org, owner) -> Project:
    return make_project(org, "Genomics", owner)


@pytest.fixture
def outsider(db) -> User:
    """A user of another organization, with a project of their own."""
    user = make_user("someone@lab-b.example")
    other_org = make_org("Lab B", user)
    make_project(other_org, "Climate", user)
    return user


@pytest.fixture
def owner_client(owner) -> APIClient:
    return bearer_client(owner)


@pytest.fixture
def outsider_client(outsider) -> APIClient:
    return bearer_client(outsider)


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    error = body["error"]
    assert set(error) >= {"code", "message", "details", "remediation", "timestamp", "request_id"}
    assert error["code"].isupper()
    assert error["request_id"] == response["X-Request-ID"]
    if code is not None:
        assert error["code"] == code, error
    return error


def pytest_sessionfinish(session, exitstatus):
    """Remove this run's filesystem-broker folder (used only without Redis)."""
    import os
    import shutil

    from django.conf import settings

    run_id = os.environ.get("CARREL_TEST_RUN_ID")
    if run_id:
        shutil.rmtree(settings.VAR_DIR / "test-broker" / run_id, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (.ci/run exports CARREL_REQUIRE_BROWSER=1) a browser test may not skip: a skip whose reason
    mentions Chromium is reported as a failure, so a missing or broken browser cannot pass unnoticed."""
    import os

    report = yield
    if report.skipped and os.environ.get("CARREL_REQUIRE_BROWSER") == "1" and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        if "chromium" in reason.lower():
            report.outcome = "failed"
            report.longrepr = f"CARREL_REQUIRE_BROWSER=1 but the browser test was skipped: {reason}"
    return report
