import hashlib
from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from audit.models import AuditEvent
from tests.conftest import assert_error, bearer_client


def test_it_creates_uses_revokes_a_token_and_then_refuses_it(db, owner):
    session = APIClient()
    session.force_login(owner)
    created = session.post("/api/v1/tokens", {"name": "laptop", "scopes": ["read", "write"]}, format="json")
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("carrel_")
    assert len(secret) >= len("carrel_") + 43  # 256 bits, base64url

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/me/profile").json()["email"] == owner.email

    digest = hashlib.sha256(secret.encode()).hexdigest()
    revoked = client.post(f"/api/v1/tokens/revoke/{digest}")  # a token revokes itself
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None

    assert_error(client.get("/api/v1/me/profile"), 401, "TOKEN_REVOKED")
    assert AuditEvent.objects.filter(action="token.revoke", actor=owner).count() == 1


def test_it_stores_only_the_hash_of_a_token(db, owner):
    session = APIClient()
    session.force_login(owner)
    secret = session.post("/api/v1/tokens", {"name": "ci"}, format="json").json()["token"]

    row = ApiToken.objects.get()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(getattr(row, field.attname)) for field in ApiToken._meta.fields}
    dump = StringIO()
    call_command("dumpdata", stdout=dump)
    assert secret not in dump.getvalue()
    assert secret[len("carrel_") + 6 :] not in dump.getvalue()
    # Listing never shows the secret either.
    listed = session.get("/api/v1/tokens").content.decode()
    assert secret not in listed and row.token_hash not in listed


def test_it_shows_the_secret_once(db, owner):
    client = bearer_client(owner)
    created = client.post("/api/v1/tokens", {"name": "x"}, format="json").json()
    detail = client.get(f"/api/v1/tokens/{created['id']}").json()
    assert "token" not in detail and "sha256" not in detail


def test_a_read_only_token_cannot_write(db, owner, org):
    client = bearer_client(owner, scopes=["read"])
    assert client.get("/api/v1/projects").status_code == 200
    response = client.post("/api/v1/projects", {"name": "New"}, format="json")
    assert_error(response, 403, "INSUFFICIENT_SCOPE")
    assert_error(client.post("/api/v1/tokens", {"name": "x"}, format="json"), 403, "INSUFFICIENT_SCOPE")


def test_a_token_cannot_mint_a_token_with_more_scopes(db, owner):
    client = bearer_client(owner, scopes=["read", "write"])
    ok = client.post("/api/v1/tokens", {"name": "ro", "scopes": ["read"]}, format="json")
    assert ok.status_code == 201
    ro = APIClient()
    ro.credentials(HTTP_AUTHORIZATION=f"Bearer {ok.json()['token']}")
    assert_error(ro.post("/api/v1/tokens", {"name": "x", "scopes": ["read"]}, format="json"), 403)


def test_it_refuses_expired_and_unknown_tokens(db, owner):
    client = bearer_client(owner)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(client.get("/api/v1/me/profile"), 401, "TOKEN_EXPIRED")

    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Bearer carrel_not-a-real-token")
    error = assert_error(stranger.get("/api/v1/me/profile"), 401, "TOKEN_INVALID")
    assert error["message"]
    assert_error(APIClient().get("/api/v1/me/profile"), 401, "AUTHENTICATION_REQUIRED")


def test_it_validates_expiry_and_scopes(db, owner):
    client = bearer_client(owner)
    past = (timezone.now() - timedelta(days=1)).isoformat()
    error = assert_error(client.post("/api/v1/tokens", {"name": "x", "expires_at": past}, format="json"), 400)
    assert "expires_at" in error["fields"]
    error = assert_error(client.post("/api/v1/tokens", {"name": "x", "scopes": ["root"]}, format="json"), 400)
    assert "scopes.0" in error["fields"]


def test_it_records_last_use(db, owner):
    client = bearer_client(owner)
    assert ApiToken.objects.get().last_used_at is None
    client.get("/api/v1/me/profile")
    token = ApiToken.objects.get()
    assert token.last_used_at is not None
    assert token.last_used_ip == "127.0.0.1"


def test_it_deletes_a_token(db, owner):
    client = bearer_client(owner)
    other = client.post("/api/v1/tokens", {"name": "old"}, format="json").json()
    assert client.delete(f"/api/v1/tokens/{other['id']}").status_code == 204
    assert not ApiToken.objects.filter(pk=other["id"]).exists()
    assert_error(client.delete(f"/api/v1/tokens/{other['id']}"), 404, "TOKEN_NOT_FOUND")


def test_it_purges_every_token_with_a_password(db, owner):
    bearer_client(owner)
    bearer_client(owner)
    response = APIClient().post(
        "/api/v1/tokens/purge", {"email": owner.email, "password": "correct horse battery staple"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"deleted": 2}
    assert not ApiToken.objects.exists()


def test_purge_refuses_a_wrong_password_and_a_read_only_token(db, owner):
    bearer_client(owner)
    assert_error(
        APIClient().post("/api/v1/tokens/purge", {"email": owner.email, "password": "nope"}, format="json"),
        401,
        "AUTHENTICATION_FAILED",
    )
    assert_error(bearer_client(owner, scopes=["read"]).post("/api/v1/tokens/purge"), 403, "INSUFFICIENT_SCOPE")
    assert ApiToken.objects.count() == 2
    assert bearer_client(owner).post("/api/v1/tokens/purge").json() == {"deleted": 3}


def test_it_cannot_revoke_someone_elses_token(db, owner, outsider):
    theirs = bearer_client(outsider)
    digest = theirs.token.token.token_hash
    assert_error(bearer_client(owner).post(f"/api/v1/tokens/revoke/{digest}"), 404, "TOKEN_NOT_FOUND")
    assert theirs.get("/api/v1/me/profile").status_code == 200


def test_it_loads_the_token_and_its_user_as_the_orm_does(db, owner, django_assert_num_queries):
    from accounts.models import TokenScope
    from accounts.services import token_authenticate, token_create

    issued = token_create(actor=owner, name="laptop", scopes=[TokenScope.READ, TokenScope.WRITE])
    ApiToken.objects.filter(pk=issued.token.pk).update(
        expires_at=timezone.now() + timedelta(days=3), last_used_at=timezone.now(), last_used_ip="192.0.2.7"
    )
    expected = ApiToken.objects.select_related("user").get(pk=issued.token.pk)

    # One query: the token with its user (the last use was just written, from the same address).
    with django_assert_num_queries(1):
        token = token_authenticate(secret=issued.secret, ip="192.0.2.7")

    for field in ApiToken._meta.concrete_fields:
        assert getattr(token, field.attname) == getattr(expected, field.attname), field.name
    for field in type(owner)._meta.concrete_fields:
        assert getattr(token.user, field.attname) == getattr(expected.user, field.attname), field.name
    assert token.scopes == ["read", "write"]  # decoded JSON, not its text
    assert token.expires_at.tzinfo is not None
    assert not token._state.adding and token.user.pk == owner.pk
    token.save(update_fields=["name"])  # a loaded row, saved as an update
    assert ApiToken.objects.count() == 1
