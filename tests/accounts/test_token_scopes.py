"""A read-only token may revoke itself, but revoking, deleting or purging other tokens needs `write`."""

import hashlib

from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.conftest import assert_error, bearer_client


def test_a_read_only_token_cannot_revoke_another_token(owner):
    other = bearer_client(owner)
    reader = bearer_client(owner, scopes=["read"])
    response = reader.post(f"/api/v1/tokens/revoke/{other.token.token.token_hash}")
    assert_error(response, 403, "INSUFFICIENT_SCOPE")
    assert ApiToken.objects.get(pk=other.token.token.pk).revoked_at is None
    assert other.get("/api/v1/me/profile").status_code == 200
    # Unknown digests answer the same: a read token learns nothing about which tokens exist.
    assert_error(reader.post(f"/api/v1/tokens/revoke/{'0' * 64}"), 403, "INSUFFICIENT_SCOPE")


def test_a_read_only_token_can_revoke_itself(owner):
    reader = bearer_client(owner, scopes=["read"])
    digest = hashlib.sha256(reader.token.secret.encode()).hexdigest()
    assert reader.post(f"/api/v1/tokens/revoke/{digest.upper()}").status_code == 200
    assert_error(reader.get("/api/v1/me/profile"), 401, "TOKEN_REVOKED")


def test_a_write_token_and_a_session_can_revoke_other_tokens(owner):
    first, second = bearer_client(owner), bearer_client(owner)
    writer = bearer_client(owner, scopes=["read", "write"])
    assert writer.post(f"/api/v1/tokens/revoke/{first.token.token.token_hash}").status_code == 200
    session = APIClient()
    session.force_login(owner)
    assert session.post(f"/api/v1/tokens/revoke/{second.token.token.token_hash}").status_code == 200
    assert ApiToken.objects.filter(revoked_at__isnull=False).count() == 2


def test_a_read_only_token_cannot_delete_or_purge_tokens(owner):
    other = bearer_client(owner)
    reader = bearer_client(owner, scopes=["read"])
    assert_error(reader.delete(f"/api/v1/tokens/{other.token.token.pk}"), 403, "INSUFFICIENT_SCOPE")
    assert_error(reader.delete(f"/api/v1/tokens/{reader.token.token.pk}"), 403, "INSUFFICIENT_SCOPE")
    assert_error(reader.post("/api/v1/tokens/purge"), 403, "INSUFFICIENT_SCOPE")
    assert ApiToken.objects.count() == 2


def test_a_non_hex_digest_is_a_404_not_a_500(owner):
    writer = bearer_client(owner)
    assert_error(writer.post("/api/v1/tokens/revoke/%C3%A9t%C3%A9"), 404, "TOKEN_NOT_FOUND")
    reader = bearer_client(owner, scopes=["read"])
    assert_error(reader.post("/api/v1/tokens/revoke/%C3%A9t%C3%A9"), 403, "INSUFFICIENT_SCOPE")
