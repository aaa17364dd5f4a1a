"""The one error envelope for everything under /api/.

    {"error": {"code", "message", "details", "remediation", "timestamp", "request_id"}}

Validation errors add "fields": {field: [messages]}. Codes are stable and upper-case.
"""

import logging

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response

from platform_site import errors, request_context

logger = logging.getLogger("carrel.api")

# Every code the API can answer with, and what it means; published in the OpenAPI schema.
ERROR_CODES: dict[str, str] = {
    "VALIDATION_ERROR": "A field is missing or invalid; see `fields`.",
    "PARSE_ERROR": "The request body is not valid JSON.",
    "UNSUPPORTED_MEDIA_TYPE": "The request body has a content type the endpoint does not accept.",
    "NOT_ACCEPTABLE": "No response format matches the Accept header.",
    "AUTHENTICATION_REQUIRED": "No credentials were sent.",
    "AUTHENTICATION_FAILED": "The credentials are wrong.",
    "TOKEN_INVALID": "The bearer token is unknown.",
    "TOKEN_EXPIRED": "The bearer token has expired.",
    "TOKEN_REVOKED": "The bearer token was revoked.",
    "PERMISSION_DENIED": "The caller may see the object but not do this to it.",
    "INSUFFICIENT_SCOPE": "The token lacks the scope this request needs (e.g. `write`).",
    "CSRF_FAILED": "A browser session request lacks a valid CSRF token.",
    "NOT_FOUND": "No such object, or not visible to the caller.",
    "PAGE_NOT_FOUND": "The page number is past the last page.",
    "ROUTE_NOT_FOUND": "No API endpoint has this path.",
    "ORGANIZATION_NOT_FOUND": "No such organization visible to the caller.",
    "MEMBER_NOT_FOUND": "No such member visible to the caller.",
    "PROJECT_NOT_FOUND": "No such project visible to the caller.",
    "TOKEN_NOT_FOUND": "No such token belonging to the caller.",
    "USER_NOT_FOUND": "No such user sharing an organization with the caller.",
    "AUDIT_EVENT_NOT_FOUND": "No such audit event visible to the caller.",
    "TEMPLATE_NOT_FOUND": "No such template visible to the caller.",
    "TEMPLATE_INVALID": "The template fails validation; see `details`.",
    "TEMPLATE_IN_USE": "Other templates inherit this one.",
    "INSTANCE_NOT_FOUND": "No such workspace visible to the caller.",
    "JOB_NOT_FOUND": "No such provisioning job visible to the caller.",
    "PROFILE_NOT_FOUND": "No such cloud account (profile) visible to the caller.",
    "LOG_NOT_AVAILABLE": "The workspace has no log of that type yet.",
    "UNKNOWN_LOG_TYPE": "Log types are listed by /api/v1/logs/{instance}/types.",
    "NO_CLOUD_ACCOUNT": "The organization has no cloud account to launch in.",
    "UNKNOWN_INSTANCE_TYPE": "The instance type is not in Carrel's catalog.",
    "NO_MATCHING_INSTANCE_TYPE": "No instance type satisfies the requested configuration.",
    "UNSUPPORTED_REGION": "The region has no prices in Carrel's catalog.",
    "INVALID_SIZE": "Sizes are XS, S, M, L and XL.",
    "INVALID_STATE": "The action is not allowed in the workspace's current state.",
    "HIBERNATION_NOT_SUPPORTED": "The workspace was not launched with hibernation (instance type or image).",
    "CONFIRMATION_REQUIRED": 'Termination needs {"confirm": "DELETE"}.',
    "WORLD_SSH_NEEDS_FLAG": "Opening SSH to 0.0.0.0/0 needs allow_world_ssh: true.",
    "INVITATION_NOT_FOUND": "No such invitation, or the link is not valid.",
    "INVITATION_EXISTS": "The address already has a pending invitation to the project.",
    "INVITATION_NOT_PENDING": "Only pending invitations can be resent or revoked.",
    "INVITATION_ALREADY_ACCEPTED": "The invitation was used already (409).",
    "INVITATION_ALREADY_DECLINED": "The invitation was declined already (409).",
    "INVITATION_EXPIRED": "The invitation expired (410).",
    "INVITATION_REVOKED": "The invitation was revoked (410).",
    "INVITATION_EMAIL_MISMATCH": "The caller's verified e-mails do not include the invited address.",
    "PROVIDER_NOT_FOUND": "No such login provider is configured.",
    "METHOD_NOT_ALLOWED": "The endpoint does not support this HTTP method.",
    "CONFLICT": "The request conflicts with the current state.",
    "ALREADY_MEMBER": "The user is already a member.",
    "LAST_OWNER": "The last owner cannot be removed or demoted.",
    "ROLE_TOO_HIGH": "Nobody can grant a role above their own.",
    "ORGANIZATION_NOT_EMPTY": "The organization still has projects.",
    "PROJECT_HAS_LIVE_WORKSPACES": "The project still has workspaces that are not terminated.",
    "NAME_TAKEN": "Another object already has this name.",
    "RATE_LIMITED": "Too many requests; wait for `Retry-After` seconds.",
    "AUTH_THROTTLED": "Too many failed authentications from this address; wait for `Retry-After` seconds.",
    "PROVIDER_UNAVAILABLE": "The cloud provider is throttling or unreachable (503); retry after `Retry-After` seconds.",
    "AMBIGUOUS_REFERENCE": "The name matches several workspaces you can see; use the id or add ?project=.",
    "NAME_LOOKS_LIKE_ID": "Workspace names may not look like a workspace id (ws_…) or an instance id (i-…).",
    "FIREWALL_RULE_NOT_FOUND": "The workspace has no firewall rule at that position.",
    "TTL_LIMIT_EXCEEDED": "The TTL would pass the longest allowed (the platform's, project's or template's limit).",
    "EMAIL_NOT_VERIFIED": "Inviting people needs a verified e-mail address (403).",
    "INVITATION_RATE_LIMITED": "The daily invitation limit (per inviter or per organization) is spent (429).",
    "INTERNAL_ERROR": "An unexpected server error; quote `request_id` when reporting it.",
    "BAD_REQUEST": "The request is malformed (for example a form body that cannot be parsed).",
    "BAD_HOST": "The Host header names a host this server does not serve.",
    "REQUEST_TOO_LARGE": "The request body exceeds the size limit (413).",
}

