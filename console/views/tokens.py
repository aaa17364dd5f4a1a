"""API tokens: a person's own tokens only. Create one (its secret is shown once, in the answer to the POST, never
stored, never in the session, the URL or a message), see when each was last used and from where, revoke one after
a confirmation.

The same serializer parses the form as the API's POST /api/v1/tokens, and the same services create and revoke."""

from datetime import UTC, date, datetime, time, timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control

from accounts import services
from accounts.models import ApiToken, TokenScope
from accounts.serializers import TokenCreateSerializer
from console.views.base import NON_FIELD, ConsoleView, done, field_errors, serializer_errors  # noqa: F401 (project.py)
from platform_site.errors import CarrelError
from platform_site.tenancy import scoped_queryset, visible_or_404

# What each scope lets a program do (accounts.authentication.TokenScopePermission: reads need `read`, anything
# else `write`).
SCOPE_HELP = {
    TokenScope.READ: "List and view workspaces, projects, budgets and costs.",
    TokenScope.WRITE: "Also change things: launch, stop and resize workspaces, invite people, manage budgets.",
}
# Quick expiry choices, in days; "" never expires, "date" takes the date field.
EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]


def token_status(token: ApiToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def my_tokens(user) -> list[ApiToken]:
    tokens = list(scoped_queryset(ApiToken, user).order_by("-created_at", "id"))
    now = timezone.now()
    for token in tokens:
        token.status = token_status(token, now)
    return tokens


def expiry_of(form: dict, errors: dict[str, list[str]]) -> str | None:
    """The expiry the form asks for, as the API's ISO 8601 text: midnight UTC after the chosen day."""
    choice, day = form.get("expires", ""), form.get("expires_on", "")
    if day:
        try:
            chosen = date.fromisoformat(day)
        except ValueError:
            errors["expires_on"] = ["Enter a date such as 2027-06-30."]
            return None
    elif choice:
        if choice not in dict(EXPIRY_CHOICES):
            errors["expires"] = ["Choose one of the options."]
            return None
        chosen = timezone.now().astimezone(UTC).date() + timedelta(days=int(choice))
    else:
        return None
    return datetime.combine(chosen + timedelta(days=1), time(0), tzinfo=UTC).isoformat()


class TokensView(ConsoleView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = {
            "name": request.POST.get("name", "").strip(),
            "scopes": request.POST.getlist("scopes"),
            "expires": request.POST.get("expires", ""),
            "expires_on": request.POST.get("expires_on", "").strip(),
        }
        errors: dict[str, list[str]] = {}
        expires_at = expiry_of(form, errors)
        if not form["scopes"]:
            errors["scopes"] = ["Choose at least one scope."]
        parsed = TokenCreateSerializer(data={"name": form["name"], "scopes": form["scopes"], "expires_at": expires_at})
        if not parsed.is_valid() or errors:
            shown = serializer_errors(parsed.errors)
            if "expires_at" in shown:
                shown["expires_on"] = shown.pop("expires_at")
            return self.page(request, form=form, errors={**shown, **errors}, status=400)
        try:
            issued = services.token_create(actor=request.user, **parsed.validated_data)
        except CarrelError as error:
            shown = field_errors(error)
            if "expires_at" in shown:
                shown["expires_on"] = shown.pop("expires_at")
            return self.page(request, form=form, errors=shown, status=400)
        # The secret exists only in this answer: not stored, not in the session, the URL or a message.
        response = self.page(request, issued=issued)
        add_never_cache_headers(response)
        patch_cache_control(response, no_store=True, private=True)
        return response

    def page(self, request: HttpRequest, *, status: int = 200, **extra) -> HttpResponse:
        context = {
            "tokens": my_tokens(request.user),
            "scopes": [(value, label, SCOPE_HELP.get(value, "")) for value, label in TokenScope.choices],
            "expiry_choices": EXPIRY_CHOICES,
            "form": {"scopes": [TokenScope.READ]},
            "errors": {},
            "issued": None,
            **extra,
        }
        context["form_errors"] = context["errors"].get(NON_FIELD, [])
        return render(request, "console/tokens/page.html", context, status=status)


def my_token(request: HttpRequest, token_id: str) -> ApiToken:
    return visible_or_404(
        ApiToken, request.user, code="TOKEN_NOT_FOUND", message="No such token of yours.", pk=token_id
    )


class TokenRevokeView(ConsoleView):
    """GET asks for confirmation; POST revokes (accounts.services.token_revoke, idempotent)."""

    def get(self, request: HttpRequest, token_id: str) -> HttpResponse:
        token = my_token(request, token_id)
        token.status = token_status(token, timezone.now())
        return render(request, "console/tokens/revoke.html", {"token": token})

    def post(self, request: HttpRequest, token_id: str) -> HttpResponse:
        token = my_token(request, token_id)
        was_revoked = token.revoked_at is not None
        services.token_revoke(actor=request.user, token=token)
        text = f"Token {token.name} was already revoked." if was_revoked else f"Token {token.name} revoked."
        return done(request, text, reverse("console:tokens"))


urlpatterns = [
    path("tokens/", TokensView.as_view(), name="tokens"),
    path("tokens/<str:token_id>/revoke", TokenRevokeView.as_view(), name="token-revoke"),
]
