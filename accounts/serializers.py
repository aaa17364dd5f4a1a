from collections.abc import Mapping, Sequence
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import ApiToken, Membership, Organization, OrgRole, TokenScope, User, display_name_of
from platform_site.api import fields as strict

# One field object formats every date of a list (DRF's own formatting: ISO 8601, "Z" for UTC), instead of
# a serializer and its fields built per row.
_DATETIME = serializers.DateTimeField()


class OrganizationRefSerializer(serializers.Serializer):
    id = strict.CharField(source="organization.id")
    name = strict.CharField(source="organization.name")
    slug = strict.CharField(source="organization.slug")
    role = strict.CharField()


class UserProfileSerializer(serializers.ModelSerializer):
    name = strict.CharField(source="display_name")
    organizations = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["username", "email", "name", "date_joined", "organizations"]

    @extend_schema_field(OrganizationRefSerializer(many=True))
    def get_organizations(self, user) -> list[dict]:
        # Filled by selectors.users_with_shared_memberships: only organizations the caller shares.
        return OrganizationRefSerializer(getattr(user, "shared_memberships", []), many=True).data


def user_profile_rows(
    rows: Sequence[Mapping[str, Any]], memberships: Mapping[int, Sequence[Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """What UserProfileSerializer(many=True) answers, from selectors.user_list_rows and
    selectors.shared_memberships_of, as plain functions (the class stays: it is the OpenAPI schema, and the
    profile views use it)."""
    return [
        {
            "username": row["username"],
            "email": row["email"],
            "name": display_name_of(first_name=row["first_name"], last_name=row["last_name"], username=row["username"]),
            "date_joined": _DATETIME.to_representation(row["date_joined"]),
            "organizations": [
                {
                    "id": membership["organization_id"],
                    "name": membership["organization__name"],
                    "slug": membership["organization__slug"],
                    "role": membership["role"],
                }
                for membership in memberships.get(row["id"], ())
            ],
        }
        for row in rows
    ]


class TokenSerializer(serializers.ModelSerializer):
    active = strict.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at", "active"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    name = strict.CharField(max_length=100)
    scopes = serializers.ListField(
        child=strict.ChoiceField(choices=TokenScope.choices),
        default=lambda: [TokenScope.READ, TokenScope.WRITE],
        allow_empty=False,
    )
    expires_at = strict.DateTimeField(required=False, allow_null=True)


class TokenCreatedSerializer(TokenSerializer):
    token = strict.CharField(help_text="The secret. Shown only in this response; store it now.")
    sha256 = strict.CharField(help_text="SHA-256 of the secret, for POST /api/v1/tokens/revoke/{sha256}.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token", "sha256"]
        read_only_fields = fields


class TokenPurgeSerializer(serializers.Serializer):
    email = strict.EmailField(required=False)
    password = strict.CharField(required=False, style={"input_type": "password"}, trim_whitespace=False)


class TokenPurgeResultSerializer(serializers.Serializer):
    deleted = strict.IntegerField()


class OrganizationSerializer(serializers.ModelSerializer):
    role = strict.CharField(source="caller_role", read_only=True, allow_null=True)
    time_zone = strict.CharField(read_only=True, help_text="Days (cost history, budget months) end at midnight here.")
    discount_percent = strict.DecimalField(
        max_digits=5,
        decimal_places=2,
        coerce_to_string=False,
        read_only=True,
        help_text="A negotiated discount taken off every amount charged (set by the operator in the admin).",
    )
    member_count = strict.IntegerField(read_only=True)

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "time_zone", "discount_percent", "created_at", "role", "member_count"]
        read_only_fields = ["id", "time_zone", "discount_percent", "created_at", "role", "member_count"]


class OrganizationCreateSerializer(serializers.Serializer):
    name = strict.CharField(max_length=200)
    slug = strict.SlugField(max_length=80, required=False)


class OrganizationUpdateSerializer(serializers.Serializer):
    name = strict.CharField(max_length=200, required=False)
    time_zone = strict.CharField(max_length=64, required=False, help_text="An IANA name, e.g. Europe/Berlin.")


class MembershipSerializer(serializers.ModelSerializer):
    username = strict.CharField(source="user.username")
    email = strict.EmailField(source="user.email")
    name = strict.CharField(source="user.display_name")
    joined_at = strict.DateTimeField(source="created_at")

    class Meta:
        model = Membership
        fields = ["username", "email", "name", "role", "joined_at"]
        read_only_fields = fields


class MembershipCreateSerializer(serializers.Serializer):
    email = strict.EmailField()
    role = strict.ChoiceField(choices=OrgRole.choices, default=OrgRole.MEMBER)


class MembershipUpdateSerializer(serializers.Serializer):
    role = strict.ChoiceField(choices=OrgRole.choices)


class AuthProviderSerializer(serializers.Serializer):
    id = strict.CharField()
    name = strict.CharField()
    type = strict.ChoiceField(choices=["password", "oauth2", "openid_connect"])
    login_url = strict.CharField()
