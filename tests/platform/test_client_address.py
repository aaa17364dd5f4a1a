"""The client address (X-Forwarded-For behind trusted proxies) and the failed-authentication limit."""

import pytest
from django.core.cache import cache
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient

from accounts.models import ApiToken, FailedAuthCounter
from audit.models import AuditEvent
from platform_site import request_context
from tests.conftest import assert_error, bearer_client

MALFORMED = ["garbage", "1.2.3.4.5", "<script>alert(1)</script>", "", "1.2.3.4:80", "fe80::1%eth0", "999.1.1.1"]


def _forwarded(value: str, remote: str = "10.0.0.2", proxies: int = 1) -> str | None:
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR=value, REMOTE_ADDR=remote)
    with override_settings(CARREL_TRUSTED_PROXY_COUNT=proxies):
        return request_context.client_ip(request)


@pytest.mark.parametrize("value", MALFORMED)
def test_it_falls_back_to_remote_addr_when_the_trusted_hop_is_not_an_ip(value):
    assert _forwarded(value) == "10.0.0.2"
    assert _forwarded(f"203.0.113.9, {value}") == "10.0.0.2"


def test_it_takes_the_address_the_outermost_trusted_proxy_appended():
    # The client wrote "6.6.6.6"; our one proxy appended the address it saw.
    assert _forwarded("6.6.6.6, 203.0.113.7") == "203.0.113.7"
    # Two proxies: the outer one appended 203.0.113.7, the inner one 10.1.1.1.
    assert _forwarded("6.6.6.6, 203.0.113.7, 10.1.1.1", proxies=2) == "203.0.113.7"
    assert _forwarded("203.0.113.7", proxies=2) == "10.0.0.2"  # fewer entries than proxies
    assert _forwarded("6.6.6.6", proxies=0) == "10.0.0.2"  # no proxies: the header is ignored
    assert _forwarded("::ffff:203.0.113.7") == "203.0.113.7"
    assert _forwarded("2001:DB8::1") == "2001:db8::1"


def test_it_never_returns_an_invalid_remote_addr():
    request = RequestFactory().get("/", REMOTE_ADDR="unix:/run/gunicorn.sock")
    assert request_context.client_ip(request) is None


@override_settings(CARREL_TRUSTED_PROXY_COUNT=1)
@pytest.mark.parametrize("value", MALFORMED)
def test_it_serves_and_stores_no_invalid_address_for_a_malformed_forwarded_header(owner, org, value):
    client = bearer_client(owner)
    response = client.get("/api/v1/me/profile", HTTP_X_FORWARDED_FOR=value)
    assert response.status_code == 200, response.content
    assert ApiToken.objects.get().last_used_ip == "127.0.0.1"
    created = client.post("/api/v1/projects", {"name": "P"}, format="json", HTTP_X_FORWARDED_FOR=value)
    assert created.status_code == 201, created.content
    assert AuditEvent.objects.get(action="project.create").ip == "127.0.0.1"


@override_settings(CARREL_TRUSTED_PROXY_COUNT=1)
def test_allauth_counts_the_same_client_address_and_ignores_a_forged_header(db):
    from allauth.account.adapter import get_adapter

    seen = []

    def view(request):
        from django.http import HttpResponse

        seen.append(get_adapter(request).get_client_ip(request))
        return HttpResponse()

    from platform_site.middleware import RequestContextMiddleware

    middleware = RequestContextMiddleware(view)
    request = RequestFactory().get(
        "/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", HTTP_X_CARREL_CLIENT_IP="1.1.1.1", REMOTE_ADDR="10.0.0.2"
    )
    middleware(request)
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="junk", HTTP_X_CARREL_CLIENT_IP="1.1.1.1")
    middleware(request)
    assert seen == ["203.0.113.7", "127.0.0.1"]


# --- The failed-authentication limit ---------------------------------------------------------------


def _bad(client: APIClient, secret: str, **extra):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.get("/api/v1/me/profile", **extra)


@override_settings(CARREL_FAILED_AUTH_LIMIT="3/15min")
def test_it_never_refuses_a_valid_token_for_bad_tokens_from_its_address(owner):
    valid = bearer_client(owner)
    attacker = APIClient()
    for attempt in range(3):
        assert_error(_bad(attacker, f"carrel_guess{attempt}"), 401, "TOKEN_INVALID")
    assert_error(_bad(attacker, "carrel_guess-again"), 429, "AUTH_THROTTLED")
    # Same address (127.0.0.1), valid token: served.
    assert valid.get("/api/v1/me/profile").status_code == 200
    # A revoked token is still refused with 429 while the address is over the limit.
    ApiToken.objects.update(revoked_at="2020-01-01T00:00:00Z")
    response = valid.get("/api/v1/me/profile")
    assert_error(response, 429, "AUTH_THROTTLED")
    assert int(response["Retry-After"]) >= 1


