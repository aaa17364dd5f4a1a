"""Organizations, memberships and API tokens. Every mutation is audited in the same transaction."""

import functools
import hashlib
import hmac
import secrets
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import ORG_ROLE_RANK, ApiToken, Membership, Organization, OrgRole, TokenScope, User
from audit.services import audit_record
from platform_site import membership_rules as rules
from platform_site.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from platform_site.sql import RowLoader
from platform_site.text import clean_name

# --- Roles ------------------------------------------------------------------------------------

# ORG_ROLE_RANK is keyed by OrgRole members, which are their strings: roles read back from the database are.
ORG_RANKS = cast(Mapping[str, int], ORG_ROLE_RANK)


def org_role_of(*, user: User, organization: Organization) -> str | None:
    return Membership.objects.filter(user=user, organization=organization).values_list("role", flat=True).first()


def require_org_role(*, user: User, organization: Organization, minimum: str) -> str:
    role = org_role_of(user=user, organization=organization)
    if role is None or ORG_RANKS[role] < ORG_RANKS[minimum]:
        raise PermissionDenied(
            f"This needs the organization role '{minimum}' or higher.",
            details=f"Your role in {organization.name} is '{role or 'none'}'.",
        )
    return role


# --- People ------------------------------------------------------------------------------------------


@transaction.atomic
def user_update_profile(
    *, actor: User, user: User, first_name: str | None = None, last_name: str | None = None
) -> User:
    """A person changes their own name (platform superusers anyone's). Names are one clean line."""
    if user.pk != actor.pk and not actor.is_superuser:
        raise PermissionDenied("You can change only your own profile.")
    changes = {}
    for field, value in (("first_name", first_name), ("last_name", last_name)):
        if value is None:
            continue
        value = clean_name(value, field=field) if value.strip() else ""
        if value != getattr(user, field):
            changes[field] = [getattr(user, field), value]
            setattr(user, field, value)
    if changes:
        user.save(update_fields=list(changes))
        audit_record(actor=actor, action="user.update", target=user, metadata=changes)
    return user


# --- Organizations ------------------------------------------------------------------------------


def _unique_org_slug(name: str) -> str:
    base = slugify(name)[:60] or "org"
    candidate, n = base, 1
    while Organization.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@transaction.atomic
def organization_create(*, actor: User, name: str, slug: str | None = None) -> Organization:
    name = clean_name(name)
    if slug and Organization.objects.filter(slug=slug).exists():
        raise Conflict(f"The slug '{slug}' is taken.", code="NAME_TAKEN", fields={"slug": ["This slug is taken."]})
    organization = Organization.objects.create(name=name, slug=slug or _unique_org_slug(name))
    Membership.objects.create(organization=organization, user=actor, role=OrgRole.OWNER)
    audit_record(actor=actor, action="organization.create", target=organization, organization=organization)
    return organization


@transaction.atomic
def organization_update(
    *, actor: User, organization: Organization, name: str | None = None, time_zone: str | None = None
) -> Organization:
    """Rename, or set the time zone whose midnights end the organization's days (cost history, the ledger's
    daily close, monthly budget periods); only before the organization has cost history."""
    require_org_role(user=actor, organization=organization, minimum=OrgRole.ADMIN)
    if name is not None:
        name = clean_name(name)
    if time_zone is not None and time_zone not in zoneinfo.available_timezones():
        raise ValidationFailed(
            f"Unknown time zone '{time_zone}'.",
            fields={"time_zone": ["Use an IANA time zone name, e.g. Europe/Berlin or America/New_York."]},
        )
    changes = {}
    if name is not None and name != organization.name:
        changes["name"] = [organization.name, name]
        organization.name = name
    if time_zone is not None and time_zone != organization.time_zone:
        from budgets.models import CostEntry

        if CostEntry.objects.filter(organization=organization).exists():
            # Ledger rows are dated by the organization's days: another zone would split periods and history.
            raise Conflict(
                "The time zone cannot change once the organization has cost history.",
                code="CONFLICT",
                details="Ledger rows are dated by the days of the current time zone.",
                remediation="Set the time zone before the first launch; an operator can change it in the admin.",
                fields={"time_zone": ["Fixed once there is cost history."]},
            )
        changes["time_zone"] = [organization.time_zone, time_zone]
        organization.time_zone = time_zone
    if changes:
        organization.save(update_fields=list(changes))
    audit_record(
        actor=actor, action="organization.update", target=organization, organization=organization, metadata=changes
    )
    return organization