_REMEDIATION = {
    401: "Send `Authorization: Bearer <token>` (create one with POST /api/v1/tokens) or log in.",
    403: "Ask an owner or admin for the role this action needs.",
    404: "Check the identifier; objects of other organizations are never visible.",
    429: "Wait for the number of seconds in `Retry-After`, then retry.",
    500: "Retry later; if it persists, report the request_id to an administrator.",
}


def envelope(
    *,
    status_code: int,
    code: str,
    message: str,
    details: str = "",
    remediation: str = "",
    fields: dict | None = None,
    extra: dict | None = None,
) -> dict:
    body = {
        "code": code,
        "message": message,
        "details": details,
        "remediation": remediation or _REMEDIATION.get(status_code, ""),
        "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
        "request_id": request_context.current().request_id,
    }
    if fields is not None:
        body["fields"] = fields
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return {"error": body}


def _flatten_validation(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF nests validation errors by field and index; the envelope lists them by dotted path."""
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            fields.update(_flatten_validation(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            fields[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                fields.update(_flatten_validation(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        fields[prefix or "non_field_errors"] = [str(detail)]
    return fields


def _auth_code(exc: drf_exceptions.APIException) -> str:
    code = _stable_code(exc)
    if code:
        return code
    return "AUTHENTICATION_REQUIRED" if isinstance(exc, drf_exceptions.NotAuthenticated) else "AUTHENTICATION_FAILED"


def _stable_code(exc: drf_exceptions.APIException) -> str | None:
    """A code passed as `code=` to a DRF exception is kept when it is one of ours (upper-case)."""
    codes = exc.get_codes()
    return codes if isinstance(codes, str) and codes.isupper() else None


def exception_handler(exc, context) -> Response:
    """DRF's EXCEPTION_HANDLER: every failure becomes the envelope, nothing leaks a traceback."""
    headers: dict[str, str] = {}
    if isinstance(exc, errors.CarrelError):
        data = envelope(
            status_code=exc.status_code,
            code=exc.code,
            message=exc.message,
            details=exc.details,
            remediation=exc.remediation,
            fields=exc.fields,
            extra=exc.extra,
        )
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, int(retry_after)))
        return Response(data, status=exc.status_code, headers=headers)
    if isinstance(exc, SuspiciousOperation):
        return _suspicious_operation_response(exc, response_class=Response)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    if isinstance(exc, drf_exceptions.ValidationError):
        fields = _flatten_validation(exc.detail)
        summary = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
        data = envelope(
            status_code=400,
            code="VALIDATION_ERROR",
            message="The request is not valid.",
            details=summary,
            remediation="Correct the fields listed in `fields` and retry.",
            fields=fields,
        )
        return Response(data, status=400)

    if isinstance(exc, drf_exceptions.APIException):
        status_code = exc.status_code
        message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else "Request failed."
        code = getattr(exc, "carrel_code", None) or _stable_code(exc)
        details = ""
        if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
            code = _auth_code(exc)
            status_code = 401
            headers["WWW-Authenticate"] = getattr(exc, "auth_header", None) or 'Bearer realm="api"'
        elif isinstance(exc, drf_exceptions.Throttled):
            code = code or "RATE_LIMITED"
            if exc.wait is not None:
                headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
            message = "Too many requests."
            details = f"Retry after {headers.get('Retry-After', 'a few')} seconds."
        elif isinstance(exc, drf_exceptions.PermissionDenied):
            if message.startswith("CSRF Failed"):
                code, details, message = "CSRF_FAILED", message, "CSRF verification failed."
            code = code or "PERMISSION_DENIED"
        elif isinstance(exc, drf_exceptions.NotFound):
            code = code or "NOT_FOUND"
        elif isinstance(exc, drf_exceptions.MethodNotAllowed):
            code = "METHOD_NOT_ALLOWED"
        elif isinstance(exc, drf_exceptions.ParseError):
            code, details, message = "PARSE_ERROR", message, "The request body could not be parsed."
        elif isinstance(exc, drf_exceptions.UnsupportedMediaType):
            code = "UNSUPPORTED_MEDIA_TYPE"
        elif isinstance(exc, drf_exceptions.NotAcceptable):
            code = "NOT_ACCEPTABLE"
        code = code or "BAD_REQUEST"
        data = envelope(status_code=status_code, code=code, message=message, details=details)
        return Response(data, status=status_code, headers=headers)

    request = context.get("request")
    logger.exception("Unhandled API error on %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"))
    data = envelope(
        status_code=500,
        code="INTERNAL_ERROR",
        message="An unexpected error occurred.",
    )
    return Response(data, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def json_error(
    request: HttpRequest, *, status_code: int, code: str, message: str, details: str = "", remediation: str = ""
) -> JsonResponse:
    return JsonResponse(
        envelope(status_code=status_code, code=code, message=message, details=details, remediation=remediation),
        status=status_code,
    )


def api_route_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """The catch-all for unknown /api/ paths: JSON, not Django's HTML 404 page."""
    return json_error(
        request,
        status_code=404,
        code="ROUTE_NOT_FOUND",
        message=f"No API endpoint at {request.path}.",
        details=f"{request.method} {request.path}",
    )


def handler500(request: HttpRequest):
    """Errors outside DRF views (middleware, Django views) still answer with the envelope under /api/."""
    if request.path.startswith("/api/"):
        return json_error(request, status_code=500, code="INTERNAL_ERROR", message="An unexpected error occurred.")
    from django.views.defaults import server_error

    return server_error(request)


def handler404(request: HttpRequest, exception=None):
    if request.path.startswith("/api/"):
        return api_route_not_found(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


# --- Failures Django answers before (or instead of) a DRF view ---------------------------------------

REMEDIATION_TOO_LARGE = "Send a smaller body; API requests are small JSON objects."
REMEDIATION_BAD_HOST = "Use the host name the site is served under."
REMEDIATION_CSRF = "Send the csrftoken cookie's value in the X-CSRFToken header, or authenticate with a bearer token."


def _suspicious_operation_response(exc: Exception, *, response_class=JsonResponse):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413; a bad Host or another malformed request is 400."""
    if isinstance(exc, RequestDataTooBig):
        status_code, code = 413, "REQUEST_TOO_LARGE"
        message = "The request body is too large."
        details = f"The limit is {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        remediation = REMEDIATION_TOO_LARGE
    elif isinstance(exc, DisallowedHost):
        status_code, code = 400, "BAD_HOST"
        message = "The Host header names a host this server does not serve."
        details = "The host is not in ALLOWED_HOSTS."
        remediation = REMEDIATION_BAD_HOST
    else:
        status_code, code = 400, "BAD_REQUEST"
        message = "The request is malformed."
        details = exc.__class__.__name__
        remediation = "Send a well-formed request: a JSON object body with Content-Type: application/json."
    data = envelope(status_code=status_code, code=code, message=message, details=details, remediation=remediation)
    return response_class(data, status=status_code)


def handler400(request: HttpRequest, exception=None):
    """Django's bad-request handler (DisallowedHost, RequestDataTooBig, unparsable forms) under /api/."""
    if request.path.startswith("/api/"):
        return _suspicious_operation_response(exception if exception is not None else SuspiciousOperation())
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def handler403(request: HttpRequest, exception=None):
    """PermissionDenied raised outside a DRF view."""
    if request.path.startswith("/api/"):
        return json_error(
            request, status_code=403, code="PERMISSION_DENIED", message="You do not have permission to do this."
        )
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)


def csrf_failure(request: HttpRequest, reason: str = ""):
    """CSRF_FAILURE_VIEW: Django's CSRF middleware refusing a request to a non-DRF view under /api/."""
    if request.path.startswith("/api/"):
        return json_error(
            request,
            status_code=403,
            code="CSRF_FAILED",
            message="CSRF verification failed.",
            details=f"CSRF Failed: {reason}" if reason else "",
            remediation=REMEDIATION_CSRF,
        )
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)
