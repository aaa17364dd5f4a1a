"""Requests the schema calls invalid are refused (schemathesis's negative-data check found each of these)."""

import pytest

from tests.conftest import assert_error


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/tokens", {"name": 0, "scopes": ["read"]}),
        ("post", "/api/v1/tokens", {"name": "ci", "scopes": [1]}),
        ("post", "/api/v1/organizations", {"name": 0}),
        ("post", "/api/v1/projects", {"name": "P", "description": 5}),
        ("post", "/api/v1/profiles/switch", {"profile_name": 7}),
        ("post", "/api/v1/profiles/switch", {"project": "a\u0000"}),
    ],
)
def test_it_refuses_values_of_the_wrong_type(owner_client, org, method, path, body):
    response = getattr(owner_client, method)(path, body, format="json")
    assert_error(response, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "query",
    ["page_size=abc", "page_size=0", "page_size=-1", "page_size=501", "page=abc", "page_size=1&page_size=2", "page=٣"],
)
def test_it_refuses_bad_paging_parameters(owner_client, org, query):
    assert_error(owner_client.get(f"/api/v1/projects?{query}"), 400, "VALIDATION_ERROR")


def test_it_pages_with_good_parameters(owner_client, project):
    response = owner_client.get("/api/v1/projects?page=1&page_size=1")
    assert response.status_code == 200 and response["X-Total-Count"] == "1"


@pytest.mark.parametrize(
    "url", ["/api/v1/projects?organization=%00", "/api/v1/projects/%00", "/api/v1/users/a%00/profile"]
)
def test_it_refuses_a_nul_in_the_url(owner_client, org, url):
    assert_error(owner_client.get(url), 400, "BAD_REQUEST")


def test_it_refuses_an_empty_status_filter(owner_client, project):
    assert_error(owner_client.get("/api/v1/invitations/me?status="), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "ci", "scopes": ["read"], "expires_at": {}},
        {"name": "ci", "scopes": ["read"], "expires_at": 5},
    ],
)
def test_it_refuses_a_date_that_is_not_a_string(owner_client, body):
    assert_error(owner_client.post("/api/v1/tokens", body, format="json"), 400, "VALIDATION_ERROR")


def test_it_refuses_a_slug_that_is_not_a_string(owner_client):
    assert_error(owner_client.post("/api/v1/organizations", {"name": "X", "slug": 0}, format="json"), 400)
