from io import StringIO

import yaml
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate
from rest_framework.test import APIClient


def _api_routes() -> set[str]:
    """Every /api/v1 route as an OpenAPI path template."""
    resolver = get_resolver("platform_site.api.urls")
    routes = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                for converter in ("str:", "int:", "slug:"):
                    route = route.replace("<" + converter, "{")
                routes.add("/api/v1/" + route.replace("<", "{").replace(">", "}"))

    walk(resolver.url_patterns)
    return routes - {"/api/v1/schema/", "/api/v1/docs/"}


def test_the_schema_is_valid_openapi_3_and_lists_every_endpoint(db):
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    validate(schema)
    assert _api_routes() <= set(schema["paths"]), _api_routes() - set(schema["paths"])


def test_the_schema_declares_the_envelope_and_rate_limit_headers(db):
    schema = yaml.safe_load(APIClient().get("/api/v1/schema/").content)
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]["properties"]["error"]
    assert {"code", "message", "details", "remediation", "timestamp", "request_id"} <= set(envelope["required"])
    assert "PROJECT_NOT_FOUND" in envelope["properties"]["code"]["enum"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "429" in operation["responses"], (path, method)
            ok = next(str(code) for code in operation["responses"] if str(code).startswith(("2", "3")))
            assert "X-RateLimit-Limit" in operation["responses"][ok]["headers"], (path, method)
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_schema_generates_without_warnings(db):
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert "openapi" in out.getvalue()


def test_swagger_ui_is_served(db):
    response = APIClient().get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
