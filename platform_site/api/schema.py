"""OpenAPI additions: the error envelope, every error status an operation can answer, rate-limit headers.

Views declare their successful responses; this hook declares the errors, by rules that follow the machinery
every request goes through (schemathesis checks in CI that nothing else comes back, see scripts/contract.sh):

- every operation: 400 (a Host header not served, a malformed query), 406 (an Accept header no renderer
  matches), 429 (rate limits) and 500; and 414 for a request line longer than the HTTP server takes
  (gunicorn answers it, in HTML, before the application runs);
- every operation that needs credentials: 401, and 403 (a role too low, a read-only token, CSRF on a session);
- 404 wherever an object is looked up: a path parameter, a reference in the body or query, a page past the last;
- 409 on every change (POST, PUT, PATCH, DELETE): a state, a name or a role that conflicts; and on every
  operation that takes a workspace reference (`{name}` under /instances and /logs): a name several visible
  workspaces share is AMBIGUOUS_REFERENCE, and some reads need a state (connect needs `running`);
- 413 on every request that may carry a body, 415 where the operation reads one;
- 410 on the answers to an invitation (expired, revoked);
- 503 PROVIDER_UNAVAILABLE with Retry-After where the cloud provider is called during the request, and the
  healthcheck's own 503 (its usual body, "degraded").

The error codes come from `ErrorCode` (platform_site/error_codes.py): the envelope's `code` enum lists them all,
and each `ErrorNNN` response narrows it to the codes whose status is NNN (the handler answers a code only with
its own status), so the contract gate checks the pairing too.
"""

from platform_site.error_codes import ErrorCode, codes_for_status

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
            # Some errors carry more members (below); clients must ignore the ones they do not know.
            "additionalProperties": True,
            "properties": {
                "code": {
                    "type": "string",
                    "enum": [code.value for code in sorted(ErrorCode)],
                    "description": "Stable, upper-case error code (HTTP status): meaning.\n\n"
                    + "\n".join(f"- `{code}` ({code.status}): {code.meaning}" for code in sorted(ErrorCode)),
                },
                "message": {"type": "string"},
                "details": {"type": "string"},
                "remediation": {
                    "type": "string",
                    "description": "What to do next: the raise site's advice, else the code's default one.",
                },
                "timestamp": {"type": "string", "format": "date-time"},
                "request_id": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "Validation errors by field path (VALIDATION_ERROR and other 400s).",
                },
                "candidates": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                    "description": "AMBIGUOUS_REFERENCE: the objects the reference could mean (use one's id).",
                },
                "limit": {"type": "integer", "description": "Sending limits: the limit that was reached."},
                "remaining": {"type": "integer", "description": "Sending limits: what is left of it now."},
                "requested": {"type": "integer", "description": "Sending limits: what the request needed."},
                "retry_after": {"type": "integer", "description": "Seconds until retrying may succeed."},
            },
        }
    },
}

_ERROR_RESPONSES = {
    "400": "Invalid request; see `fields` for VALIDATION_ERROR.",
    "401": "Missing or invalid credentials.",
    "403": "Not allowed.",
    "404": "Not found, or not visible to the caller.",
    "405": "Method not allowed (for methods an endpoint does not list).",
    "406": "No response format matches the Accept header.",
    "409": "Conflicts with the current state.",
    "410": "Gone: the invitation expired or was revoked.",
    "413": "The request body is too large.",
    "415": "The request body has a content type the endpoint does not accept.",
    "429": "Rate limit spent; see Retry-After.",
    "500": "Unexpected server error.",
    "503": "The cloud provider is throttling or unreachable; see Retry-After.",
}

