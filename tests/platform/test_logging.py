"""Logs: one access line per request, 4xx without warnings or tracebacks, 5xx with their traceback once,
secrets redacted, and a JSON format for production."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from console.views.home import HomeView
from platform_site.api.system import HealthcheckView
from platform_site.logging import JsonFormatter, PlainFormatter, UncaughtServerErrorsOnly
from platform_site.middleware import QueryCounter, RedactSecretsLogFilter, RequestContextLogFilter
from tests.conftest import assert_error

SECRET = "carrel_" + "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3t"


def boom(*args, **kwargs):
    raise RuntimeError("boom in the view")


def deny(*args, **kwargs):
    raise PermissionDenied("not for you")


@pytest.fixture
def logged(settings, caplog):
    """Every record any logger writes (at INFO and above) while the test runs, with the access log on."""
    settings.CARREL_ACCESS_LOG = True
    caplog.set_level(logging.INFO)
    return caplog


@pytest.fixture
def client():
    return APIClient(raise_request_exception=False)


def access_lines(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "carrel.access"]


def with_traceback(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info or record.exc_text]


def assert_one_quiet_line(caplog, response, status: int) -> logging.LogRecord:
    """The request wrote its access line and nothing at WARNING or above, and no traceback."""
    assert response.status_code == status, response.content
    (line,) = access_lines(caplog)
    assert line.status == status and line.levelno == logging.INFO
    assert line.request_id == response["X-Request-ID"]
    assert not [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert not with_traceback(caplog)
    return line


# --- 4xx: one line each, no warning, no traceback ------------------------------------------------------


def test_an_api_404_writes_one_access_line_and_no_warning(owner_client, logged):
    owner_client.raise_request_exception = False
    response = owner_client.get("/api/v1/projects/proj_0123456789abcdef")
    assert_error(response, 404, "PROJECT_NOT_FOUND")
    line = assert_one_quiet_line(logged, response, 404)
    assert line.getMessage().startswith("GET /api/v1/projects/proj_0123456789abcdef 404 ")


@pytest.mark.parametrize("path", ["/api/v1/no-such-route", "/no-such-page/"])
def test_an_unknown_route_writes_one_access_line_and_no_warning(db, logged, client, path):
    assert_one_quiet_line(logged, client.get(path), 404)


def test_a_400_writes_one_access_line_and_no_warning(owner_client, logged):
    owner_client.raise_request_exception = False
    response = owner_client.post("/api/v1/projects", {"name": ""}, format="json")
    assert_error(response, 400, "VALIDATION_ERROR")
    assert_one_quiet_line(logged, response, 400)


def test_a_401_writes_one_access_line_and_no_warning(db, logged, client):
    response = client.get("/api/v1/projects")
    assert_error(response, 401, "AUTHENTICATION_REQUIRED")
    assert_one_quiet_line(logged, response, 401)


def test_a_permission_denied_raised_by_a_django_view_has_no_traceback(db, logged, client, monkeypatch):
    # Django logs this one with the exception's traceback ("Forbidden (Permission denied)"): not any more.
    monkeypatch.setattr(HomeView, "get", deny)
    assert_one_quiet_line(logged, client.get("/"), 403)


# --- 5xx: the traceback, once --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "path"),
    [(HealthcheckView, "/api/v1/healthcheck"), (HomeView, "/")],
    ids=["api-view", "django-view"],
)
def test_a_500_logs_its_traceback_once(db, logged, client, monkeypatch, target, path):
    monkeypatch.setattr(target, "get", boom)
    response = client.get(path)
    assert response.status_code == 500
    (line,) = access_lines(logged)
    assert line.status == 500 and line.request_id == response["X-Request-ID"]
    (error,) = with_traceback(logged)
    assert error.levelno == logging.ERROR and error.exc_info[0] is RuntimeError
    assert error.request_id == response["X-Request-ID"]
    # No second "Internal Server Error" line without the traceback.
    assert [r for r in logged.records if r.levelno >= logging.WARNING] == [error]


def test_django_request_keeps_only_uncaught_server_errors():
    keep = UncaughtServerErrorsOnly().filter

    def record(status, exc_info=None):
        made = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "x", (), exc_info)
        made.status_code = status
        return made

    try:
        raise RuntimeError("x")
    except RuntimeError:
        exc_info = sys.exc_info()
    assert keep(record(500, exc_info))
    assert not keep(record(404)) and not keep(record(403, exc_info)) and not keep(record(500))
    assert keep(logging.LogRecord("django.request", logging.ERROR, __file__, 1, "no status", (), None))


# --- The access line ---------------------------------------------------------------------------------------


def test_the_access_line_has_request_id_method_path_status_and_duration(db, logged, client):
    response = client.get("/api/v1/healthcheck?verbose=1")
    (line,) = access_lines(logged)
    assert (line.method, line.path, line.status) == ("GET", "/api/v1/healthcheck?verbose=1", 200)
    assert isinstance(line.duration_ms, float) and line.duration_ms >= 0
    assert line.request_id == response["X-Request-ID"] and line.request_id.startswith("req_")
    assert line.getMessage().startswith("GET /api/v1/healthcheck?verbose=1 200 ")


def test_the_access_line_counts_the_sql_queries_with_debug_off(owner_client, project, logged):
    assert not django_settings.DEBUG
    with CaptureQueriesContext(connection) as captured:
        response = owner_client.get("/api/v1/projects")
    assert response.status_code == 200
    (line,) = access_lines(logged)
    assert line.queries == len(captured.captured_queries) > 0
    assert line.getMessage().endswith(f"ms {line.queries}q")


def test_each_access_line_counts_its_own_requests_queries(owner_client, project, logged):
    owner_client.get("/api/v1/projects")
    owner_client.get("/api/v1/projects")
    first, second = access_lines(logged)
    assert first.queries > 0 and second.queries <= first.queries  # not a running total
    assert not connection.execute_wrappers  # the counter is gone once the request is over


def test_queries_are_not_counted_when_the_access_log_is_off(owner_client, settings, monkeypatch):
    settings.CARREL_ACCESS_LOG = False
    counted = []
    monkeypatch.setattr(QueryCounter, "__call__", lambda *args: counted.append(args))
    assert owner_client.get("/api/v1/projects").status_code == 200
    assert not counted


def test_a_token_in_the_query_string_is_redacted_from_the_access_line(db, logged, client):
    client.get(f"/api/v1/healthcheck?access_token={SECRET}&verbose=1")
    (line,) = access_lines(logged)
    assert line.path == "/api/v1/healthcheck?access_token=[redacted]&verbose=1"
    assert line.getMessage().startswith("GET /api/v1/healthcheck?access_token=[redacted]&verbose=1 200 ")
    for formatter in (PlainFormatter(), JsonFormatter()):
        assert SECRET not in formatter.format(line)
    assert not any(SECRET in record.getMessage() for record in logged.records)


def test_no_access_line_when_the_access_log_is_off(db, settings, caplog, client):
    settings.CARREL_ACCESS_LOG = False
    caplog.set_level(logging.INFO)
    client.get("/api/v1/healthcheck")
    assert not access_lines(caplog)


# --- Formats ------------------------------------------------------------------------------------------------


@pytest.fixture
def json_output():
    """A handler configured like the production console handler with CARREL_LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecretsLogFilter())
    handler.addFilter(RequestContextLogFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_json_lines_parse_and_carry_the_fields(db, logged, client, json_output, monkeypatch):
    ok = client.get(f"/api/v1/healthcheck?token={SECRET}")
    missing = client.get("/api/v1/no-such-route")
    monkeypatch.setattr(HealthcheckView, "get", boom)
    failed = client.get("/api/v1/healthcheck")

    entries = [json.loads(line) for line in json_output.getvalue().splitlines()]
    for entry in entries:
        assert {"time", "level", "logger", "message", "request_id"} <= set(entry)
        assert entry["time"].endswith("Z")
    access = [entry for entry in entries if entry["logger"] == "carrel.access"]
    assert [(e["method"], e["status"], e["request_id"]) for e in access] == [
        ("GET", 200, ok["X-Request-ID"]),
        ("GET", 404, missing["X-Request-ID"]),
        ("GET", 500, failed["X-Request-ID"]),
    ]
    assert access[0]["path"] == "/api/v1/healthcheck?token=[redacted]"
    assert all(isinstance(e["duration_ms"], (int, float)) for e in access)
    (error,) = [entry for entry in entries if "exception" in entry]
    assert error["level"] == "ERROR" and error["request_id"] == failed["X-Request-ID"]
    assert "RuntimeError: boom in the view" in error["exception"]
    assert SECRET not in json_output.getvalue()


def test_both_formats_redact_tracebacks_too():
    try:
        raise ValueError(f"bad header Bearer {SECRET}")
    except ValueError:
        record = logging.LogRecord("carrel.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    plain = PlainFormatter().format(record)
    assert "ValueError: bad header Bearer [redacted]" in plain and SECRET not in plain
    assert " ERROR carrel.x [-] failed" in plain
    entry = json.loads(JsonFormatter().format(record))
    assert SECRET not in entry["exception"] and entry["request_id"] == "-"
    assert "request" not in entry  # other `extra` values are never dumped


def _log_one_line(log_format: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "platform_site.settings", "CARREL_LOG_FORMAT": log_format}
    code = "import django, logging; django.setup(); logging.getLogger('carrel.test').warning('hello %s', 'there')"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def test_carrel_log_format_json_writes_json_lines():
    result = _log_one_line("json")
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stderr.strip().splitlines()[-1])
    assert (entry["level"], entry["logger"], entry["message"], entry["request_id"]) == (
        "WARNING",
        "carrel.test",
        "hello there",
        "-",
    )
    plain = _log_one_line("")
    assert plain.returncode == 0 and plain.stderr.strip().endswith("WARNING carrel.test [-] hello there")
    refused = _log_one_line("xml")
    assert refused.returncode != 0 and "CARREL_LOG_FORMAT" in refused.stderr


def test_the_configuration_writes_each_record_once():
    # Django's own console handler (debug mode) and mail_admins would write Django's records a second time.
    assert logging.getLogger("django").handlers == []
    assert "uncaught_server_errors_only" in django_settings.LOGGING["loggers"]["django.request"]["filters"]
    # Celery's worker and beat write through this configuration (and its format), not a handler of their own.
    assert django_settings.CELERY_WORKER_HIJACK_ROOT_LOGGER is False
