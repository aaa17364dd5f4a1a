"""Login providers, users, API tokens, organizations and their members. Thin: services do the work."""

from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, mixins, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.authentication import password_authenticate
from accounts.models import ApiToken, Membership, Organization, TokenScope, User
from accounts.serializers import (
    AuthProviderSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
    OrganizationUpdateSerializer,
    TokenCreatedSerializer,
    TokenCreateSerializer,
    TokenPurgeResultSerializer,
    TokenPurgeSerializer,
    TokenSerializer,
    UserProfileSerializer,
    user_profile_rows,
)
from platform_site.api import fields as strict
from platform_site.api.views import ScopedAPIView
from platform_site.errors import NotFound
from platform_site.tenancy import visible_or_404

# --- Login -------------------------------------------------------------------------------------


def configured_providers(request) -> list[dict]:
    providers = [
        {"id": "password", "name": "E-mail and password", "type": "password", "login_url": reverse("account_login")}
    ]
    for provider in get_social_adapter().list_providers(request):
        providers.append(
            {
                "id": provider.sub_id,  # an OpenID Connect app's own id, e.g. "cilogon"
                "name": provider.name,
                "type": "openid_connect" if provider.app.provider == "openid_connect" else "oauth2",
                "login_url": provider.get_login_url(request, process="login"),
            }
        )
    return providers


class AuthProvidersView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    pagination_class = None

    @extend_schema(
        operation_id="auth_providers_list",
        summary="Identity providers a person can log in with.",
        responses=AuthProviderSerializer(many=True),
        tags=["auth"],
    )
    def get(self, request):
        return Response(AuthProviderSerializer(configured_providers(request), many=True).data)


class AuthLoginView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_login_retrieve",
        summary="Start a browser login with a provider: redirects into the provider's flow.",
        parameters=[
            OpenApiParameter("provider", str, required=True, description="An id from /api/v1/auth/providers."),
            OpenApiParameter("next", str, description="Where to return after login (same site only)."),
        ],
        responses={302: OpenApiResponse(description="Redirect to the provider's login flow.")},
        tags=["auth"],
    )
    def get(self, request):
        provider_id = request.query_params.get("provider", "")
        next_url = request.query_params.get("next", "/")
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = "/"
        for provider in configured_providers(request):
            if provider["id"] == provider_id:
                separator = "&" if "?" in provider["login_url"] else "?"
                return HttpResponseRedirect(f"{provider['login_url']}{separator}next={next_url}")
        raise NotFound(
            f"No login provider '{provider_id}' is configured.",
            code="PROVIDER_NOT_FOUND",
            remediation="GET /api/v1/auth/providers lists the configured providers.",
        )


class AuthLogoutView(APIView):
    permission_classes = [AllowAny]
    required_scope = "any"

    @extend_schema(
        summary="End the browser session. Bearer tokens stay valid: revoke them with /api/v1/tokens.",
        request=None,
        responses=inline_serializer("LogoutResult", {"status": strict.CharField()}),
        tags=["auth"],
    )
    def post(self, request):
        logout(request._request)
        return Response({"status": "logged_out"})


# --- Users -------------------------------------------------------------------------------------


class MeProfileView(APIView):
    @extend_schema(summary="The caller's profile.", responses=UserProfileSerializer, tags=["users"])
    def get(self, request):
        user = selectors.users_with_shared_memberships(
            viewer=request.user, users=User.objects.filter(pk=request.user.pk)
        ).get()
        return Response(UserProfileSerializer(user).data)


class _UserView(ScopedAPIView):
    model = User
    serializer_class = UserProfileSerializer

    def refine_queryset(self, queryset):
        return selectors.users_with_shared_memberships(viewer=self.request.user, users=queryset).order_by("username")


