"""Projects and project members. Role rules live here so the API, admin and console share them."""

from collections.abc import Mapping
from typing import Any, cast

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, OrgRole, User
from audit.services import audit_record
from platform_site import membership_rules as rules
from platform_site.errors import Conflict, PermissionDenied, ValidationFailed
from platform_site.text import clean_name, clean_text
from projects.models import PROJECT_ROLE_RANK, Project, ProjectMember, ProjectRole

# PROJECT_ROLE_RANK is keyed by ProjectRole members, which are their strings: roles read back from the database are.
PROJECT_RANKS = cast(Mapping[str, int], PROJECT_ROLE_RANK)

# An organization's owners own all its projects; its admins administer them.
_ORG_ROLE_TO_PROJECT_ROLE: dict[str | None, str] = {OrgRole.OWNER: ProjectRole.OWNER, OrgRole.ADMIN: ProjectRole.ADMIN}


def effective_project_role(*, project_role: str | None, org_role: str | None) -> str | None:
    candidates = [role for role in (project_role, _ORG_ROLE_TO_PROJECT_ROLE.get(org_role)) if role]
    return max(candidates, key=PROJECT_RANKS.__getitem__) if candidates else None


def project_role_of(*, user: User, project: Project) -> str | None:
    project_role = (
        ProjectMember.objects.current().filter(project=project, user=user).values_list("role", flat=True).first()
    )
    org_role = (
        Membership.objects.filter(organization_id=project.organization_id, user=user)
        .values_list("role", flat=True)
        .first()
    )
    return effective_project_role(project_role=project_role, org_role=org_role)


def require_project_role(*, user: User, project: Project, minimum: str) -> str:
    """The caller's effective role if it reaches `minimum`. Platform superusers (Django admin) act as owners."""
    if user.is_superuser:
        return ProjectRole.OWNER
    role = project_role_of(user=user, project=project)
    if role is None or PROJECT_RANKS[role] < PROJECT_RANKS[minimum]:
        raise PermissionDenied(
            f"This needs the project role '{minimum}' or higher.",
            details=f"Your role in project {project.name} is '{role or 'none'}'.",
        )
    return role


def _org_members_by_email(*, organization: Organization, emails: list[str]) -> dict[str, User]:
    users = User.objects.filter(email__in=[email.lower() for email in emails], memberships__organization=organization)
    return {user.email: user for user in users}


@transaction.atomic
def project_create(
    *,
    actor: User,
    organization: Organization,
    name: str,
    description: str = "",
    members: list[dict] | None = None,
) -> Project:
    """Any member of the organization may create a project; the creator becomes its owner."""
    name = clean_name(name)
    description = clean_text(description or "", field="description", allow_newlines=True)
    if not Membership.objects.filter(organization=organization, user=actor).exists():
        raise PermissionDenied("Only members of the organization can create projects in it.")
    if Project.objects.filter(organization=organization, name=name, deleted_at__isnull=True).exists():
        raise Conflict(f"A project named '{name}' exists.", code="NAME_TAKEN", fields={"name": ["Already in use."]})
    members = members or []
    found = _org_members_by_email(organization=organization, emails=[member["email"] for member in members])
    missing = [index for index, member in enumerate(members) if member["email"].lower() not in found]
    if missing:
        raise ValidationFailed(
            "Some members are not in the organization.",
            fields={f"members.{index}.email": ["Not a member of the organization."] for index in missing},
            remediation="Invite them to the project instead; they join when they accept.",
        )
    project = Project.objects.create(organization=organization, name=name, description=description, created_by=actor)
    roles = {actor.pk: ProjectRole.OWNER}
    for member in members:
        user = found[member["email"].lower()]
        roles.setdefault(user.pk, member.get("role") or ProjectRole.MEMBER)
    ProjectMember.objects.bulk_create(
        [ProjectMember(project=project, user_id=user_id, role=role) for user_id, role in roles.items()]
    )
    audit_record(
        actor=actor,
        action="project.create",
        target=project,
        organization=organization,
        metadata={"members": {str(user_id): role for user_id, role in roles.items()}},
    )
    return project


UNSET = object()


