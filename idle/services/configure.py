"""Idle policies: a workspace's own settings, a project's default for new workspaces, an organization's profiles.

Who may change what: a workspace's settings, whoever manages the workspace (its owner, the project's owners and
admins); a project's default, its owners; an organization's profiles, its owners and admins."""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, Organization, OrgRole, User
from audit.services import audit_record
from idle.models import IdleAction, IdleProfile, ProjectIdlePolicy, WorkspaceIdle
from idle.profiles import BUILTIN_PROFILES, DEFAULT_PROFILE, THRESHOLD_FIELDS, Profile, find_profile
from platform_site.actors import Actor, is_system
from platform_site.errors import Conflict, PermissionDenied, ValidationFailed
from platform_site.text import clean_name, clean_text
from projects.models import Project, ProjectRole
from projects.services import require_project_role
from workspaces.models import Workspace, WorkspaceState
from workspaces.services import require_can_manage

# The bounds every entry point shares (the API's serializers, the console's forms and these services).
MAX_WINDOW_MINUTES = 7 * 24 * 60
MAX_WARNING_MINUTES = 24 * 60
PERCENT_FIELDS = ("cpu_threshold", "memory_threshold", "gpu_threshold")
RATE_FIELDS = ("network_threshold", "disk_threshold")
NULLABLE_FIELDS = PERCENT_FIELDS + RATE_FIELDS
PROFILE_NAME_MAX = 64


def _check_thresholds(values: dict[str, Any]) -> None:
    """The same rules as the serializers, for callers that do not go through them (the console, the admin)."""
    errors: dict[str, list[str]] = {}
    minutes = values.get("idle_threshold_minutes")
    if minutes is not None and not (isinstance(minutes, int) and 1 <= minutes <= MAX_WINDOW_MINUTES):
        errors["idle_threshold_minutes"] = [f"A whole number of minutes from 1 to {MAX_WINDOW_MINUTES}."]
    warning = values.get("warning_minutes")
    if warning is not None and not (isinstance(warning, int) and 1 <= warning <= MAX_WARNING_MINUTES):
        errors["warning_minutes"] = [f"A whole number of minutes from 1 to {MAX_WARNING_MINUTES}."]
    action = values.get("action")
    if action not in (None, "", *IdleAction.values):
        errors["action"] = ["hibernate or stop."]
    for field in PERCENT_FIELDS:
        value = values.get(field)
        if value is not None and not (isinstance(value, int | float) and 0 <= value <= 100):
            errors[field] = ["A percentage from 0 to 100, or null (not judged)."]
    for field in RATE_FIELDS:
        value = values.get(field)
        if value is not None and not (isinstance(value, int | float) and 0 <= value < 1e15):
            errors[field] = ["Bytes per second, 0 or more, or null (not judged)."]
    if errors:
        raise ValidationFailed(fields=errors)


def require_profile(*, organization_id: str, name: str, field: str = "profile") -> Profile:
    """A built-in profile or one of the organization's, else a 400 naming the field."""
    profile = find_profile(organization_id=organization_id, name=name)
    if profile is None:
        known = ", ".join(BUILTIN_PROFILES)
        raise ValidationFailed(
            f"No idle profile named '{name}'.",
            fields={field: [f"No idle profile named '{name}': one of {known}, or one of your organization's."]},
            remediation="GET /api/v1/idle/profiles lists the profiles you may use.",
        )
    return profile


def launch_idle_request(*, organization_id: str, requested: dict | None) -> dict | None:
    """A launch's `idle` (enabled, profile, idle_threshold_minutes, action) checked before the launch: a profile
    that does not exist is refused here (launch_policy would fall back silently)."""
    if not requested:
        return None
    cleaned = {key: value for key, value in requested.items() if value not in (None, "")}
    _check_thresholds(cleaned)
    if cleaned.get("profile"):
        require_profile(organization_id=organization_id, name=cleaned["profile"], field="idle.profile")
    return cleaned or None


# --- A workspace's settings ------------------------------------------------------------------------------------


