"""Errors raised by services. Each has a stable upper-case code; the API turns them into the envelope.

Services raise these instead of HTTP exceptions so that the admin, the console and Celery tasks
can call the same services and still get a meaningful, typed failure.

Codes are `ErrorCode` members (platform_site/error_codes.py), or their strings. The code decides the HTTP
status and the default remediation. The constructor refuses a code that is not in the enum (ValueError: a
programming error, which the API answers as 500 INTERNAL_ERROR and logs with its traceback), and a code
whose status differs from the status the class stands for (NotFound raises only 404 codes, and so on).
Only CarrelError itself has no fixed status: it answers whatever its code's status is.
"""

from typing import Any

from platform_site.error_codes import ErrorCode


class CarrelError(Exception):
    status_code = 400
    default_code: ErrorCode = ErrorCode.BAD_REQUEST
    default_message = "The request could not be processed."
    # Whether the class stands for one HTTP status (every subclass that sets `status_code`).
    fixed_status = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "status_code" in cls.__dict__:
            cls.fixed_status = True
        default = ErrorCode.lookup(cls.default_code)
        if default is None:
            raise TypeError(f"{cls.__qualname__}.default_code {cls.default_code!r} is not an ErrorCode")
        if cls.fixed_status and default.status != cls.status_code:
            raise TypeError(
                f"{cls.__qualname__} answers {cls.status_code} but its default_code {default} is a {default.status}"
            )
        cls.default_code = default

    def __init__(
        self,
        message: str | None = None,
        *,
        code: ErrorCode | str | None = None,
        details: str = "",
        remediation: str = "",
        fields: dict[str, list[str]] | None = None,
        extra: dict | None = None,
    ) -> None:
        resolved = ErrorCode.lookup(code or self.default_code)
        if resolved is None:
            raise ValueError(
                f"{code!r} is not an error code: add it to ErrorCode and ERRORS in platform_site/error_codes.py"
            )
        if self.fixed_status and resolved.status != type(self).status_code:
            raise ValueError(
                f"{type(self).__qualname__} answers {type(self).status_code}, but {resolved} is a "
                f"{resolved.status} code: raise the exception class for {resolved.status}"
            )
        self.code: ErrorCode = resolved
        self.status_code = resolved.status
        self.message = message or self.default_message
        self.details = details
        # Empty: the code's default remediation (ErrorCode.remediation) is answered.
        self.remediation = remediation
        self.fields = fields
        # More members of the error object, e.g. the `candidates` of an ambiguous reference.
        self.extra = extra or {}
        super().__init__(self.message)


class ValidationFailed(CarrelError):
    status_code = 400
    default_code = ErrorCode.VALIDATION_ERROR
    default_message = "The request is not valid."


class PermissionDenied(CarrelError):
    status_code = 403
    default_code = ErrorCode.PERMISSION_DENIED
    default_message = "You do not have permission to do this."


class NotFound(CarrelError):
    status_code = 404
    default_code = ErrorCode.NOT_FOUND
    default_message = "Not found."


class Conflict(CarrelError):
    status_code = 409
    default_code = ErrorCode.CONFLICT
    default_message = "The request conflicts with the current state."


class ProviderUnavailable(CarrelError):
    """The cloud provider is throttling, failing or unreachable: the request may succeed later."""

    status_code = 503
    default_code = ErrorCode.PROVIDER_UNAVAILABLE
    default_message = "The cloud provider is not answering right now."

    def __init__(self, message: str | None = None, *, retry_after: int = 30, **kwargs: Any) -> None:
        kwargs.setdefault("remediation", f"Retry after {retry_after} seconds; nothing was changed.")
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