@transaction.atomic
def organization_delete(*, actor: User, organization: Organization) -> None:
    require_org_role(user=actor, organization=organization, minimum=OrgRole.OWNER)
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.projects.exists():
        raise Conflict(
            "The organization still has projects.",
            code="ORGANIZATION_NOT_EMPTY",
            details="Projects, including deleted ones whose cost history is kept, belong to it.",
            remediation="Ask an administrator to archive the organization instead.",
        )
    audit_record(
        actor=actor,
        action="organization.delete",
        target=organization,
        organization=None,
        metadata={"organization_id": organization.pk, "name": organization.name},
    )
    organization.delete()


# --- Memberships --------------------------------------------------------------------------------


def _lock_owners(organization: Organization) -> list[Membership]:
    return list(
        Membership.objects.select_for_update().filter(organization=organization, role=OrgRole.OWNER).order_by("pk")
    )


@transaction.atomic
def membership_add(*, actor: User, organization: Organization, email: str, role: str) -> Membership:
    actor_role = require_org_role(user=actor, organization=organization, minimum=OrgRole.ADMIN)
    rules.require_grantable(ORG_RANKS, actor_role=actor_role, role=role)
    user = User.objects.filter(email=email.strip().lower()).first()
    if user is None:
        raise ValidationFailed(
            "No account has this e-mail address.",
            fields={"email": ["No account has this e-mail address."]},
            remediation="Invite the person to a project instead; they join when they accept.",
        )
    membership, created = Membership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    if not created:
        raise Conflict(f"{user.email} is already a member.", code="ALREADY_MEMBER")
    audit_record(
        actor=actor,
        action="membership.create",
        target=membership,
        organization=organization,
        metadata={"user": user.email, "role": role},
    )
    return membership


@transaction.atomic
def membership_update_role(*, actor: User, membership: Membership, role: str) -> Membership:
    organization = membership.organization
    actor_role = require_org_role(user=actor, organization=organization, minimum=OrgRole.ADMIN)
    rules.check_role_change(
        ORG_RANKS,
        actor_role=actor_role,
        member_role=membership.role,
        new_role=role,
        owner_role=OrgRole.OWNER,
        count_owners=lambda: len(_lock_owners(organization)),
        where="organization",
    )
    previous = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="membership.update",
        target=membership,
        organization=organization,
        metadata={"user": membership.user.email, "role": [previous, role]},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: User, membership: Membership) -> None:
    """Admins remove members; anyone may leave. Leaving also ends the person's project memberships there."""
    from projects.models import ProjectMember

    organization = membership.organization
    leaving = membership.user_id == actor.pk
    rules.check_removal(
        ORG_RANKS,
        actor_role=None if leaving else require_org_role(user=actor, organization=organization, minimum=OrgRole.ADMIN),
        member_role=membership.role,
        owner_role=OrgRole.OWNER,
        count_owners=lambda: len(_lock_owners(organization)),
        where="organization",
    )
    ProjectMember.objects.filter(user_id=membership.user_id, project__organization=organization).delete()
    audit_record(
        actor=actor,
        action="membership.delete",
        target=membership,
        organization=organization,
        metadata={"user": membership.user.email, "role": membership.role},
    )
    membership.delete()


# --- API tokens -----------------------------------------------------------------------------------

TOKEN_ENTROPY_BYTES = 32  # 256 bits


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


class TokenRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def token_create(
    *,
    actor: User,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    via_token: ApiToken | None = None,
) -> IssuedToken:
    name = clean_name(name)
    scopes = sorted(set(scopes))
    unknown = [scope for scope in scopes if scope not in TokenScope.values]
    if not scopes or unknown:
        raise ValidationFailed(fields={"scopes": [f"Choose from {', '.join(TokenScope.values)}."]})
    if via_token is not None and not set(scopes) <= set(via_token.scopes):
        raise PermissionDenied(
            "A token cannot create a token with scopes it does not have itself.", code="INSUFFICIENT_SCOPE"
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed(fields={"expires_at": ["Must be in the future."]})
    secret = settings.CARREL_TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_ENTROPY_BYTES)
    token = ApiToken.objects.create(
        user=actor,
        name=name,
        prefix=secret[: len(settings.CARREL_TOKEN_PREFIX) + 6],
        token_hash=token_digest(secret),
        scopes=scopes,
        expires_at=expires_at,
    )
    audit_record(actor=actor, action="token.create", target=token, metadata={"scopes": scopes})
    return IssuedToken(token=token, secret=secret)


