from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import assert_error

GITHUB = {"github": {"APPS": [{"client_id": "abc", "secret": "xyz"}]}}
OIDC = {
    "openid_connect": {
        "APPS": [
            {
                "provider_id": "cilogon",
                "name": "CILogon",
                "client_id": "cid",
                "secret": "cs",
                "settings": {"server_url": "https://cilogon.example"},
            }
        ]
    }
}


def test_providers_lists_password_login_by_default(db):
    providers = APIClient().get("/api/v1/auth/providers").json()
    assert [p["id"] for p in providers] == ["password"]


@override_settings(SOCIALACCOUNT_PROVIDERS={**GITHUB, **OIDC})
def test_configured_oauth_and_oidc_providers_are_listed(db):
    providers = {p["id"]: p for p in APIClient().get("/api/v1/auth/providers").json()}
    assert set(providers) == {"password", "github", "cilogon"}
    assert providers["github"]["type"] == "oauth2"
    assert providers["cilogon"]["type"] == "openid_connect"


@override_settings(SOCIALACCOUNT_PROVIDERS=GITHUB)
def test_login_redirects_into_the_providers_flow(db):
    response = APIClient().get("/api/v1/auth/login", {"provider": "github", "next": "/api/v1/me/profile"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/github/login/")
    assert "next=/api/v1/me/profile" in response["Location"]


def test_login_refuses_offsite_next_and_unknown_providers(db):
    response = APIClient().get("/api/v1/auth/login", {"provider": "password", "next": "https://evil.example/"})
    assert response.status_code == 302
    assert "evil" not in response["Location"]
    assert_error(APIClient().get("/api/v1/auth/login", {"provider": "myspace"}), 404, "PROVIDER_NOT_FOUND")


def test_logout_ends_the_session(owner):
    client = APIClient()
    client.force_login(owner)
    assert client.get("/api/v1/me/profile").status_code == 200
    assert client.post("/api/v1/auth/logout").json() == {"status": "logged_out"}
    assert_error(client.get("/api/v1/me/profile"), 401)


def test_me_profile_lists_organizations_with_roles(owner_client, org):
    profile = owner_client.get("/api/v1/me/profile").json()
    assert profile["email"] == "owner@lab-a.example"
    assert profile["organizations"] == [{"id": org.id, "name": "Lab A", "slug": "lab-a", "role": "owner"}]
