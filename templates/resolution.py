"""Template inheritance and validation, as pure functions over template definitions (dicts).

A definition is what a catalog YAML file holds. `inherits` names parents (by name or slug); they
are merged in the order given, then the child last. The merge rule for each field:

    name, slug, description, inherits, troubleshooting_guide
                       the template's own; never inherited
    base_os            the child's if set, else the last parent's that sets one
    package_manager    the child's if set, else the last parent's that sets one
    packages           kept per package manager: each template's packages belong to its own
                       (effective) manager; lists are concatenated parents-first and de-duplicated
                       keeping the first occurrence, so nothing a parent or child lists is lost
    users              merged by user name: a later definition adds groups (union) and may set the
                       shell; order of first appearance
    services           merged by service name: a later definition overrides port and description
    ports              union of every template's ports and every service port, de-duplicated
    instance_defaults  key by key, the later (child) value wins
    idle_defaults      key by key, the later (child) value wins
    parameters         by parameter name, the later (child) definition wins whole
"""

import re
from dataclasses import dataclass, field
from typing import Any

TOP_LEVEL_KEYS = {
    "name",
    "slug",
    "description",
    "base_os",
    "inherits",
    "package_manager",
    "packages",
    "users",
    "services",
    "ports",
    "instance_defaults",
    "idle_defaults",
    "parameters",
    "troubleshooting_guide",
}
USER_KEYS = {"name", "groups", "shell"}
SERVICE_KEYS = {"name", "port", "description"}
INSTANCE_DEFAULT_KEYS = {"instance_type", "workload", "size", "root_volume_gb", "ami", "spot", "max_ttl_hours"}
IDLE_DEFAULT_KEYS = {"profile", "idle_threshold_minutes", "action", "cpu_threshold", "gpu_threshold"}
PARAMETER_KEYS = {"type", "choices", "default", "description"}

OS_FAMILIES = {
    "ubuntu-24.04": "debian",
    "ubuntu-22.04": "debian",
    "debian-12": "debian",
    "rocky-9": "rhel",
    "amazon-linux-2023": "rhel",
}
# System package managers belong to an OS family; language-level ones run anywhere.
PACKAGE_MANAGERS = {"apt": "debian", "dnf": "rhel", "yum": "rhel", "conda": None, "pip": None, "spack": None}
WORKLOADS = {"general", "compute", "memory", "gpu"}
SIZES = {"XS", "S", "M", "L", "XL"}
IDLE_ACTIONS = {"stop", "hibernate"}
PARAMETER_TYPES = {"string", "integer", "boolean", "choice"}
USER_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
RESERVED_USERS = {"root", "daemon", "bin", "sys", "nobody"}
SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
NAME_MAX_LENGTH = 120  # WorkspaceTemplate.name


class ResolutionError(Exception):
    """Inheritance cannot be resolved: an unknown parent or a cycle."""


@dataclass
class ResolvedTemplate:
    name: str
    slug: str
    description: str
    inherits: list[str]
    base_os: str | None
    package_manager: str | None
    packages_by_manager: dict[str, list[str]]
    users: list[dict]
    services: list[dict]
    ports: list[int]
    instance_defaults: dict[str, Any]
    idle_defaults: dict[str, Any]
    parameters: dict[str, dict]
    dependency_chain: list[str]
    troubleshooting_guide: str = ""

    @property
    def packages(self) -> list[str]:
        return _dedupe(package for packages in self.packages_by_manager.values() for package in packages)

    @property
    def user_names(self) -> list[str]:
        return [user["name"] for user in self.users]

    @property
    def service_names(self) -> list[str]:
        return [service["name"] for service in self.services]


@dataclass
class Issue:
    check: str
    message: str


@dataclass
class ValidationReport:
    template: str
    issues: list[Issue] = field(default_factory=list)
    checks_run: int = 0

    @property
    def valid(self) -> bool:
        return not self.issues

    @property
    def checks_passed(self) -> int:
        failed = len({issue.check for issue in self.issues})
        return self.checks_run - failed


