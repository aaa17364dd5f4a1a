"""What every console page shares: sign-in, the 404 for what the person may not see, service errors shown on
forms, and messages after a redirect.

Pages call the same services and selectors as the API. A service raises `CarrelError` with a stable code;
`ConsoleView` turns a 404 code into the console's 404 page (the same answer for a foreign object and a missing
one, as the API gives), and `field_errors` puts any other error next to the form field it concerns."""

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.views import View

from platform_site.error_codes import ErrorCode
from platform_site.errors import CarrelError

# Templates cannot read "__all__" (no leading underscores): errors of the whole form are under "form".
NON_FIELD = "form"
MONEY_REFUSALS = {ErrorCode.BUDGET_EXCEEDED, ErrorCode.MEMBER_CAP_EXCEEDED}


def not_found(request: HttpRequest, error: CarrelError | None = None) -> HttpResponse:
    return render(request, "console/404.html", {"error": error}, status=404)


class ConsoleView(LoginRequiredMixin, View):
    """A signed-in page. A `CarrelError` that answers 404 in the API renders the console's 404 page here."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        except CarrelError as error:
            if error.status_code == 404:
                return not_found(request, error)
            raise


def field_errors(error: CarrelError, *, code_fields: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """{field: [messages]} for a form: the error's own `fields`, else its code's field in `code_fields`
    (e.g. {"BUDGET_EXCEEDED": "size"}), else the form as a whole (NON_FIELD). The remediation, when there is
    one and it is not about the API, follows the message."""
    if error.fields:
        return {field: list(texts) for field, texts in error.fields.items()}
    text = error.message
    remediation = error.remediation
    # A remediation written for API clients ("GET /api/v1/...") does not help in a browser.
    if remediation and "/api/" not in remediation and remediation not in text:
        text = f"{text} {remediation}"
    field = (code_fields or {}).get(str(error.code), NON_FIELD)
    return {field: [text]}


def serializer_errors(errors: dict) -> dict[str, list[str]]:
    """A DRF serializer's errors (the API's own input rules, reused by a form) as {field: [messages]}; a list
    field reports per item."""
    shown: dict[str, list[str]] = {}
    for field, texts in errors.items():
        if isinstance(texts, dict):  # a list field's errors by index
            texts = [str(text) for items in texts.values() for text in items]
        key = NON_FIELD if field == "non_field_errors" else field
        shown[key] = [str(text) for text in texts]
    return shown


def done(request: HttpRequest, text: str, to: str) -> HttpResponseRedirect:
    """Redirect after a successful POST, with a message shown on the next page (post/redirect/get)."""
    messages.success(request, text)
    return HttpResponseRedirect(to)


def failed(request: HttpRequest, error: CarrelError, to: str) -> HttpResponse:
    """After a refused POST whose form lives on another page: the error is shown there as a message.

    A request the person may not make at all (a 403 code other than the budget's, e.g. PERMISSION_DENIED or
    ROLE_TOO_HIGH) answers the 403 page instead, with the reason and a way back, so that a refusal is a refusal
    for scripts and tests too. A budget refusal is about money, not about the person: it stays a message."""
    if error.status_code == 403 and error.code not in MONEY_REFUSALS:
        return render(request, "console/403.html", {"error": error, "back": to}, status=403)
    messages.error(request, " ".join(sum(field_errors(error).values(), [])))
    return HttpResponseRedirect(to)
