import zoneinfo
from decimal import Decimal

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from platform_site.ids import new_organization_id, new_token_id
from platform_site.tenancy import ScopedQuerySet
from platform_site.text import unsafe_characters


def validate_one_line_text(value: str) -> None:
    """Model-field validator (admin and model forms): no control or bidirectional-override characters.
    Services check the same with platform_site.text.clean_name."""
    bad = unsafe_characters(value or "")
    if bad:
        raise ValidationError(
            "Must not contain control or bidirectional-override characters (%(chars)s).",
            code="unsafe_characters",
            params={"chars": ", ".join(bad)},
        )


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            "Unknown time zone %(value)s (use an IANA name such as Europe/Berlin).", params={"value": value}
        )


def without_unsafe_characters(value: str) -> str:
    """`value` with control and bidirectional-override characters removed (for names other systems send)."""
    if value.isascii() and value.isprintable():
        return value  # no control character (isprintable) and no bidirectional mark (ASCII): most names
    return "".join(char for char in value if not unsafe_characters(char))


class OrgRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


ORG_ROLE_RANK = {OrgRole.MEMBER: 1, OrgRole.ADMIN: 2, OrgRole.OWNER: 3}


# CASE runs only the branch it picks: one organization's members need no DISTINCT.
_COUNT_VISIBLE_USERS_SQL = """
SELECT CASE WHEN cardinality(mine.ids) = 1
            THEN (SELECT COUNT(*) FROM accounts_membership m WHERE m.organization_id = mine.ids[1])
            ELSE (SELECT COUNT(DISTINCT m.user_id) FROM accounts_membership m WHERE m.organization_id = ANY(mine.ids))
       END
FROM (SELECT ARRAY(SELECT organization_id FROM accounts_membership WHERE user_id = %(user)s) AS ids) mine
"""


class UserQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "UserQuerySet":
        """Users who share at least one organization with `user` (and `user` itself)."""
        shared_orgs = Membership.objects.filter(user=user).values("organization_id")
        sharing = Membership.objects.filter(organization_id__in=shared_orgs).values("user_id")
        return self.filter(Q(pk=user.pk) | Q(pk__in=sharing))

    def count_visible_to(self, user) -> int:
        """visible_to(user).count(), read from the membership index alone: the members of the user's only
        organization counted from its range (the usual case), of several counted once each; the user alone
        when they belong to none. (The OR of visible_to made PostgreSQL scan every user.)"""
        if connection.vendor != "postgresql":
            return self.visible_to(user).count()
        with connection.cursor() as cursor:
            cursor.execute(_COUNT_VISIBLE_USERS_SQL, {"user": user.pk})
            return max(int(cursor.fetchone()[0]), 1)


class CarrelUserManager(UserManager.from_queryset(UserQuerySet)):
    def _create_user_object(self, username, email, password, **extra_fields):
        email = self.normalize_email(email).lower()
        if not username:
            username = username_from_email(email, self.model)
        return super()._create_user_object(username, email, password, **extra_fields)

    def create_user(self, email=None, password=None, username=None, **extra_fields):
        return super().create_user(username, email, password, **extra_fields)

    def create_superuser(self, email=None, password=None, username=None, **extra_fields):
        return super().create_superuser(username, email, password, **extra_fields)


def username_from_email(email: str, model) -> str:
    base = "".join(ch for ch in email.split("@")[0].lower() if ch.isalnum() or ch in "._-")[:30] or "user"
    candidate, suffix = base, 1
    while model._default_manager.filter(username=candidate).exists():
        suffix += 1
        candidate = f"{base}{suffix}"
    return candidate


class User(AbstractUser):
    """A person. E-mail is the login; `username` is the public handle in /api/v1/users/{username}."""

    email = models.EmailField("e-mail address", unique=True)
    first_name = models.CharField("first name", max_length=150, blank=True, validators=[validate_one_line_text])
    last_name = models.CharField("last name", max_length=150, blank=True, validators=[validate_one_line_text])

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    objects = CarrelUserManager()

    class Meta:
        ordering = ["email"]

    def save(self, *args, **kwargs):
        self.email = (self.email or "").strip().lower()
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        return display_name_of(first_name=self.first_name, last_name=self.last_name, username=self.username)


def display_name_of(*, first_name: str, last_name: str, username: str) -> str:
    """User.display_name from the columns alone (lists read rows with .values(), not model objects)."""
    # Names may come from an OAuth provider or predate validation: never show a control character.
    full_name = f"{first_name} {last_name}".strip()  # AbstractUser.get_full_name
    return without_unsafe_characters(full_name).strip() or username


class OrganizationQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "OrganizationQuerySet":
        return self.filter(pk__in=Membership.objects.filter(user=user).values("organization_id"))


class Organization(models.Model):
    """The tenant. Every tenant-owned row reaches one of these by a foreign key."""

    id = models.CharField(primary_key=True, max_length=32, default=new_organization_id, editable=False)
    name = models.CharField(max_length=200, validators=[validate_one_line_text])
    slug = models.SlugField(max_length=80, unique=True)
    # Days (cost history, the ledger's daily close, monthly periods) begin at midnight here.
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # A negotiated discount (e.g. an enterprise agreement), taken off everything the organization is charged.
    discount_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MembershipQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "MembershipQuerySet":
        mine = Membership.objects.filter(user=user).values("organization_id")
        return self.filter(organization_id__in=mine)


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=OrgRole.choices, default=OrgRole.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["organization_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique_user_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"


class ApiTokenQuerySet(ScopedQuerySet):
    def visible_to(self, user) -> "ApiTokenQuerySet":
        """Tokens are personal: a user sees only their own, whatever their roles."""
        return self.filter(user=user)

    def active(self) -> "ApiTokenQuerySet":
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class ApiToken(models.Model):
    """A bearer token. Only the SHA-256 of the secret is stored; the secret is shown once."""

    id = models.CharField(primary_key=True, max_length=32, default=new_token_id, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, validators=[validate_one_line_text])
    prefix = models.CharField(max_length=16, help_text="The first characters of the token, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, hex.")
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class FailedAuthCounter(models.Model):
    """Failed authentications in one fixed window, for one client address or one credential (keyed by a
    SHA-256, never the credential itself): platform_site.api.ratelimit's failed-auth limit.

    In the database rather than the cache because a cache may cull or evict a counter, and an attacker
    controls how many cache entries there are (the file cache culls at MAX_ENTRIES). Rows of ended windows
    are deleted whenever a new row is created.
    """

    key = models.CharField(max_length=128, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_end = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "failed-authentication counter"

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
