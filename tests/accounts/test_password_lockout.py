"""Every password check (the login page, POST /api/v1/tokens/purge) shares one per-account lockout."""

from django.test import Client, override_settings
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.conftest import assert_error, bearer_client

RIGHT = "correct horse battery staple"
LOCKED_MESSAGE = "Too many failed login attempts"


def _login_page(browser: Client, email: str, password: str):
    return browser.post("/accounts/login/", {"login": email, "password": password})


def _purge(email: str, password: str):
    return APIClient().post("/api/v1/tokens/purge", {"email": email, "password": password}, format="json")


def test_it_purges_with_the_right_password(owner):
    bearer_client(owner)
    assert _purge(owner.email, RIGHT).json() == {"deleted": 1}


@override_settings(ACCOUNT_RATE_LIMITS={"login_failed": "10/m/ip,5/5m/key"})
def test_wrong_passwords_on_the_login_page_lock_the_purge_even_with_the_right_password(owner):
    bearer_client(owner)
    browser = Client()
    for _ in range(5):
        assert _login_page(browser, owner.email, "wrong").status_code == 200
    response = _purge(owner.email, RIGHT)
    assert_error(response, 429, "AUTH_THROTTLED")
    assert 240 <= int(response["Retry-After"]) <= 300  # the oldest failure leaves the 5-minute window
    assert ApiToken.objects.count() == 1


@override_settings(ACCOUNT_RATE_LIMITS={"login_failed": "10/m/ip,5/5m/key"})
def test_wrong_passwords_on_the_purge_lock_the_login_page_even_with_the_right_password(owner):
    for _ in range(5):
        assert_error(_purge(owner.email, "wrong"), 401, "AUTHENTICATION_FAILED")
    response = _purge(owner.email, RIGHT)
    assert_error(response, 429, "AUTH_THROTTLED")
    assert int(response["Retry-After"]) >= 1

    browser = Client()
    page = _login_page(browser, owner.email, RIGHT)
    assert page.status_code == 200
    assert LOCKED_MESSAGE in page.content.decode()
    assert "_auth_user_id" not in browser.session


@override_settings(ACCOUNT_RATE_LIMITS={"login_failed": "10/m/ip,5/5m/key"})
def test_the_lockout_is_per_account(owner, outsider):
    for _ in range(5):
        _purge(owner.email, "wrong")
    bearer_client(outsider)
    assert _purge(outsider.email, "correct horse battery staple").json() == {"deleted": 1}


@override_settings(ACCOUNT_RATE_LIMITS=False, CARREL_FAILED_AUTH_LIMIT="3/15min")
def test_carrels_own_account_lockout_holds_without_allauths_cache_counters(owner):
    # allauth keeps its counters in the cache, which may cull them; Carrel's per-account counter is in the
    # database and locks the login page (FailedLoginLockoutBackend) and the purge alike.
    browser = Client()
    for _ in range(3):
        assert LOCKED_MESSAGE not in _login_page(browser, owner.email, "wrong").content.decode()
    page = _login_page(browser, owner.email, RIGHT)
    assert page.status_code == 200 and "_auth_user_id" not in browser.session
    assert_error(_purge(owner.email, RIGHT), 429, "AUTH_THROTTLED")


@override_settings(ACCOUNT_RATE_LIMITS=False, CARREL_FAILED_AUTH_LIMIT="3/15min")
def test_the_right_password_resets_nothing_and_works_before_the_limit(owner):
    for _ in range(2):
        assert_error(_purge(owner.email, "wrong"), 401, "AUTHENTICATION_FAILED")
    assert _purge(owner.email, RIGHT).status_code == 200
