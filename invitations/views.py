"""The browser side of an invitation link: review, then accept or decline with a POST (link scanners GET)."""

from urllib.parse import urlencode

from allauth.account.adapter import get_adapter
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from invitations import services
from platform_site.errors import CarrelError

SESSION_KEY = "carrel_invitation_token"


def _no_referrer(response: HttpResponse) -> HttpResponse:
    """For the link itself: the URL holding the token is never sent as a Referer, not even to us."""
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


def _page(response: HttpResponse) -> HttpResponse:
    """The page behind the link has no token in its URL; it still sends no Referer to other sites.

    (Not no-referrer: browsers then send `Origin: null` with the form POST, which CSRF rightly refuses.)
    """
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET"])
def accept_link(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mailed link. Keep the token in the session and drop it from the address bar and history."""
    request.session[SESSION_KEY] = token
    return _no_referrer(HttpResponseRedirect(reverse("invitation-page")))


def _error_page(request: HttpRequest, error: CarrelError) -> HttpResponse:
    response = render(request, "invitations/invitation.html", {"error": error}, status=error.status_code)
    return _page(response)


@require_http_methods(["GET", "POST"])
def invitation_page(request: HttpRequest) -> HttpResponse:
    token = request.session.get(SESSION_KEY, "")
    try:
        invitation = services.invitation_by_token(token)
        services.check_usable(invitation)
    except CarrelError as error:
        return _error_page(request, error)

    if request.method == "POST":
        if not request.user.is_authenticated:
            return _page(HttpResponseRedirect(reverse("account_login")))
        try:
            if request.POST.get("action") == "decline":
                services.invitation_decline(
                    actor=request.user, invitation=invitation, reason=request.POST.get("reason", ""), token=token
                )
                outcome = "declined"
            else:
                services.invitation_accept(actor=request.user, invitation=invitation, token=token)
                outcome = "accepted"
        except CarrelError as error:
            return _error_page(request, error)
        request.session.pop(SESSION_KEY, None)
        context = {"invitation": invitation, "outcome": outcome}
        return _page(render(request, "invitations/invitation.html", context))

    context = {"invitation": invitation}
    if not request.user.is_authenticated:
        # Possession of the link proves the address: signing up with it needs no second verification.
        get_adapter(request).stash_verified_email(request, invitation.email)
        query = urlencode({"email": invitation.email, "next": reverse("invitation-page")})
        context["signup_url"] = f"{reverse('account_signup')}?{query}"
        context["login_url"] = f"{reverse('account_login')}?{query}"
    else:
        context["email_matches"] = request.user.emailaddress_set.filter(
            email__iexact=invitation.email, verified=True
        ).exists()
    return _page(render(request, "invitations/invitation.html", context))