@override_settings(CARREL_FAILED_AUTH_LIMIT="3/15min", CARREL_TRUSTED_PROXY_COUNT=1)
def test_rotating_the_forwarded_address_does_not_reset_a_tokens_count(owner):
    token = bearer_client(owner)
    ApiToken.objects.update(revoked_at="2020-01-01T00:00:00Z")
    stolen = token.token.secret
    attacker = APIClient()
    for attempt in range(3):
        forged = f"198.51.100.{attempt + 1}"
        assert_error(_bad(attacker, stolen, HTTP_X_FORWARDED_FOR=forged), 401, "TOKEN_REVOKED")
    assert_error(_bad(attacker, stolen, HTTP_X_FORWARDED_FOR="198.51.100.99"), 429, "AUTH_THROTTLED")
    # Each forged address failed once only: the token's own count is what refused it.
    assert FailedAuthCounter.objects.filter(key__startswith="authfail:ip:198.51.100.1:").get().count == 1


@override_settings(CARREL_FAILED_AUTH_LIMIT="3/15min", ACCOUNT_RATE_LIMITS=False, CARREL_TRUSTED_PROXY_COUNT=1)
def test_rotating_the_forwarded_address_does_not_reset_an_accounts_count(owner):
    # allauth's own limits are off here: Carrel's per-account counter alone locks the account.
    client = APIClient()
    for attempt in range(3):
        response = client.post(
            "/api/v1/tokens/purge",
            {"email": owner.email, "password": f"wrong-{attempt}"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{attempt + 1}",
        )
        assert_error(response, 401, "AUTHENTICATION_FAILED")
    response = client.post(
        "/api/v1/tokens/purge",
        {"email": owner.email.upper(), "password": "correct horse battery staple"},
        format="json",
        HTTP_X_FORWARDED_FOR="198.51.100.77",
    )
    assert_error(response, 429, "AUTH_THROTTLED")
    assert int(response["Retry-After"]) >= 1


def test_the_failed_auth_limit_holds_when_the_file_cache_culls(owner, tmp_path, settings):
    # The cache the sandbox runs on without Redis, made to cull everything as soon as it holds 20 entries.
    settings.CARREL_FAILED_AUTH_LIMIT = "3/15min"
    settings.CACHES = {
        "default": {
            "BACKEND": "platform_site.local_backends.LockedFileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 20, "CULL_FREQUENCY": 1},
        }
    }
    attacker = APIClient()
    for attempt in range(3):
        assert_error(_bad(attacker, f"carrel_guess{attempt}"), 401, "TOKEN_INVALID")
    for index in range(100):  # far past MAX_ENTRIES
        cache.set(f"filler-{index}", index)
    assert cache.get("filler-0") is None  # culled
    assert_error(_bad(attacker, "carrel_guess-after-cull"), 429, "AUTH_THROTTLED")


@override_settings(CARREL_FAILED_AUTH_LIMIT="3/15min")
def test_the_failed_auth_limit_holds_past_the_default_caches_max_entries(owner):
    attacker = APIClient()
    for attempt in range(3):
        assert_error(_bad(attacker, f"carrel_guess{attempt}"), 401, "TOKEN_INVALID")
    for index in range(1000):  # LocMemCache and the file cache keep 300 by default
        cache.set(f"filler-{index}", index)
    assert_error(_bad(attacker, "carrel_guess-after-fill"), 429, "AUTH_THROTTLED")


def test_counters_of_ended_windows_are_deleted(db):
    from datetime import UTC, datetime

    from platform_site.api import ratelimit

    FailedAuthCounter.objects.create(key="authfail:ip:old", count=5, window_end=datetime(2020, 1, 1, tzinfo=UTC))
    ratelimit.record_failed_auth("192.0.2.1", credentials=[("token", "carrel_x")])
    assert not FailedAuthCounter.objects.filter(key="authfail:ip:old").exists()
    assert FailedAuthCounter.objects.count() == 2
    # Credentials are kept only as hashes.
    assert not FailedAuthCounter.objects.filter(key__contains="carrel_x").exists()
