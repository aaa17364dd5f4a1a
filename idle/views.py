"""The warning e-mail's one-click snooze link: snoozes, then says so on a console-styled page.

The link is the credential (signed, single-use, 24 hours; idle.services.snooze), so no sign-in is needed, and
the page is sent with no Referer and never cached, so the token leaves no trace beyond the address bar."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from idle.emails import utc
from idle.services.snooze import snooze_by_link
from platform_site.errors import CarrelError


@require_http_methods(["GET"])
def snooze_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        state = snooze_by_link(token)
    except CarrelError as error:
        response = render(request, "idle/snooze.html", {"error": error}, status=error.status_code)
    else:
        response = render(
            request,
            "idle/snooze.html",
            {"state": state, "workspace": state.workspace, "snoozed_until": utc(state.snoozed_until)},
        )
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response