def _dedupe(items) -> list:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def ancestry(definition: dict, catalog: dict[str, dict]) -> list[dict]:
    """Definitions to merge, in order: every ancestor before its descendants, the template last.

    `catalog` maps both names and slugs to definitions. Diamond inheritance merges a shared
    ancestor once, at its first position.
    """
    order: list[dict] = []
    seen: set[str] = set()

    def visit(current: dict, path: tuple[str, ...]) -> None:
        for parent_ref in _as_list(current.get("inherits")):
            parent = catalog.get(parent_ref)
            if parent is None:
                raise ResolutionError(f"'{current.get('name')}' inherits unknown template '{parent_ref}'")
            if parent["name"] in path:
                cycle = " → ".join([*path, parent["name"]])
                raise ResolutionError(f"Inheritance cycle: {cycle}")
            visit(parent, (*path, parent["name"]))
        if current["name"] not in seen:
            seen.add(current["name"])
            order.append(current)

    visit(definition, (definition["name"],))
    return order


def _own_package_manager(definition: dict, catalog: dict[str, dict]) -> str | None:
    """The package manager a template has when resolved on its own (its own, else its ancestry's)."""
    if definition.get("package_manager"):
        return definition["package_manager"]
    manager = None
    for layer in ancestry(definition, catalog):
        manager = layer.get("package_manager") or manager
    return manager


def resolve(definition: dict, catalog: dict[str, dict]) -> ResolvedTemplate:
    chain = ancestry(definition, catalog)
    base_os = package_manager = None
    packages_by_manager: dict[str, list[str]] = {}
    users: dict[str, dict] = {}
    services: dict[str, dict] = {}
    ports: list[int] = []
    instance_defaults: dict[str, Any] = {}
    idle_defaults: dict[str, Any] = {}
    parameters: dict[str, dict] = {}

    for layer in chain:
        base_os = layer.get("base_os") or base_os
        package_manager = layer.get("package_manager") or package_manager
        if layer.get("packages"):
            # The layer's own effective manager, not the running one: with several parents, a later
            # parent's packages must not be filed under an earlier sibling's manager.
            manager = _own_package_manager(layer, catalog) or "unknown"
            packages_by_manager[manager] = _dedupe([*packages_by_manager.get(manager, []), *layer["packages"]])
        for user in _as_list(layer.get("users")):
            user = {"name": user} if isinstance(user, str) else user
            merged = users.setdefault(user["name"], {"name": user["name"], "groups": []})
            merged["groups"] = _dedupe([*merged["groups"], *_as_list(user.get("groups"))])
            if user.get("shell"):
                merged["shell"] = user["shell"]
        for service in _as_list(layer.get("services")):
            service = {"name": service} if isinstance(service, str) else service
            merged = services.setdefault(service["name"], {"name": service["name"]})
            merged.update({key: value for key, value in service.items() if value is not None})
        ports.extend(_as_list(layer.get("ports")))
        instance_defaults.update(layer.get("instance_defaults") or {})
        idle_defaults.update(layer.get("idle_defaults") or {})
        parameters.update(layer.get("parameters") or {})

    ports.extend(service["port"] for service in services.values() if service.get("port") is not None)
    return ResolvedTemplate(
        name=definition["name"],
        slug=definition.get("slug") or slugify_name(definition["name"]),
        description=definition.get("description", ""),
        inherits=_as_list(definition.get("inherits")),
        base_os=base_os,
        package_manager=package_manager,
        packages_by_manager=packages_by_manager,
        users=list(users.values()),
        services=list(services.values()),
        ports=_dedupe(ports),
        instance_defaults=instance_defaults,
        idle_defaults=idle_defaults,
        parameters=parameters,
        dependency_chain=[layer["name"] for layer in chain],
        troubleshooting_guide=definition.get("troubleshooting_guide", ""),
    )


def slugify_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80]


