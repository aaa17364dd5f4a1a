"""The one error envelope for everything under /api/.

    {"error": {"code", "message", "details", "remediation", "timestamp", "request_id"}}

Validation errors add "fields": {field: [messages]}. Codes are the members of `ErrorCode`
(platform_site/error_codes.py), which also gives each its HTTP status and its default remediation.

No answer carries a code outside the enum: a code that is not a member (a DRF exception raised with a made-up
`code=`, a caller of `json_error` with a typo) is logged as a programming error and answered as 500
INTERNAL_ERROR. (CarrelError refuses such codes when it is constructed; see platform_site/errors.py.)
"""

import logging

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from platform_site import errors, request_context
from platform_site.error_codes import ErrorCode

logger = logging.getLogger("carrel.api")

# Every code the API can answer with, and what it means (kept for callers that want plain strings).
ERROR_CODES: dict[str, str] = {code.value: code.meaning for code in sorted(ErrorCode)}


def resolve_code(code: object, *, status_code: int | None = None, origin: str = "") -> ErrorCode:
    """The ErrorCode for `code`; INTERNAL_ERROR (logged as a programming error) when it is not one.

    `status_code`, when the caller has one in mind, must be the code's: a mismatch is logged, and the
    code's own status is what gets answered.
    """
    resolved = ErrorCode.lookup(code)
    if resolved is None:
        logger.error("Programming error: %r is not an ErrorCode (%s); answering INTERNAL_ERROR", code, origin or "?")
        return ErrorCode.INTERNAL_ERROR
    if status_code is not None and status_code != resolved.status:
        logger.error(
            "Programming error: %s is a %s code but was raised as a %s (%s)",
            resolved,
            resolved.status,
            status_code,
            origin or "?",
        )
    return resolved


def envelope(
    *,
    code: ErrorCode | str,
    message: str,
    details: str = "",
    remediation: str = "",
    fields: dict | None = None,
    extra: dict | None = None,
    status_code: int | None = None,
) -> dict:
    """The envelope's body. The response's status is `ErrorCode(code).status`; `status_code` is only checked."""
    resolved = resolve_code(code, status_code=status_code, origin="envelope")
    if resolved is ErrorCode.INTERNAL_ERROR and code != ErrorCode.INTERNAL_ERROR:
        message, details, remediation, fields, extra = "An unexpected error occurred.", "", "", None, None
    body = {
        "code": resolved.value,
        "message": message,
        "details": details,
        "remediation": remediation or resolved.remediation,
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


def _stable_code(exc: drf_exceptions.APIException) -> str | None:
    """A code passed as `code=` to a DRF exception is kept when it is one of ours (upper-case)."""
    codes = exc.get_codes()
    return codes if isinstance(codes, str) and codes.isupper() else None


def _response(code: ErrorCode, *, headers: dict[str, str] | None = None, **body) -> Response:
    return Response(envelope(code=code, **body), status=code.status, headers=headers)


def _api_exception_code(exc: drf_exceptions.APIException) -> tuple[str, str, str, dict[str, str], int | None]:
    """(code, message, details, headers, the status DRF meant) for a DRF exception other than ValidationError."""
    headers: dict[str, str] = {}
    meant: int | None = exc.status_code
    message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else "Request failed."
    code = getattr(exc, "carrel_code", None) or _stable_code(exc)
    details = ""
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        if not code:
            is_missing = isinstance(exc, drf_exceptions.NotAuthenticated)
            code = ErrorCode.AUTHENTICATION_REQUIRED if is_missing else ErrorCode.AUTHENTICATION_FAILED
        headers["WWW-Authenticate"] = getattr(exc, "auth_header", None) or 'Bearer realm="api"'
        meant = None  # DRF makes these 403 for views without an authenticate header; the API answers 401.
    elif isinstance(exc, drf_exceptions.Throttled):
        code = code or ErrorCode.RATE_LIMITED
        if exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        message = "Too many requests."
        details = f"Retry after {headers.get('Retry-After', 'a few')} seconds."
    elif isinstance(exc, drf_exceptions.PermissionDenied):
        if message.startswith("CSRF Failed"):
            code, details, message = ErrorCode.CSRF_FAILED, message, "CSRF verification failed."
        code = code or ErrorCode.PERMISSION_DENIED
    elif isinstance(exc, drf_exceptions.NotFound):
        code = code or ErrorCode.NOT_FOUND
    elif isinstance(exc, drf_exceptions.MethodNotAllowed):
        code = ErrorCode.METHOD_NOT_ALLOWED
    elif isinstance(exc, drf_exceptions.ParseError):
        code, details, message = ErrorCode.PARSE_ERROR, message, "The request body could not be parsed."
    elif isinstance(exc, drf_exceptions.UnsupportedMediaType):
        code = ErrorCode.UNSUPPORTED_MEDIA_TYPE
    elif isinstance(exc, drf_exceptions.NotAcceptable):
        code = ErrorCode.NOT_ACCEPTABLE
    elif not code:
        code = ErrorCode.INTERNAL_ERROR if exc.status_code >= 500 else ErrorCode.BAD_REQUEST
    return code, message, details, headers, meant


def exception_handler(exc, context) -> Response:
    """DRF's EXCEPTION_HANDLER: every failure becomes the envelope, nothing leaks a traceback.

    The status is always the code's (ErrorCode.status); the remediation the raise site's, else the code's.
    """
    request = context.get("request")
    where = f"{getattr(request, 'method', '?')} {getattr(request, 'path', '?')}"
    if isinstance(exc, errors.CarrelError):
        code = resolve_code(exc.code, status_code=exc.status_code, origin=f"{type(exc).__name__} on {where}")
        if code is ErrorCode.INTERNAL_ERROR and exc.code != ErrorCode.INTERNAL_ERROR:
            return _internal_error()
        headers: dict[str, str] = {}
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, int(retry_after)))
        return _response(
            code,
            headers=headers,
            message=exc.message,
            details=exc.details,
            remediation=exc.remediation,
            fields=exc.fields,
            extra=exc.extra,
        )
    if isinstance(exc, SuspiciousOperation):
        return _suspicious_operation_response(exc, response_class=Response)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    if isinstance(exc, drf_exceptions.ValidationError):
        fields = _flatten_validation(exc.detail)
        summary = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
        return _response(
            ErrorCode.VALIDATION_ERROR,
            message="The request is not valid.",
            details=summary,
            fields=fields,
        )

    if isinstance(exc, drf_exceptions.APIException):
        raw_code, message, details, headers, meant = _api_exception_code(exc)
        code = resolve_code(raw_code, status_code=meant, origin=f"{type(exc).__name__} on {where}")
        if code is ErrorCode.INTERNAL_ERROR and raw_code != ErrorCode.INTERNAL_ERROR:
            return _internal_error()
        return _response(code, headers=headers, message=message, details=details)

    logger.exception("Unhandled API error on %s", where)
    return _internal_error()


