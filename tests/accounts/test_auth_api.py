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


def test_sign_up_and_login_are_audited(db):
    from allauth.account.models import EmailAddress
    from django.core import mail
    from django.test import Client

    from audit.models import AuditEvent

    browser = Client()
    response = browser.post(
        "/accounts/signup/",
        {"email": "new@uni.example", "password1": "a long passphrase 42", "password2": "a long passphrase 42"},
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="user.signup", actor__email="new@uni.example").exists()
    # Outside the sandbox the address must be verified before the account can log in.
    assert not EmailAddress.objects.get(email="new@uni.example").verified
    assert "new@uni.example" in mail.outbox[0].to


@override_settings(CARREL_FAILED_AUTH_LIMIT="2/15min")
def test_wrong_passwords_count_against_the_ip(owner):
    client = APIClient()
    for _ in range(2):
        client.post("/api/v1/tokens/purge", {"email": owner.email, "password": "wrong"}, format="json")
    response = client.post("/api/v1/tokens/purge", {"email": owner.email, "password": "wrong"}, format="json")
    assert_error(response, 429, "AUTH_THROTTLED")