@transaction.atomic
def project_update(
    *,
    actor: User,
    project: Project,
    name: str | None = None,
    description: str | None = None,
    max_ttl_hours: int | None | object = UNSET,
) -> Project:
    """Admins rename and describe; the TTL policy is the owners' (it bounds what everyone may extend)."""
    require_project_role(user=actor, project=project, minimum=ProjectRole.ADMIN)
    if max_ttl_hours is not UNSET:
        require_project_role(user=actor, project=project, minimum=ProjectRole.OWNER)
    if name is not None:
        name = clean_name(name)
    if description is not None:
        description = clean_text(description, field="description", allow_newlines=True)
    changes: dict[str, Any] = {}
    if name is not None and name != project.name:
        if (
            Project.objects.filter(organization_id=project.organization_id, name=name, deleted_at__isnull=True)
            .exclude(pk=project.pk)
            .exists()
        ):
            raise Conflict(f"A project named '{name}' exists.", code="NAME_TAKEN", fields={"name": ["Already in use."]})
        changes["name"] = [project.name, name]
        project.name = name
    if description is not None and description != project.description:
        changes["description"] = "changed"
        project.description = description
    if max_ttl_hours is not UNSET and max_ttl_hours != project.max_ttl_hours:
        changes["max_ttl_hours"] = [project.max_ttl_hours, max_ttl_hours]
        project.max_ttl_hours = cast("int | None", max_ttl_hours)  # not UNSET: an int or None
    if changes:
        project.save()
    audit_record(
        actor=actor, action="project.update", target=project, organization=project.organization, metadata=changes
    )
    return project


@transaction.atomic
def project_delete(*, actor: User, project: Project) -> None:
    """Owners delete projects with no live workspaces. The row is archived to keep its cost history."""
    from workspaces.models import Workspace

    require_project_role(user=actor, project=project, minimum=ProjectRole.OWNER)
    # The row lock serialises this check against launches, which lock the project too.
    project = Project.objects.select_for_update().get(pk=project.pk)
    live = Workspace.objects.filter(project=project).live().count()
    if live:
        raise Conflict(
            f"The project has {live} live workspace(s).",
            code="PROJECT_HAS_LIVE_WORKSPACES",
            details="Stopped and hibernated workspaces still hold cloud resources.",
            remediation="Terminate the project's workspaces first.",
        )
    project.deleted_at = timezone.now()
    project.save(update_fields=["deleted_at", "updated_at"])
    audit_record(actor=actor, action="project.delete", target=project, organization=project.organization)


@transaction.atomic
def project_member_add(*, actor: User, project: Project, email: str, role: str) -> ProjectMember:
    actor_role = require_project_role(user=actor, project=project, minimum=ProjectRole.ADMIN)
    rules.require_grantable(PROJECT_RANKS, actor_role=actor_role, role=role)
    user = _org_members_by_email(organization=project.organization, emails=[email]).get(email.lower())
    if user is None:
        raise ValidationFailed(
            "This person is not a member of the project's organization.",
            fields={"email": ["Not a member of the organization."]},
            remediation="Invite them with POST /api/v1/invitations/send; they join when they accept.",
        )
    member, created = ProjectMember.objects.get_or_create(project=project, user=user, defaults={"role": role})
    if not created:
        if member.expires_at is None or member.expires_at > timezone.now():
            raise Conflict(f"{user.email} is already a member of the project.", code="ALREADY_MEMBER")
        # A membership whose access expired (not yet swept by the periodic task) is renewed, without expiry.
        member.role, member.expires_at, member.joined_at = role, None, timezone.now()
        member.save(update_fields=["role", "expires_at", "joined_at"])
    audit_record(
        actor=actor,
        action="project_member.create",
        target=member,
        organization=project.organization,
        metadata={"user": user.email, "role": role},
    )
    return member


def _lock_project_owners(project: Project) -> list[ProjectMember]:
    # An owner whose access has expired no longer counts: they cannot keep the project owned.
    return list(ProjectMember.objects.select_for_update().current().filter(project=project, role=ProjectRole.OWNER))


@transaction.atomic
def project_member_update(*, actor: User, member: ProjectMember, role: str) -> ProjectMember:
    project = member.project
    actor_role = require_project_role(user=actor, project=project, minimum=ProjectRole.ADMIN)
    rules.check_role_change(
        PROJECT_RANKS,
        actor_role=actor_role,
        member_role=member.role,
        new_role=role,
        owner_role=ProjectRole.OWNER,
        count_owners=lambda: len(_lock_project_owners(project)),
        where="project",
    )
    previous = member.role
    member.role = role
    member.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="project_member.update",
        target=member,
        organization=project.organization,
        metadata={"user": member.user.email, "role": [previous, role]},
    )
    return member


@transaction.atomic
def project_member_remove(*, actor: User, member: ProjectMember) -> None:
    """Admins remove members; anyone may leave a project."""
    project = member.project
    leaving = member.user_id == actor.pk
    rules.check_removal(
        PROJECT_RANKS,
        actor_role=None if leaving else require_project_role(user=actor, project=project, minimum=ProjectRole.ADMIN),
        member_role=member.role,
        owner_role=ProjectRole.OWNER,
        count_owners=lambda: len(_lock_project_owners(project)),
        where="project",
    )
    audit_record(
        actor=actor,
        action="project_member.delete",
        target=member,
        organization=project.organization,
        metadata={"user": member.user.email, "role": member.role},
    )
    member.delete()