class UserListView(mixins.ListModelMixin, _UserView):
    # Keyset paging (platform_site.api.pagination) over the unique username index: deep pages cost what the
    # first does.
    keyset_ordering = ("username",)

    def count_rows(self, queryset) -> int:
        # X-Total-Count, exact, from the membership index (the list takes no filters: it is the whole scope).
        return User.objects.count_visible_to(self.request.user)

    def page_rows(self, queryset):
        return selectors.user_list_rows(users=queryset)

    @extend_schema(summary="Users who share an organization with the caller.", tags=["users"])
    def get(self, request):
        return self.list(request)

    def list(self, request, *args, **kwargs):
        # The page as plain rows and one query for their shared memberships: no serializer per row (the
        # answer is UserProfileSerializer's, tests/accounts/test_users_list_perf.py compares them).
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        rows = list(page or [])
        memberships = selectors.shared_memberships_of(viewer=request.user, rows=rows)
        return self.get_paginated_response(user_profile_rows(rows, memberships))


class UserProfileView(_UserView):
    lookup_field = "username"
    not_found_code = "USER_NOT_FOUND"
    not_found_message = "No such user shares an organization with you."

    @extend_schema(summary="A user's profile (only users who share an organization with the caller).", tags=["users"])
    def get(self, request, username: str):
        return Response(self.get_serializer(self.get_object()).data)


# --- Tokens ------------------------------------------------------------------------------------


def _created_token_payload(issued: services.IssuedToken) -> dict:
    data = dict(TokenSerializer(issued.token).data)
    data["token"] = issued.secret
    data["sha256"] = issued.token.token_hash
    return data


class TokenListCreateView(mixins.ListModelMixin, ScopedAPIView):
    model = ApiToken
    serializer_class = TokenSerializer

    @extend_schema(summary="The caller's API tokens (never their secrets).", tags=["tokens"])
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Create an API token. The secret is in this response only.",
        request=TokenCreateSerializer,
        responses={201: TokenCreatedSerializer},
        tags=["tokens"],
    )
    def post(self, request):
        form = TokenCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        issued = services.token_create(
            actor=request.user,
            via_token=request.auth if isinstance(request.auth, ApiToken) else None,
            **form.validated_data,
        )
        return Response(_created_token_payload(issued), status=status.HTTP_201_CREATED)


class TokenDetailView(ScopedAPIView):
    model = ApiToken
    serializer_class = TokenSerializer
    lookup_url_kwarg = "token_id"
    lookup_field = "pk"
    not_found_code = "TOKEN_NOT_FOUND"
    not_found_message = "No such token of yours."

    @extend_schema(summary="One of the caller's tokens.", tags=["tokens"])
    def get(self, request, token_id: str):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(summary="Delete one of the caller's tokens.", responses={204: None}, tags=["tokens"])
    def delete(self, request, token_id: str):
        services.token_delete(actor=request.user, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRevokeView(APIView):
    # A token may always revoke itself, even a read-only one; revoking another token needs `write`.
    required_scope = "any"

    @extend_schema(
        summary=(
            "Revoke the caller's token whose SHA-256 (hex) is in the path. A token can revoke itself; "
            "revoking another token needs the write scope (or a session)."
        ),
        request=None,
        responses=TokenSerializer,
        tags=["tokens"],
    )
    def post(self, request, digest: str):
        token = services.token_revoke_by_digest(
            actor=request.user,
            digest=digest,
            via_token=request.auth if isinstance(request.auth, ApiToken) else None,
        )
        return Response(TokenSerializer(token).data)


class TokenPurgeView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary=(
            "Delete all of a user's API tokens. Authenticate with e-mail and password in the body "
            "(checked first when given, under the same failed-login lockout as the login page), or a "
            "session, or a token with the write scope."
        ),
        request=TokenPurgeSerializer,
        responses=TokenPurgeResultSerializer,
        tags=["tokens"],
    )
    def post(self, request):
        form = TokenPurgeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        email, password = form.validated_data.get("email"), form.validated_data.get("password")
        if email and password:
            user = password_authenticate(request._request, email=email, password=password)
        elif request.user.is_authenticated:
            user = request.user
            if isinstance(request.auth, ApiToken) and not request.auth.has_scope(TokenScope.WRITE):
                raise exceptions.PermissionDenied("Purging tokens needs the 'write' scope.", code="INSUFFICIENT_SCOPE")
        else:
            raise exceptions.NotAuthenticated()
        return Response({"deleted": services.token_purge(actor=user)})


