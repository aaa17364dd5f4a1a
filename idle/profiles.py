"""Built-in idle profiles, organization profiles, and the policy a new workspace starts with."""

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from idle.models import IdleProfile, ProjectIdlePolicy

THRESHOLD_FIELDS = (
    "idle_threshold_minutes",
    "action",
    "cpu_threshold",
    "memory_threshold",
    "network_threshold",
    "disk_threshold",
    "gpu_threshold",
    "warning_minutes",
)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    idle_threshold_minutes: int
    action: str = "hibernate"
    cpu_threshold: float | None = None
    memory_threshold: float | None = None
    network_threshold: float | None = None
    disk_threshold: float | None = None
    gpu_threshold: float | None = None
    warning_minutes: int = 10
    builtin: bool = True
    organization_id: str | None = None

    def thresholds(self) -> dict:
        values = asdict(self)
        return {field: values[field] for field in THRESHOLD_FIELDS}


# The seed's profiles, plus `standard` for a workspace whose template, project and launch name none.
BUILTIN_PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            name="standard",
            description="Interactive workstations: hibernate after an hour with nothing going on",
            idle_threshold_minutes=60,
            action="hibernate",
            cpu_threshold=5.0,
            network_threshold=10240,
            disk_threshold=102400,
            gpu_threshold=5.0,
        ),
        Profile(
            name="batch",
            description="Long-running research jobs",
            idle_threshold_minutes=60,
            action="hibernate",
            cpu_threshold=5.0,
            memory_threshold=10.0,
            network_threshold=1024,
            gpu_threshold=5.0,
        ),
        Profile(
            name="gpu",
            description="GPU workstations",
            idle_threshold_minutes=15,
            action="stop",
            cpu_threshold=10.0,
            gpu_threshold=10.0,
        ),
    )
}
DEFAULT_PROFILE = "standard"


def _from_row(row: IdleProfile) -> Profile:
    return Profile(
        name=row.name,
        description=row.description,
        builtin=False,
        organization_id=row.organization_id,
        **{field: getattr(row, field) for field in THRESHOLD_FIELDS},
    )


def find_profile(*, organization_id: str, name: str) -> Profile | None:
    """A built-in profile by name, else the organization's own (organization profiles cannot shadow built-ins)."""
    if name in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[name]
    row = IdleProfile.objects.filter(organization_id=organization_id, name=name).first()
    return _from_row(row) if row is not None else None


def profiles_for(*, organization_ids: Iterable[str]) -> list[Profile]:
    rows = IdleProfile.objects.filter(organization_id__in=list(organization_ids)).order_by("organization_id", "name")
    return [*BUILTIN_PROFILES.values(), *(_from_row(row) for row in rows)]


@dataclass(frozen=True)
class Policy:
    """What a workspace starts with: a profile's thresholds, with overrides, and whether it is on."""

    enabled: bool
    profile: Profile

    def fields(self) -> dict:
        return {"enabled": self.enabled, "profile": self.profile.name, **self.profile.thresholds()}


def _overridden(profile: Profile, overrides: dict) -> Profile:
    changes = {field: overrides[field] for field in THRESHOLD_FIELDS if overrides.get(field) not in (None, "")}
    return replace(profile, **changes) if changes else profile


def launch_policy(
    *, organization_id: str, project_id: str, template_defaults: dict | None, requested: dict | None
) -> Policy:
    """The idle policy at launch: what the launch asked for, over the project's default, over the template's
    `idle_defaults`, over the `standard` profile. A profile name that no longer exists falls back a level."""
    layers: list[dict] = []
    if template_defaults:
        layers.append(dict(template_defaults))
    project_default = ProjectIdlePolicy.objects.filter(project_id=project_id).first()
    if project_default is not None:
        layers.append(
            {
                "enabled": project_default.enabled,
                "profile": project_default.profile,
                "idle_threshold_minutes": project_default.idle_threshold_minutes,
                "action": project_default.action,
            }
        )
    if requested:
        layers.append(dict(requested))
    profile = BUILTIN_PROFILES[DEFAULT_PROFILE]
    enabled = True
    for layer in layers:
        if layer.get("profile"):
            found = find_profile(organization_id=organization_id, name=layer["profile"])
            if found is not None:
                profile = found
        profile = _overridden(profile, layer)
        if layer.get("enabled") is not None:
            enabled = bool(layer["enabled"])
    return Policy(enabled=enabled, profile=profile)