def workspace_idle_configure(*, actor: Actor, workspace: Workspace, **fields: Any) -> WorkspaceIdle:
    """Change a workspace's idle settings: `enabled`, `profile` (its thresholds replace the current ones), and any
    of THRESHOLD_FIELDS over them (a threshold given as None is no longer judged). The window starts again now
    (`configured_at`) and a warning in force is withdrawn: samples judged by the old rules never count under the
    new ones."""
    unknown = set(fields) - {"enabled", "profile", *THRESHOLD_FIELDS}
    if unknown:
        raise ValidationFailed(fields={field: ["Unknown setting."] for field in sorted(unknown)})
    require_can_manage(user=actor, workspace=workspace)
    if workspace.state in (WorkspaceState.TERMINATING, WorkspaceState.TERMINATED):
        raise Conflict(
            f"Workspace '{workspace.name}' is {workspace.state}; its idle settings can no longer change.",
            code="INVALID_STATE",
        )
    for field in ("idle_threshold_minutes", "action", "warning_minutes"):
        if field in fields and fields[field] is None:
            fields.pop(field)
    _check_thresholds(fields)
    profile = None
    if fields.get("profile"):
        profile = require_profile(organization_id=workspace.organization_id, name=fields["profile"])
    with transaction.atomic():
        state = WorkspaceIdle.objects.select_for_update().filter(workspace_id=workspace.pk).first()
        if state is None:  # a workspace launched before idle detection: it starts from the standard profile
            standard = BUILTIN_PROFILES[DEFAULT_PROFILE]
            state = WorkspaceIdle.objects.create(
                workspace=workspace, enabled=False, profile=standard.name, **standard.thresholds()
            )
        before = _settings(state)
        if profile is not None:
            state.profile = profile.name
            for field, value in profile.thresholds().items():
                setattr(state, field, value)
        for field in THRESHOLD_FIELDS:
            if field in fields:
                setattr(state, field, fields[field])
        if fields.get("enabled") is not None:
            state.enabled = bool(fields["enabled"])
        state.configured_at = timezone.now()
        state.warned_at = None
        state.save(update_fields=["profile", "enabled", "configured_at", "warned_at", *THRESHOLD_FIELDS])
        after = _settings(state)
        audit_record(
            actor=actor,
            action="workspace.idle_configure",
            target=workspace,
            organization=workspace.organization,
            metadata={
                "changed": {key: [before[key], after[key]] for key in after if before[key] != after[key]},
            },
        )
    return state


def _settings(state: WorkspaceIdle) -> dict:
    return {
        "enabled": state.enabled,
        "profile": state.profile,
        **{field: getattr(state, field) for field in THRESHOLD_FIELDS},
    }


# --- A project's default ----------------------------------------------------------------------------------------


def project_idle_policy_set(
    *,
    actor: User,
    project: Project,
    enabled: bool = True,
    profile: str = DEFAULT_PROFILE,
    idle_threshold_minutes: int | None = None,
    action: str = "",
) -> ProjectIdlePolicy:
    """What every new workspace of the project starts with, over its template's idle defaults (a launch's own
    `idle` goes over this). Project owners only. Workspaces already running keep their settings."""
    require_project_role(user=actor, project=project, minimum=ProjectRole.OWNER)
    _check_thresholds({"idle_threshold_minutes": idle_threshold_minutes, "action": action})
    require_profile(organization_id=project.organization_id, name=profile)
    with transaction.atomic():
        policy, created = ProjectIdlePolicy.objects.update_or_create(
            project=project,
            defaults={
                "enabled": enabled,
                "profile": profile,
                "idle_threshold_minutes": idle_threshold_minutes,
                "action": action or "",
                "updated_by": actor,
                "updated_at": timezone.now(),
            },
        )
        audit_record(
            actor=actor,
            action="project.idle_policy_set",
            target=project,
            organization=project.organization,
            metadata={
                "enabled": enabled,
                "profile": profile,
                "idle_threshold_minutes": idle_threshold_minutes,
                "action": action or "",
                "created": created,
            },
        )
    return policy


# --- An organization's profiles ---------------------------------------------------------------------------------


def can_manage_profiles(*, user: "Actor | None", organization_id: str) -> bool:
    if is_system(user):
        return True
    if not isinstance(user, User) or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(
        organization_id=organization_id, user=user, role__in=[OrgRole.OWNER, OrgRole.ADMIN]
    ).exists()


def idle_profile_create(
    *,
    actor: User,
    organization: Organization,
    name: str,
    idle_threshold_minutes: int,
    description: str = "",
    **thresholds: Any,
) -> IdleProfile:
    """A profile of the organization's own (owners and admins). Its name may not be a built-in one's."""
    if not can_manage_profiles(user=actor, organization_id=organization.pk):
        raise PermissionDenied(
            "Only the organization's owners and admins create idle profiles.",
            remediation="Ask an owner or admin of the organization, or use a built-in profile.",
        )
    unknown = set(thresholds) - set(THRESHOLD_FIELDS)
    if unknown:
        raise ValidationFailed(fields={field: ["Unknown setting."] for field in sorted(unknown)})
    values = {key: value for key, value in thresholds.items() if value is not None or key in NULLABLE_FIELDS}
    values["idle_threshold_minutes"] = idle_threshold_minutes
    _check_thresholds(values)
    name = clean_name(name)
    if len(name) > PROFILE_NAME_MAX:
        raise ValidationFailed(fields={"name": [f"At most {PROFILE_NAME_MAX} characters."]})
    description = clean_text(description or "", field="description")
    if name in BUILTIN_PROFILES:
        raise Conflict(f"'{name}' is a built-in profile's name.", code="NAME_TAKEN", fields={"name": ["Taken."]})
    try:
        with transaction.atomic():
            profile = IdleProfile.objects.create(
                organization=organization, name=name, description=description, created_by=actor, **values
            )
            audit_record(
                actor=actor,
                action="idle_profile.create",
                target=profile,
                organization=organization,
                metadata={"name": name, **{key: values[key] for key in sorted(values)}},
            )
    except IntegrityError:
        raise Conflict(
            f"Your organization already has an idle profile named '{name}'.",
            code="NAME_TAKEN",
            fields={"name": ["Taken."]},
        ) from None
    return profile
