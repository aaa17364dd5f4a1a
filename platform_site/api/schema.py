"""OpenAPI additions: the error envelope, error responses and rate-limit headers on every operation."""

from platform_site.api.errors import ERROR_CODES

RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {
        "description": "Requests allowed in the current window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the current window (always less than the limit).",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "When the current window ends, in seconds since the Epoch.",
        "schema": {"type": "integer"},
    },
    "X-Request-ID": {
        "description": "The request's id; quote it when reporting a problem.",
        "schema": {"type": "string"},
    },
}

ERROR_ENVELOPE = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details", "remediation", "timestamp", "request_id"],
            "properties": {
                "code": {
                    "type": "string",
                    "enum": sorted(ERROR_CODES),
                    "description": "Stable, upper-case error code:\n\n"
                    + "\n".join(f"- `{code}`: {meaning}" for code, meaning in sorted(ERROR_CODES.items())),
                },
                "message": {"type": "string"},
                "details": {"type": "string"},
                "remediation": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time"},
                "request_id": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "Validation errors by field path (VALIDATION_ERROR only).",
                },
            },
        }
    },
}

_ERROR_RESPONSES = {
    "400": "Invalid request (VALIDATION_ERROR, PARSE_ERROR).",
    "401": "Missing or invalid credentials.",
    "403": "Not allowed (PERMISSION_DENIED, INSUFFICIENT_SCOPE, CSRF_FAILED).",
    "404": "Not found, or not visible to the caller.",
    "405": "Method not allowed.",
    "409": "Conflicts with the current state.",
    "429": "Rate limit spent; see Retry-After.",
    "500": "Unexpected server error.",
}

_PUBLIC_OPERATIONS = {"healthcheck_retrieve", "auth_providers_list", "auth_login_retrieve"}


def _header_refs() -> dict:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_LIMIT_HEADERS}


def add_envelope_and_rate_limit_headers(result, generator, request, public):
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE
    components["headers"] = RATE_LIMIT_HEADERS
    responses = components.setdefault("responses", {})
    for status, description in _ERROR_RESPONSES.items():
        headers = _header_refs()
        if status == "429":
            headers["Retry-After"] = {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        if status == "401":
            headers["WWW-Authenticate"] = {"description": "The auth scheme (Bearer).", "schema": {"type": "string"}}
        responses[f"Error{status}"] = {
            "description": description,
            "headers": headers,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
        }

    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            for response in operation.get("responses", {}).values():
                if "$ref" not in response:
                    response.setdefault("headers", {}).update(_header_refs())
            codes = ["429", "500"]
            if operation.get("operationId") not in _PUBLIC_OPERATIONS:
                codes += ["401", "403"]
            if "{" in path:
                codes.append("404")
            if method in {"post", "put", "patch"}:
                codes.append("400")
            if method in {"post", "put", "patch", "delete"}:
                codes.append("409")
            for status in codes:
                operation["responses"].setdefault(status, {"$ref": f"#/components/responses/Error{status}"})
            if operation.get("operationId") in _PUBLIC_OPERATIONS:
                operation["security"] = [{}]
    return result
