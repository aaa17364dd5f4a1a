import time

from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import assert_error

HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def test_every_api_response_carries_rate_limit_headers(owner_client, project):
    responses = [
        owner_client.get("/api/v1/projects"),
        owner_client.get(f"/api/v1/projects/{project.id}"),
        owner_client.post("/api/v1/projects", {}, format="json"),  # 400
        owner_client.get("/api/v1/projects/proj_missing"),  # 404
        owner_client.get("/api/v1/unknown"),  # unknown route
        APIClient().get("/api/v1/healthcheck"),  # anonymous
        APIClient().get("/api/v1/projects"),  # 401
    ]
    for response in responses:
        for header in HEADERS:
            assert header in response, (response.status_code, header)
        assert int(response["X-RateLimit-Remaining"]) < int(response["X-RateLimit-Limit"])
        assert int(response["X-RateLimit-Reset"]) > time.time()


@override_settings(CARREL_RATE_LIMITS={"token": "3/minute", "user": "3/minute", "ip": "3/minute"})
def test_it_counts_down_and_then_answers_429_with_retry_after(owner_client):
    remaining = [int(owner_client.get("/api/v1/me/profile")["X-RateLimit-Remaining"]) for _ in range(3)]
    assert remaining == [2, 1, 0]
    spent = owner_client.get("/api/v1/me/profile")
    assert_error(spent, 429, "RATE_LIMITED")
    assert 1 <= int(spent["Retry-After"]) <= 60
    assert spent["X-RateLimit-Remaining"] == "0"


@override_settings(CARREL_RATE_LIMITS={"token": "2/minute", "user": "2/minute", "ip": "2/minute"})
def test_limits_are_per_token(owner, outsider):
    from tests.conftest import bearer_client

    first, second = bearer_client(owner), bearer_client(outsider)
    first.get("/api/v1/me/profile")
    first.get("/api/v1/me/profile")
    assert first.get("/api/v1/me/profile").status_code == 429
    assert second.get("/api/v1/me/profile").status_code == 200


@override_settings(CARREL_FAILED_AUTH_LIMIT="3/15min")
def test_repeated_failed_authentication_from_one_ip_is_throttled(owner_client):
    attacker = APIClient()
    for attempt in range(3):
        attacker.credentials(HTTP_AUTHORIZATION=f"Bearer carrel_guess{attempt}")
        assert_error(attacker.get("/api/v1/me/profile"), 401, "TOKEN_INVALID")
    attacker.credentials(HTTP_AUTHORIZATION="Bearer carrel_guess-again")
    response = attacker.get("/api/v1/me/profile")
    assert_error(response, 429, "AUTH_THROTTLED")
    assert int(response["Retry-After"]) >= 1
