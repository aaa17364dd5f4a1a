from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import ApiToken, Membership, Organization, OrgRole, TokenScope, User


class OrganizationRefSerializer(serializers.Serializer):
    id = serializers.CharField(source="organization.id")
    name = serializers.CharField(source="organization.name")
    slug = serializers.CharField(source="organization.slug")
    role = serializers.CharField()


class UserProfileSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name")
    organizations = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["username", "email", "name", "date_joined", "organizations"]

    @extend_schema_field(OrganizationRefSerializer(many=True))
    def get_organizations(self, user) -> list[dict]:
        # Filled by selectors.users_with_shared_memberships: only organizations the caller shares.
        return OrganizationRefSerializer(getattr(user, "shared_memberships", []), many=True).data


class TokenSerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at", "active"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=TokenScope.choices),
        default=lambda: [TokenScope.READ, TokenScope.WRITE],
        allow_empty=False,
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The secret. Shown only in this response; store it now.")
    sha256 = serializers.CharField(help_text="SHA-256 of the secret, for POST /api/v1/tokens/revoke/{sha256}.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token", "sha256"]
        read_only_fields = fields


class TokenPurgeSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False)
    password = serializers.CharField(required=False, style={"input_type": "password"}, trim_whitespace=False)


class TokenPurgeResultSerializer(serializers.Serializer):
    deleted = serializers.IntegerField()


class OrganizationSerializer(serializers.ModelSerializer):
    role = serializers.CharField(source="caller_role", read_only=True, allow_null=True)
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at", "role", "member_count"]
        read_only_fields = ["id", "created_at", "role", "member_count"]


class OrganizationCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=80, required=False)


class OrganizationUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    email = serializers.EmailField(source="user.email")
    name = serializers.CharField(source="user.display_name")
    joined_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Membership
        fields = ["username", "email", "name", "role", "joined_at"]
        read_only_fields = fields


class MembershipCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=OrgRole.choices, default=OrgRole.MEMBER)


class MembershipUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=OrgRole.choices)


class AuthProviderSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["password", "oauth2", "openid_connect"])
    login_url = serializers.CharField()