def _valid_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def validate(definition: dict, catalog: dict[str, dict], *, instance_types: set[str] | None = None) -> ValidationReport:
    """Every check, reported with the check's name; a template is valid when no check fails."""
    name = definition.get("name") or "(unnamed)"
    report = ValidationReport(template=name)

    def check(check_name: str, ok: bool, message: str) -> None:
        if not ok:
            report.issues.append(Issue(check_name, message))

    checks = [
        "schema",
        "inheritance",
        "base_os",
        "package_manager",
        "users",
        "services",
        "ports",
        "instance_defaults",
        "idle_defaults",
        "parameters",
    ]
    report.checks_run = len(checks)

    # schema: required fields, unknown keys at every level
    check("schema", isinstance(definition.get("name"), str) and bool(definition.get("name")), "'name' is required")
    unknown = sorted(set(definition) - TOP_LEVEL_KEYS)
    check("schema", not unknown, f"Unknown keys: {', '.join(unknown)}")
    for key in ("packages", "ports", "inherits"):
        check("schema", isinstance(definition.get(key, []), list), f"'{key}' must be a list")
    for key in ("instance_defaults", "idle_defaults", "parameters"):
        check("schema", isinstance(definition.get(key, {}), dict), f"'{key}' must be a mapping")
    for key in ("base_os", "package_manager", "description", "troubleshooting_guide"):
        value = definition.get(key)
        check("schema", value is None or isinstance(value, str), f"'{key}' must be a string")
    if isinstance(definition.get("name"), str):
        check("schema", len(definition["name"]) <= NAME_MAX_LENGTH, f"'name' is longer than {NAME_MAX_LENGTH}")
    if "slug" in definition:
        slug = definition["slug"]
        check(
            "schema",
            isinstance(slug, str) and bool(SLUG_RE.match(slug)),
            f"'slug' {slug!r} must be 1–80 lower-case letters, digits and hyphens (derived from the name if absent)",
        )
    if report.issues:
        return report

    # Shapes that resolving relies on; anything else is reported here rather than crashing below.
    for key in ("packages", "inherits"):
        for item in definition.get(key) or []:
            check("schema", isinstance(item, str) and bool(item), f"'{key}' must list names, not {item!r}")
    for user in _as_list(definition.get("users")):
        if isinstance(user, dict):
            check("users", isinstance(user.get("name"), str), f"A user needs a name: {user!r}")
            groups = _as_list(user.get("groups"))
            check("users", all(isinstance(g, str) for g in groups), f"Groups must be names: {user.get('groups')!r}")
        else:
            check("users", isinstance(user, str), f"A user must be a mapping, not {user!r}")
    for service in _as_list(definition.get("services")):
        if isinstance(service, dict):
            check("services", isinstance(service.get("name"), str), f"A service needs a name: {service!r}")
            if "port" in service:
                check("ports", _valid_port(service["port"]), f"Service port {service['port']!r} is not in 1–65535")
        else:
            check("services", isinstance(service, str), f"A service must be a mapping, not {service!r}")
    for port in _as_list(definition.get("ports")):
        check("ports", _valid_port(port), f"Port {port!r} is not in 1–65535")
    if report.issues:
        return report

    try:
        resolved = resolve(definition, catalog)
    except ResolutionError as error:
        check("inheritance", False, str(error))
        return report

    family = OS_FAMILIES.get(resolved.base_os or "")
    check("base_os", resolved.base_os is not None, "No base_os, in the template or its parents")
    check(
        "base_os",
        resolved.base_os is None or family is not None,
        f"Unknown base_os '{resolved.base_os}' (known: {', '.join(sorted(OS_FAMILIES))})",
    )

    for layer_manager in [definition.get("package_manager")] + list(resolved.packages_by_manager):
        if layer_manager is None:
            continue
        if layer_manager not in PACKAGE_MANAGERS:
            check("package_manager", False, f"Unknown package manager '{layer_manager}'")
            continue
        required_family = PACKAGE_MANAGERS[layer_manager]
        check(
            "package_manager",
            required_family is None or family is None or required_family == family,
            f"Package manager '{layer_manager}' does not fit base_os '{resolved.base_os}'",
        )
    check(
        "package_manager",
        not definition.get("packages") or resolved.package_manager is not None,
        "Packages are listed but no package manager is set",
    )

    for user in _as_list(definition.get("users")):
        user = {"name": user} if isinstance(user, str) else user
        extra = sorted(set(user) - USER_KEYS)
        check("users", not extra, f"Unknown keys for user {user.get('name')!r}: {', '.join(extra)}")
        user_name = str(user.get("name", ""))
        check("users", bool(USER_NAME_RE.match(user_name)), f"Invalid user name {user_name!r}")
        check("users", user_name not in RESERVED_USERS, f"User name {user_name!r} is reserved")

    for service in _as_list(definition.get("services")):
        service = {"name": service} if isinstance(service, str) else service
        extra = sorted(set(service) - SERVICE_KEYS)
        check("services", not extra, f"Unknown keys for service {service.get('name')!r}: {', '.join(extra)}")
        check("services", bool(SERVICE_NAME_RE.match(service["name"])), f"Invalid service name {service['name']!r}")

    instance_defaults = definition.get("instance_defaults") or {}
    extra = sorted(set(instance_defaults) - INSTANCE_DEFAULT_KEYS)
    check("instance_defaults", not extra, f"Unknown instance_defaults keys: {', '.join(extra)}")
    workload = instance_defaults.get("workload")
    check("instance_defaults", workload in (None, *WORKLOADS), f"Unknown workload {workload!r}")
    size = instance_defaults.get("size")
    check("instance_defaults", size in (None, *SIZES), f"Unknown size {size!r}")
    instance_type = instance_defaults.get("instance_type")
    if instance_type is not None and instance_types is not None:
        check("instance_defaults", instance_type in instance_types, f"Unknown instance type {instance_type!r}")
    root = instance_defaults.get("root_volume_gb")
    check(
        "instance_defaults",
        root is None or (isinstance(root, int) and 8 <= root <= 16384),
        "root_volume_gb must be 8–16384",
    )
    max_ttl = instance_defaults.get("max_ttl_hours")
    check(
        "instance_defaults",
        max_ttl is None or (isinstance(max_ttl, int) and not isinstance(max_ttl, bool) and 1 <= max_ttl <= 8760),
        "max_ttl_hours (the longest TTL an extension may set) must be 1–8760",
    )

    idle = definition.get("idle_defaults") or {}
    extra = sorted(set(idle) - IDLE_DEFAULT_KEYS)
    check("idle_defaults", not extra, f"Unknown idle_defaults keys: {', '.join(extra)}")
    check("idle_defaults", idle.get("action") in (None, *IDLE_ACTIONS), f"Unknown idle action {idle.get('action')!r}")
    minutes = idle.get("idle_threshold_minutes")
    check(
        "idle_defaults",
        minutes is None or (isinstance(minutes, int) and minutes > 0),
        "idle_threshold_minutes must be a positive integer",
    )

    for parameter_name, spec in (definition.get("parameters") or {}).items():
        if not isinstance(spec, dict):
            check("parameters", False, f"Parameter {parameter_name!r} must be a mapping")
            continue
        extra = sorted(set(spec) - PARAMETER_KEYS)
        check("parameters", not extra, f"Unknown keys for parameter {parameter_name!r}: {', '.join(extra)}")
        check("parameters", spec.get("type") in PARAMETER_TYPES, f"Parameter {parameter_name!r} has an unknown type")
        if spec.get("type") == "choice":
            choices = spec.get("choices") or []
            check("parameters", bool(choices), f"Parameter {parameter_name!r} needs choices")
            check(
                "parameters",
                "default" not in spec or spec["default"] in choices,
                f"The default of {parameter_name!r} is not one of its choices",
            )
    return report
