"""The console's tokens page: a person's own API tokens. The secret is shown once, in the answer to the POST;
the token works against the API until it is revoked; nobody reaches another person's token."""

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_create
from tests.console.conftest import csrf_post, signed_in

pytestmark = pytest.mark.django_db

URL = "/tokens/"


def secret_in(html: str) -> str:
    found = re.search(r'<code id="token-secret">([^<]+)</code>', html)
    assert found, "no secret on the page"
    return found.group(1)


def api_as(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_it_asks_a_visitor_to_sign_in(db):
    response = Client().get(URL)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"] or "login" in response["Location"]


def test_it_shows_the_secret_once_and_it_authenticates(owner, org):
    client = signed_in(owner)
    page = client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="token-form"' in html and 'id="id_name"' in html and 'name="scopes"' in html

    response = csrf_post(client, URL, {"name": "laptop CLI", "scopes": ["read", "write"], "expires": "30"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = secret_in(html)
    assert secret.startswith("carrel_")
    assert "will not be shown again" in html
    assert 'data-copy="#token-secret"' in html
    token = ApiToken.objects.get(user=owner, name="laptop CLI")
    assert sorted(token.scopes) == ["read", "write"]
    assert token.expires_at is not None

    # The secret is nowhere after this answer: not on the page again, not in the session.
    again = client.get(URL).content.decode()
    assert secret not in again
    assert 'data-token-name="laptop CLI"' in again
    assert secret not in str(dict(client.session))

    # It authenticates against the API (bearer), and records its last use.
    assert api_as(secret).get("/api/v1/me/profile").status_code == 200
    listed = client.get(URL).content.decode()
    assert "127.0.0.1" in listed


def test_it_revokes_after_a_confirmation_and_the_token_stops_working(owner, org):
    client = signed_in(owner)
    secret = secret_in(csrf_post(client, URL, {"name": "pipeline", "scopes": ["read"]}).content.decode())
    token = ApiToken.objects.get(user=owner, name="pipeline")
    page = client.get(URL).content.decode()
    assert 'class="revoke-form"' in page

    confirm = client.get(f"/tokens/{token.pk}/revoke")
    assert confirm.status_code == 200
    assert "Revoke token pipeline?" in confirm.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None  # asking is not doing

    response = csrf_post(client, f"/tokens/{token.pk}/revoke", from_page=f"/tokens/{token.pk}/revoke")
    assert response.status_code == 302 and response["Location"] == URL
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_as(secret).get("/api/v1/me/profile").status_code == 401
    after = client.get(URL).content.decode()
    row = after.split('data-token-name="pipeline"', 1)[1].split("</tr>", 1)[0]
    assert "revoked" in row and "revoke-form" not in row
    assert "Token pipeline revoked." in after


def test_it_never_reaches_another_persons_token(owner, outsider):
    theirs = token_create(actor=outsider, name="theirs", scopes=["read"]).token
    client = signed_in(owner)
    assert "theirs" not in client.get(URL).content.decode()
    assert client.get(f"/tokens/{theirs.pk}/revoke").status_code == 404
    response = csrf_post(client, f"/tokens/{theirs.pk}/revoke", from_page=URL)
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert csrf_post(client, "/tokens/tok_missing/revoke", from_page=URL).status_code == 404


def test_it_requires_the_csrf_token(owner):
    client = signed_in(owner)
    assert client.post(URL, {"name": "x", "scopes": ["read"]}).status_code == 403
    assert not ApiToken.objects.filter(user=owner).exists()
    token = token_create(actor=owner, name="kept", scopes=["read"]).token
    assert client.post(f"/tokens/{token.pk}/revoke").status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_it_shows_form_errors_next_to_the_fields(owner):
    client = signed_in(owner)
    response = csrf_post(client, URL, {"name": "", "scopes": []})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="error-name"' in html and 'aria-invalid="true"' in html
    assert 'id="error-scopes"' in html
    response = csrf_post(client, URL, {"name": "old", "scopes": ["read"], "expires_on": "2001-01-01"})
    assert response.status_code == 400
    assert 'id="error-expires-on"' in response.content.decode()
    response = csrf_post(client, URL, {"name": "bad\u202ename", "scopes": ["read"]})
    assert response.status_code == 400
    assert 'id="error-name"' in response.content.decode()
    assert not ApiToken.objects.filter(user=owner).exists()
    assert "token-secret" not in html


def test_it_answers_in_constant_queries_with_many_tokens(owner, org, django_assert_max_num_queries):
    client = signed_in(owner)
    token_create(actor=owner, name="first", scopes=["read"])
    client.get(URL)  # warm the session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get(URL).status_code == 200
    for index in range(60):
        token_create(actor=owner, name=f"token {index}", scopes=["read", "write"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(URL)
    assert page.content.decode().count("data-token-name=") == 61