_PUBLIC_OPERATIONS = {"healthcheck_retrieve", "auth_providers_list", "auth_login_retrieve"}
# Operations that look nothing up: no path parameter, no reference in the body or query, no pages.
_NOTHING_TO_FIND = {
    "healthcheck_retrieve",
    "auth_providers_list",
    "auth_logout_create",
    "daemon_status_retrieve",
    "me_profile_retrieve",
    "tokens_create",
    "tokens_purge_create",
    "organizations_create",
    "templates_list",
    "templates_validate_retrieve",
    "logs_list",
    "profiles_list",
    "invitations_me_list",
}
# Paths whose operations may call the cloud provider while the request waits.
_PROVIDER_PATH_PREFIXES = ("/api/v1/instances", "/api/v1/logs/")
# Paths that take a workspace reference: a name, a workspace id or an instance id.
_WORKSPACE_REFERENCE_PREFIXES = ("/api/v1/instances/{name}", "/api/v1/logs/{name}")
_ANSWER_PATH_PREFIX = "/api/v1/invitations/{invitation_id}/"
_BODY_METHODS = {"post", "put", "patch", "delete"}
_CHANGE_METHODS = {"post", "put", "patch", "delete"}


def _header_refs() -> dict:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_LIMIT_HEADERS}


def _error_statuses(path: str, method: str, operation: dict) -> list[str]:
    operation_id = operation.get("operationId", "")
    statuses = ["400", "406", "429", "500"]
    if operation_id not in _PUBLIC_OPERATIONS:
        statuses += ["401", "403"]
    if operation_id not in _NOTHING_TO_FIND:
        statuses.append("404")
    if method in _CHANGE_METHODS or path.startswith(_WORKSPACE_REFERENCE_PREFIXES):
        statuses.append("409")
    if method in _BODY_METHODS:
        statuses.append("413")
    if "requestBody" in operation:
        statuses.append("415")
    if path.startswith(_ANSWER_PATH_PREFIX) and method == "post":
        statuses.append("410")
    if path.startswith(_PROVIDER_PATH_PREFIXES) or operation_id == "healthcheck_retrieve":
        statuses.append("503")
    return statuses


# Answered by the HTTP server (gunicorn's limit_request_line), not by Carrel: no envelope, no rate-limit headers.
URI_TOO_LONG = {
    "description": "The request line is longer than the HTTP server accepts (gunicorn: 4094 bytes).",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def _error_schema(status: str) -> dict:
    """The envelope, with `code` narrowed to the codes answered with this status."""
    codes = [code.value for code in codes_for_status(int(status))]
    return {
        "allOf": [
            {"$ref": "#/components/schemas/ErrorEnvelope"},
            {
                "type": "object",
                "properties": {
                    "error": {"type": "object", "properties": {"code": {"type": "string", "enum": codes}}},
                },
            },
        ]
    }


def _error_description(status: str, description: str) -> str:
    codes = ", ".join(f"`{code}`" for code in codes_for_status(int(status)))
    return f"{description}\n\nCodes: {codes}."


def add_envelope_and_rate_limit_headers(result, generator, request, public):
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE
    components["headers"] = RATE_LIMIT_HEADERS
    responses = components.setdefault("responses", {})
    responses["UriTooLong"] = URI_TOO_LONG
    for status, description in _ERROR_RESPONSES.items():
        headers = _header_refs()
        if status in ("429", "503"):
            headers["Retry-After"] = {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        if status == "401":
            headers["WWW-Authenticate"] = {"description": "The auth scheme (Bearer).", "schema": {"type": "string"}}
        if status == "405":
            headers["Allow"] = {"description": "The methods the endpoint allows.", "schema": {"type": "string"}}
        responses[f"Error{status}"] = {
            "description": _error_description(status, description),
            "headers": headers,
            "content": {"application/json": {"schema": _error_schema(status)}},
        }

    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            for response in operation.get("responses", {}).values():
                if "$ref" not in response:
                    response.setdefault("headers", {}).update(_header_refs())
            statuses = _error_statuses(path, method, operation)
            if operation.get("operationId") == "healthcheck_retrieve" and "200" in operation["responses"]:
                # The healthcheck answers 503 with its usual body ("degraded") when the database is unreachable.
                degraded = dict(operation["responses"]["200"])
                degraded["description"] = "Degraded: the database is unreachable."
                operation["responses"].setdefault("503", degraded)
            for status in statuses:
                operation["responses"].setdefault(status, {"$ref": f"#/components/responses/Error{status}"})
            operation["responses"].setdefault("414", {"$ref": "#/components/responses/UriTooLong"})
            if operation.get("operationId") in _PUBLIC_OPERATIONS:
                operation["security"] = [{}]
    return result
