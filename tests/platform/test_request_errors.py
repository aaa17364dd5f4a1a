"""Client mistakes answer 4xx with the envelope, never 500 or an HTML page: size, nesting, body shape, Host, CSRF."""

import io
import json

import pytest
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.test import RequestFactory
from django.urls import URLPattern, get_resolver
from rest_framework.test import APIClient

from platform_site.api import errors
from tests.conftest import assert_error

MB = 1024 * 1024


def _post_json(client, path: str, body: str, method: str = "post"):
    return getattr(client, method)(path, data=body, content_type="application/json")


def test_it_answers_413_for_a_10_mb_body(owner_client):
    body = json.dumps({"name": "x" * (10 * MB)})
    error = assert_error(_post_json(owner_client, "/api/v1/projects", body), 413, "REQUEST_TOO_LARGE")
    assert error["remediation"]


def test_it_answers_413_for_a_large_form_body(owner_client):
    response = owner_client.post("/api/v1/projects", {"name": "x" * (2 * MB)}, format="multipart")
    assert_error(response, 413, "REQUEST_TOO_LARGE")


def test_bodies_under_the_limit_are_parsed(owner_client, org):
    body = json.dumps({"name": "Big description", "description": "x" * (MB // 2)})
    assert _post_json(owner_client, "/api/v1/projects", body).status_code == 201


def test_a_body_too_large_met_inside_a_view_is_413_too(owner_client, settings):
    # Without a Content-Length check in front (the middleware's), DRF reads the body and Django refuses it.
    from platform_site.api.parsers import JSONObjectParser

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    with pytest.raises(RequestDataTooBig):
        JSONObjectParser().parse(io.BytesIO(b'{"name": "far too long"}'))
    request = RequestFactory().post("/api/v1/projects")
    assert errors.exception_handler(RequestDataTooBig("big"), {"request": request}).status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        "[" * 33 + "]" * 33,
        '{"name": ' + "[" * 40 + "]" * 40 + "}",
    ],
    ids=["arrays-100000", "objects-100000", "arrays-33", "nested-in-object"],
)
def test_it_answers_400_for_deeply_nested_json(owner_client, body):
    assert_error(_post_json(owner_client, "/api/v1/projects", body), 400, "PARSE_ERROR")


def test_32_levels_of_nesting_are_fine(owner_client, org):
    from platform_site.api.parsers import nesting_depth_exceeds

    value: list = []
    for _ in range(30):
        value = [value]
    body = {"name": "Deep", "ignored": value}  # the object, then 31 levels of arrays: 32
    assert not nesting_depth_exceeds(body, 32)
    assert nesting_depth_exceeds({"x": body}, 32)
    assert _post_json(owner_client, "/api/v1/projects", json.dumps(body)).status_code == 201


@pytest.mark.parametrize("body", ["[]", "null", '"x"', "42", "true", "[{}]"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/projects"),
        ("post", "/api/v1/tokens"),
        ("post", "/api/v1/tokens/purge"),
        ("post", "/api/v1/profiles/switch"),
        ("post", "/api/v1/instances/launch"),
        ("post", "/api/v1/organizations"),
    ],
)
def test_it_answers_400_validation_error_for_a_body_that_is_not_an_object(owner_client, org, method, path, body):
    error = assert_error(_post_json(owner_client, path, body, method), 400, "VALIDATION_ERROR")
    assert "JSON object" in error["details"]


def _concrete_api_paths(project_id: str) -> list[str]:
    """Every /api/v1 route with its path parameters filled in (some with real ids, some not)."""
    resolver = get_resolver("platform_site.api.urls")
    paths = []
    for pattern in resolver.url_patterns:
        assert isinstance(pattern, URLPattern)
        route = str(pattern.pattern)
        for name in pattern.pattern.converters:
            value = project_id if name == "project_id" else "x"
            route = route.replace(f"<str:{name}>", value).replace(f"<{name}>", value)
        paths.append("/api/v1/" + route)
    return paths


BAD_BODIES = {
    "array": ("[]", "application/json"),
    "null": ("null", "application/json"),
    "number": ("42", "application/json"),
    "deep": ("[" * 5000 + "]" * 5000, "application/json"),
    "form": ("name=x&members=a&members=b&scopes=read&project=1&confirm=DELETE", "application/x-www-form-urlencoded"),
    "multipart": (None, "multipart"),
    "garbage-json": ("\xff\xfe{", "application/json"),
    "xml": ("<a/>", "application/xml"),
}


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_no_endpoint_answers_500_to_an_odd_body(owner_client, project, kind):
    body, content_type = BAD_BODIES[kind]
    for path in _concrete_api_paths(project.id):
        if path.endswith(("/schema/", "/docs/")):
            continue
        for method in ("post", "put", "patch", "delete"):
            if content_type == "multipart":
                response = getattr(owner_client, method)(
                    path, {"name": "x", "members": ["a", "b"], "file": b"data"}, format="multipart"
                )
            else:
                response = getattr(owner_client, method)(path, data=body, content_type=content_type)
            assert response.status_code < 500, (kind, method, path, response.content[:300])
            if response.status_code >= 400:
                assert_error(response, response.status_code)


# --- Errors Django answers itself ----------------------------------------------------------------------


def test_a_wrong_host_under_api_answers_the_envelope(db, settings):
    settings.ALLOWED_HOSTS = ["carrel.example.org"]
    error = assert_error(APIClient().get("/api/v1/healthcheck", HTTP_HOST="evil.example"), 400, "BAD_HOST")
    assert error["remediation"]
    assert APIClient().get("/api/v1/healthcheck", HTTP_HOST="carrel.example.org").status_code == 200
    # Outside the API, Django's own page.
    page = APIClient().get("/", HTTP_HOST="evil.example")
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")


def test_a_wrong_host_answers_the_envelope_in_debug_mode_too(db, settings):
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["carrel.example.org"]
    assert_error(APIClient().post("/api/v1/tokens", {}, HTTP_HOST="evil.example"), 400, "BAD_HOST")


def test_a_wrong_host_is_logged_once_without_an_error(db, settings, caplog):
    settings.ALLOWED_HOSTS = ["carrel.example.org"]
    with caplog.at_level("INFO"):
        APIClient().get("/api/v1/healthcheck", HTTP_HOST="evil.example")
    assert [r.name for r in caplog.records if "evil.example" in r.getMessage()] == ["django.security.DisallowedHost"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_handler400_renders_the_envelope_under_api(db):
    request = RequestFactory().post("/api/v1/projects")
    response = errors.handler400(request, RequestDataTooBig("too big"))
    assert response.status_code == 413
    assert json.loads(response.content)["error"]["code"] == "REQUEST_TOO_LARGE"
    from django.core.exceptions import TooManyFieldsSent

    response = errors.handler400(request, TooManyFieldsSent("fields"))
    assert response.status_code == 400
    assert json.loads(response.content)["error"]["code"] == "BAD_REQUEST"
    page = errors.handler400(RequestFactory().get("/accounts/login/"), TooManyFieldsSent("fields"))
    assert page.status_code == 400 and not page["Content-Type"].startswith("application/json")


def test_handler403_renders_the_envelope_under_api(db):
    response = errors.handler403(RequestFactory().get("/api/v1/x"), PermissionDenied())
    assert response.status_code == 403
    assert json.loads(response.content)["error"]["code"] == "PERMISSION_DENIED"


def test_form_bodies_are_refused_as_415_not_parsed(owner_client):
    # The API reads JSON objects only: a form encoding's empty value would read as "not sent".
    fields = "&".join(f"f{index}=1" for index in range(1500))  # over DATA_UPLOAD_MAX_NUMBER_FIELDS too
    response = owner_client.post("/api/v1/projects", data=fields, content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    purge = owner_client.post(
        "/api/v1/tokens/purge",
        data="email=owner%40lab-a.example&password=",
        content_type="application/x-www-form-urlencoded",
    )
    assert_error(purge, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert owner_client.get("/api/v1/tokens").status_code == 200  # the caller's token was not purged


def test_csrf_failures_outside_drf_views_answer_the_envelope(owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    error = assert_error(client.post("/api/v1/no/such/route", {"a": "b"}, format="json"), 403, "CSRF_FAILED")
    assert "CSRF" in error["details"]


def test_the_new_codes_are_documented():
    for code in ("REQUEST_TOO_LARGE", "BAD_HOST", "BAD_REQUEST"):
        assert code in errors.ERROR_CODES


def test_no_endpoint_answers_500_to_options(owner_client, project):
    """OPTIONS (DRF's metadata) describes each view's serializer: a view without one must not fail."""
    failures = []
    for path in _concrete_api_paths(project.id):
        if path.endswith(("/schema/", "/docs/")):
            continue
        response = owner_client.options(path, HTTP_ACCEPT="application/json")
        if response.status_code >= 500:
            failures.append((path, response.status_code))
    assert failures == []