def _internal_error() -> Response:
    return _response(ErrorCode.INTERNAL_ERROR, message="An unexpected error occurred.")


def json_error(
    request: HttpRequest,
    *,
    code: ErrorCode | str,
    message: str,
    details: str = "",
    remediation: str = "",
    status_code: int | None = None,
) -> JsonResponse:
    """The envelope outside DRF views. The status is the code's (`status_code`, if given, is only checked)."""
    resolved = resolve_code(code, status_code=status_code, origin=f"json_error on {request.path}")
    if resolved is ErrorCode.INTERNAL_ERROR and code != ErrorCode.INTERNAL_ERROR:
        message, details, remediation = "An unexpected error occurred.", "", ""
    return JsonResponse(
        envelope(code=resolved, message=message, details=details, remediation=remediation),
        status=resolved.status,
    )


def api_route_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """The catch-all for unknown /api/ paths: JSON, not Django's HTML 404 page."""
    return json_error(
        request,
        code=ErrorCode.ROUTE_NOT_FOUND,
        message=f"No API endpoint at {request.path}.",
        details=f"{request.method} {request.path}",
    )


def handler500(request: HttpRequest):
    """Errors outside DRF views (middleware, Django views) still answer with the envelope under /api/."""
    if request.path.startswith("/api/"):
        return json_error(request, code=ErrorCode.INTERNAL_ERROR, message="An unexpected error occurred.")
    from django.views.defaults import server_error

    return server_error(request)


def handler404(request: HttpRequest, exception=None):
    if request.path.startswith("/api/"):
        return api_route_not_found(request)
    from console.views.base import not_found

    return not_found(request)


# --- Failures Django answers before (or instead of) a DRF view ---------------------------------------

REMEDIATION_TOO_LARGE = ErrorCode.REQUEST_TOO_LARGE.remediation
REMEDIATION_BAD_HOST = ErrorCode.BAD_HOST.remediation
REMEDIATION_CSRF = ErrorCode.CSRF_FAILED.remediation


def _suspicious_operation_response(exc: Exception, *, response_class=JsonResponse):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413; a bad Host or another malformed request is 400."""
    if isinstance(exc, RequestDataTooBig):
        code = ErrorCode.REQUEST_TOO_LARGE
        message = "The request body is too large."
        details = f"The limit is {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
    elif isinstance(exc, DisallowedHost):
        code = ErrorCode.BAD_HOST
        message = "The Host header names a host this server does not serve."
        details = "The host is not in ALLOWED_HOSTS."
    else:
        code = ErrorCode.BAD_REQUEST
        message = "The request is malformed."
        details = exc.__class__.__name__
    return response_class(envelope(code=code, message=message, details=details), status=code.status)


def handler400(request: HttpRequest, exception=None):
    """Django's bad-request handler (DisallowedHost, RequestDataTooBig, unparsable forms) under /api/."""
    if request.path.startswith("/api/"):
        return _suspicious_operation_response(exception if exception is not None else SuspiciousOperation())
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def handler403(request: HttpRequest, exception=None):
    """PermissionDenied raised outside a DRF view."""
    if request.path.startswith("/api/"):
        return json_error(request, code=ErrorCode.PERMISSION_DENIED, message="You do not have permission to do this.")
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)


def csrf_failure(request: HttpRequest, reason: str = ""):
    """CSRF_FAILURE_VIEW: Django's CSRF middleware refusing a request to a non-DRF view under /api/."""
    if request.path.startswith("/api/"):
        return json_error(
            request,
            code=ErrorCode.CSRF_FAILED,
            message="CSRF verification failed.",
            details=f"CSRF Failed: {reason}" if reason else "",
        )
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)
