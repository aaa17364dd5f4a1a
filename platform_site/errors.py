"""Errors raised by services. Each has a stable upper-case code; the API turns them into the envelope.

Services raise these instead of HTTP exceptions so that the admin, the console and Celery tasks
can call the same services and still get a meaningful, typed failure.
"""


class CarrelError(Exception):
    status_code = 400
    default_code = "BAD_REQUEST"
    default_message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: str = "",
        remediation: str = "",
        fields: dict[str, list[str]] | None = None,
        extra: dict | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.code = code or self.default_code
        self.details = details
        self.remediation = remediation
        self.fields = fields
        # More members of the error object, e.g. the `candidates` of an ambiguous reference.
        self.extra = extra or {}
        super().__init__(self.message)


class ValidationFailed(CarrelError):
    status_code = 400
    default_code = "VALIDATION_ERROR"
    default_message = "The request is not valid."


class PermissionDenied(CarrelError):
    status_code = 403
    default_code = "PERMISSION_DENIED"
    default_message = "You do not have permission to do this."


class NotFound(CarrelError):
    status_code = 404
    default_code = "NOT_FOUND"
    default_message = "Not found."


class Conflict(CarrelError):
    status_code = 409
    default_code = "CONFLICT"
    default_message = "The request conflicts with the current state."


class ProviderUnavailable(CarrelError):
    """The cloud provider is throttling, failing or unreachable: the request may succeed later."""

    status_code = 503
    default_code = "PROVIDER_UNAVAILABLE"
    default_message = "The cloud provider is not answering right now."

    def __init__(self, message: str | None = None, *, retry_after: int = 30, **kwargs) -> None:
        kwargs.setdefault("remediation", f"Retry after {retry_after} seconds; nothing was changed.")
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
