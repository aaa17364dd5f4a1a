"""The browser side of an invitation link: review, then accept or decline with a POST (link scanners GET)."""

from urllib.parse import urlencode

from allauth.account.adapter import get_adapter
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from invitations import services
from invitations.models import Invitation
from platform_site.errors import CarrelError

# What the session keeps once the link was opened: {"id": invitation id, "proof": services.link_proof(...)}.
# Never the link's token: session rows sit in the database and its backups, and the token would open the invitation.
SESSION_KEY = "carrel_invitation"
LEGACY_SESSION_KEY = "carrel_invitation_token"  # raw tokens kept by earlier versions; converted, then removed


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


def _remember(request: HttpRequest, token: str) -> None:
    """Keep which invitation the link opened and a proof of it, never the token; forget it if the link is bad."""
    try:
        invitation = services.invitation_by_token(token)
    except CarrelError:
        request.session.pop(SESSION_KEY, None)
    else:
        request.session[SESSION_KEY] = {"id": invitation.pk, "proof": services.link_proof(invitation)}


@require_http_methods(["GET"])
def accept_link(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mailed link. Remember it in the session (not its token) and drop it from the address bar and history."""
    request.session.pop(LEGACY_SESSION_KEY, None)
    _remember(request, token)
    return _no_referrer(HttpResponseRedirect(reverse("invitation-page")))


def _linked_invitation(request: HttpRequest) -> tuple[Invitation, str]:
    """The invitation this session's link opened and the session's proof of it, or 404 INVITATION_NOT_FOUND."""
    legacy = request.session.pop(LEGACY_SESSION_KEY, None)
    if legacy and SESSION_KEY not in request.session:
        _remember(request, str(legacy))
    remembered = request.session.get(SESSION_KEY)
    if not isinstance(remembered, dict):
        remembered = {}
    proof = str(remembered.get("proof") or "")
    return services.invitation_by_link_proof(remembered.get("id"), proof), proof


def _error_page(request: HttpRequest, error: CarrelError) -> HttpResponse:
    response = render(request, "invitations/invitation.html", {"error": error}, status=error.status_code)
    return _page(response)


@require_http_methods(["GET", "POST"])
def invitation_page(request: HttpRequest) -> HttpResponse:
    try:
        invitation, proof = _linked_invitation(request)
        services.check_usable(invitation)
    except CarrelError as error:
        return _error_page(request, error)

    if request.method == "POST":
        if not request.user.is_authenticated:
            return _page(HttpResponseRedirect(reverse("account_login")))
        try:
            if request.POST.get("action") == "decline":
                services.invitation_decline(
                    actor=request.user, invitation=invitation, reason=request.POST.get("reason", ""), link_proof=proof
                )
                outcome = "declined"
            else:
                services.invitation_accept(actor=request.user, invitation=invitation, link_proof=proof)
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