LAST_USED_RESOLUTION = timedelta(minutes=1)


@functools.cache
def _token_loaders() -> tuple[RowLoader, RowLoader, str]:
    token, user = RowLoader(ApiToken, "t"), RowLoader(User, "u")
    # Column and table names from the models' _meta; the digest is a parameter.
    tables = f"{ApiToken._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id"
    sql = f"SELECT {token.columns}, {user.columns} FROM {tables} WHERE t.token_hash = %s"  # noqa: S608
    return token, user, sql


def _token_by_digest(digest: str) -> ApiToken | None:
    """The token with this digest and its user. Every API request asks, so on PostgreSQL it is one query written
    once rather than a queryset compiled anew each time (about a millisecond of a request's CPU)."""
    if connection.vendor != "postgresql":
        return ApiToken.objects.select_related("user").filter(token_hash=digest).first()
    token_loader, user_loader, sql = _token_loaders()
    with connection.cursor() as cursor:
        cursor.execute(sql, [digest])
        row = cursor.fetchone()
    if row is None:
        return None
    token = token_loader.load(row[: token_loader.width])
    token.user = user_loader.load(row[token_loader.width :])
    return cast(ApiToken, token)


def token_authenticate(*, secret: str, ip: str | None) -> ApiToken:
    """The token for a presented secret, or TokenRejected with a stable code."""
    if not secret.startswith(settings.CARREL_TOKEN_PREFIX) or len(secret) > 128:
        raise TokenRejected("TOKEN_INVALID", "The bearer token is not valid.")
    digest = token_digest(secret)
    token = _token_by_digest(digest)
    # The lookup is by digest; compare again in constant time so no timing reveals a near match.
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        raise TokenRejected("TOKEN_INVALID", "The bearer token is not valid.")
    if token.revoked_at is not None:
        raise TokenRejected("TOKEN_REVOKED", "The bearer token was revoked.")
    if token.is_expired:
        raise TokenRejected("TOKEN_EXPIRED", "The bearer token has expired.")
    if not token.user.is_active:
        raise TokenRejected("AUTHENTICATION_FAILED", "The account is disabled.")
    now = timezone.now()
    # Writing last-use on every request would turn every read into a write; minute resolution is enough.
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION or token.last_used_ip != ip:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
        token.last_used_at, token.last_used_ip = now, ip
    return token


@transaction.atomic
def token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    """Idempotent: revoking a revoked token changes nothing and records nothing."""
    now = timezone.now()
    if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
        token.revoked_at = now
        audit_record(actor=actor, action="token.revoke", target=token)
    else:
        token.refresh_from_db(fields=["revoked_at"])
    return token


def token_revoke_by_digest(*, actor: User, digest: str, via_token: ApiToken | None = None) -> ApiToken:
    """Any token may revoke itself; revoking another token through a token needs its `write` scope."""
    digest = digest.lower()
    if (
        via_token is not None
        and via_token.token_hash != digest  # the caller's own token: nothing secret to time
        and not via_token.has_scope(TokenScope.WRITE)
    ):
        raise PermissionDenied(
            "A token without the 'write' scope can revoke only itself.",
            code="INSUFFICIENT_SCOPE",
            remediation="Use a token with the 'write' scope, or the token you want to revoke.",
        )
    token = ApiToken.objects.visible_to(actor).filter(token_hash=digest).first()
    if token is None:
        raise NotFound("No token of yours has this SHA-256.", code="TOKEN_NOT_FOUND")
    return token_revoke(actor=actor, token=token)


@transaction.atomic
def token_delete(*, actor: User, token: ApiToken) -> None:
    audit_record(actor=actor, action="token.delete", target=token)
    token.delete()


@transaction.atomic
def token_purge(*, actor: User) -> int:
    deleted, _ = ApiToken.objects.filter(user=actor).delete()
    audit_record(actor=actor, action="token.purge", target=actor, metadata={"deleted": deleted})
    return deleted