# --- Organizations -----------------------------------------------------------------------------


class _OrganizationView(ScopedAPIView):
    model = Organization
    serializer_class = OrganizationSerializer

    def refine_queryset(self, queryset):
        return selectors.organizations_for(user=self.request.user, queryset=queryset)


class OrganizationListCreateView(mixins.ListModelMixin, _OrganizationView):
    @extend_schema(summary="Organizations the caller belongs to, with the caller's role.", tags=["organizations"])
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Create an organization; the caller becomes its owner.",
        request=OrganizationCreateSerializer,
        responses={201: OrganizationSerializer},
        tags=["organizations"],
    )
    def post(self, request):
        form = OrganizationCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        organization = services.organization_create(actor=request.user, **form.validated_data)
        organization = self.get_queryset().get(pk=organization.pk)
        return Response(self.get_serializer(organization).data, status=status.HTTP_201_CREATED)


class OrganizationDetailView(_OrganizationView):
    lookup_url_kwarg = "organization_id"
    lookup_field = "pk"
    not_found_code = "ORGANIZATION_NOT_FOUND"
    not_found_message = "No such organization of yours."

    @extend_schema(summary="An organization the caller belongs to.", tags=["organizations"])
    def get(self, request, organization_id: str):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Rename an organization or set its time zone (owner or admin).",
        request=OrganizationUpdateSerializer,
        tags=["organizations"],
    )
    def patch(self, request, organization_id: str):
        organization = self.get_object()
        form = OrganizationUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.organization_update(actor=request.user, organization=organization, **form.validated_data)
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Delete an organization with no projects (owner).", responses={204: None}, tags=["organizations"]
    )
    def delete(self, request, organization_id: str):
        services.organization_delete(actor=request.user, organization=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class _MembersView(ScopedAPIView):
    model = Membership
    serializer_class = MembershipSerializer

    def organization(self) -> Organization:
        return visible_or_404(
            Organization,
            self.request.user,
            code="ORGANIZATION_NOT_FOUND",
            message="No such organization of yours.",
            pk=self.kwargs["organization_id"],
        )

    def refine_queryset(self, queryset):
        return queryset.filter(organization_id=self.kwargs["organization_id"]).select_related("user", "organization")


class OrganizationMembersView(mixins.ListModelMixin, _MembersView):
    @extend_schema(summary="Members of an organization.", tags=["organizations"])
    def get(self, request, organization_id: str):
        self.organization()
        return self.list(request)

    @extend_schema(
        summary="Add an existing user to the organization by e-mail (owner or admin).",
        request=MembershipCreateSerializer,
        responses={201: MembershipSerializer},
        tags=["organizations"],
    )
    def post(self, request, organization_id: str):
        organization = self.organization()
        form = MembershipCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        membership = services.membership_add(actor=request.user, organization=organization, **form.validated_data)
        return Response(self.get_serializer(membership).data, status=status.HTTP_201_CREATED)


class OrganizationMemberDetailView(_MembersView):
    lookup_url_kwarg = "username"
    lookup_field = "user__username"
    not_found_code = "MEMBER_NOT_FOUND"
    not_found_message = "No such member of this organization."

    @extend_schema(summary="One member of an organization.", tags=["organizations"])
    def get(self, request, organization_id: str, username: str):
        self.organization()
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Change a member's role (owner or admin; never above your own).",
        request=MembershipUpdateSerializer,
        tags=["organizations"],
    )
    def patch(self, request, organization_id: str, username: str):
        self.organization()
        membership = self.get_object()
        form = MembershipUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        membership = services.membership_update_role(actor=request.user, membership=membership, **form.validated_data)
        return Response(self.get_serializer(membership).data)

    @extend_schema(
        summary="Remove a member (owner or admin), or leave the organization yourself.",
        responses={204: None},
        tags=["organizations"],
    )
    def delete(self, request, organization_id: str, username: str):
        self.organization()
        services.membership_remove(actor=request.user, membership=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
