"""Secrets in URLs (tokens, OAuth codes, invitation and confirmation links) never reach a log."""

import logging

import pytest
import yaml
from django.conf import settings
from rest_framework.test import APIClient

from platform_site.middleware import RedactSecretsLogFilter, redact_secrets
from tests.conftest import assert_error, bearer_client

SECRET = "carrel_" + "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3t"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"GET /api/v1/me/profile?access_token={SECRET}&page=2 HTTP/1.1", "page=2"),
        ("GET /accounts/github/login/callback/?code=oauth-code-123&state=st4te HTTP/1.1", "/callback/"),
        ("GET /x?token=abc123;key=k3y&api_key=zzz&client_secret=yyy&password=hunter2", "/x?"),
        ("Not Found: /invitations/accept/Zm9vYmFyYmF6cXV4/", "/invitations/accept/"),
        ("GET /accounts/confirm-email/MTIzNDU2:1uXyZ:abcdef/ HTTP/1.1", "/accounts/confirm-email/"),
        ("GET /accounts/password/reset/key/1-set-password/ HTTP/1.1", "/accounts/password/reset/key/"),
        (f"Authorization: Bearer {SECRET}", "Authorization: Bearer "),
        (f"token {SECRET} was used", "was used"),
    ],
)
def test_it_redacts_secrets_and_keeps_the_rest(text, kept):
    redacted = redact_secrets(text)
    for secret in (SECRET, "oauth-code-123", "st4te", "abc123", "k3y", "zzz", "yyy", "hunter2", "Zm9vYmFy", "MTIz"):
        assert secret not in redacted
    assert "1-set-password" not in redacted
    assert "[redacted]" in redacted and kept in redacted


def test_it_leaves_ordinary_urls_alone():
    for text in ("GET /api/v1/projects?page=2&page_size=50 HTTP/1.1", "/api/v1/tokens/revoke/" + "a" * 64):
        assert redact_secrets(text) == text


def test_the_filter_rewrites_formatted_messages_safely():
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s', ("GET /?token=x HTTP/1.1", 200, 5), None
    )
    assert RedactSecretsLogFilter().filter(record)
    assert record.getMessage() == '"GET /?token=[redacted] HTTP/1.1" 200 5'
    unformattable = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", ("only one",), None)
    assert RedactSecretsLogFilter().filter(unformattable)  # left for logging to report


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def collected():
    handler = _Collect()
    loggers = [logging.getLogger(name) for name in ("django.server", "django.request", "carrel.access")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.messages
    for logger in loggers:
        logger.removeHandler(handler)


def test_runserver_and_django_request_logs_are_redacted(collected):
    # What runserver (the sandbox) writes for each request, and Django's warning for a 404.
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"GET /api/v1/me/profile?access_token={SECRET} HTTP/1.1", 401, 9
    )
    logging.getLogger("django.request").warning("Not Found: %s", "/invitations/accept/Zm9vYmFyYmF6cXV4/")
    assert collected == [
        '"GET /api/v1/me/profile?access_token=[redacted] HTTP/1.1" 401 9',
        "Not Found: /invitations/accept/[redacted]/",
    ]


def test_the_access_log_is_redacted(db, collected, settings):
    settings.CARREL_ACCESS_LOG = True
    APIClient().get(f"/api/v1/healthcheck?token={SECRET}&verbose=1")
    APIClient().get("/invitations/accept/Zm9vYmFyYmF6cXV4/")
    access = [message for message in collected if message.startswith("GET ")]
    assert access[0].startswith("GET /api/v1/healthcheck?token=[redacted]&verbose=1 200 ")
    assert access[1].startswith("GET /invitations/accept/[redacted]/ ")
    assert not any(SECRET in message or "Zm9vYmFy" in message for message in collected)


def test_the_logging_configuration_redacts_every_handler():
    for name, handler in settings.LOGGING["handlers"].items():
        assert "redact_secrets" in handler.get("filters", []), name
    for name in ("django.server", "django.request", "carrel.access"):
        assert "redact_secrets" in settings.LOGGING["loggers"][name]["filters"]


def test_a_bearer_token_in_the_query_string_is_not_accepted(owner):
    secret = bearer_client(owner).token.secret
    for param in ("access_token", "token", "bearer", "key"):
        assert_error(APIClient().get(f"/api/v1/me/profile?{param}={secret}"), 401, "AUTHENTICATION_REQUIRED")


def test_gunicorn_writes_no_access_log_of_its_own():
    compose = yaml.safe_load((settings.BASE_DIR / "docker-compose.yml").read_text())
    for command in (compose["services"]["web"]["command"], (settings.BASE_DIR / "Dockerfile").read_text()):
        text = " ".join(command) if isinstance(command, list) else command
        assert "--access-logfile" not in text or ("%(r)s" not in text and "%(U)s" in text)
    assert compose["services"]["web"]["environment"].get("CARREL_ACCESS_LOG", "1") not in ("0", "false")
