"""Loading the shipped catalog and managing organization-private templates."""

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.db import transaction

from accounts.models import Organization, OrgRole, User
from accounts.services import require_org_role
from audit.services import audit_record
from platform_site.errors import Conflict, PermissionDenied, ValidationFailed
from templates import resolution
from templates.models import WorkspaceTemplate
from templates.selectors import definitions_by_reference

CATALOG_DIR = Path(__file__).resolve().parent / "catalog"


@dataclass
class CatalogLoadResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    invalid: dict[str, list[str]] = field(default_factory=dict)


def read_catalog(directory: Path = CATALOG_DIR) -> list[dict]:
    definitions = []
    for path in sorted(directory.glob("*.yaml")):
        definition = yaml.safe_load(path.read_text())
        if not isinstance(definition, dict):
            raise ValueError(f"{path.name}: a template must be a YAML mapping")
        definition.setdefault("slug", resolution.slugify_name(definition.get("name", path.stem)))
        definitions.append(definition)
    return definitions


@transaction.atomic
def template_catalog_load(*, directory: Path = CATALOG_DIR) -> CatalogLoadResult:
    """Upsert the shipped catalog. Invalid templates are reported and not loaded."""
    definitions = read_catalog(directory)
    catalog = definitions_by_reference(definitions)
    result = CatalogLoadResult()
    for definition in definitions:
        report = resolution.validate(definition, catalog)
        if not report.valid:
            result.invalid[definition.get("name", "?")] = [issue.message for issue in report.issues]
            continue
        existing = WorkspaceTemplate.objects.filter(organization__isnull=True, slug=definition["slug"]).first()
        if existing is None:
            WorkspaceTemplate.objects.create(
                name=definition["name"],
                slug=definition["slug"],
                description=definition.get("description", ""),
                definition=definition,
                source=WorkspaceTemplate.Source.CATALOG,
            )
            result.created.append(definition["name"])
        elif existing.definition != definition or existing.name != definition["name"]:
            existing.name = definition["name"]
            existing.description = definition.get("description", "")
            existing.definition = definition
            existing.save()
            result.updated.append(definition["name"])
        else:
            result.unchanged.append(definition["name"])
    return result


def _lookup_for(organization: Organization) -> dict[str, dict]:
    templates = WorkspaceTemplate.objects.filter(organization__isnull=True) | WorkspaceTemplate.objects.filter(
        organization=organization
    )
    return definitions_by_reference([template.definition for template in templates])


@transaction.atomic
def template_create(*, actor: User, organization: Organization, definition: dict) -> WorkspaceTemplate:
    """Organization owners and admins add private templates; they may inherit catalog templates."""
    require_org_role(user=actor, organization=organization, minimum=OrgRole.ADMIN)
    definition = dict(definition)
    definition.setdefault("slug", resolution.slugify_name(str(definition.get("name", ""))))
    lookup = _lookup_for(organization)
    if definition.get("name") in lookup or definition["slug"] in lookup:
        raise Conflict(
            f"A template named '{definition.get('name')}' exists.",
            code="NAME_TAKEN",
            fields={"name": ["A catalog or organization template already has this name or slug."]},
        )
    report = resolution.validate(definition, lookup)
    if not report.valid:
        raise ValidationFailed(
            f"The template '{definition.get('name')}' is not valid.",
            code="TEMPLATE_INVALID",
            details="; ".join(issue.message for issue in report.issues),
            fields={f"definition.{issue.check}": [issue.message] for issue in report.issues},
            remediation="GET /api/v1/templates/validate shows every check.",
        )
    template = WorkspaceTemplate.objects.create(
        organization=organization,
        name=definition["name"],
        slug=definition["slug"],
        description=definition.get("description", ""),
        definition=definition,
        source=WorkspaceTemplate.Source.ORGANIZATION,
        created_by=actor,
    )
    audit_record(actor=actor, action="template.create", target=template, organization=organization)
    return template


@transaction.atomic
def template_delete(*, actor: User, template: WorkspaceTemplate) -> None:
    if template.organization is None:
        raise PermissionDenied("Catalog templates ship with Carrel and cannot be deleted through the API.")
    require_org_role(user=actor, organization=template.organization, minimum=OrgRole.ADMIN)
    children = [
        other.name
        for other in WorkspaceTemplate.objects.filter(organization=template.organization).exclude(pk=template.pk)
        if {template.name, template.slug} & set(other.definition.get("inherits") or [])
    ]
    if children:
        raise Conflict(
            f"Other templates inherit '{template.name}': {', '.join(children)}.",
            code="TEMPLATE_IN_USE",
            remediation="Delete or change the inheriting templates first.",
        )
    audit_record(actor=actor, action="template.delete", target=template, organization=template.organization)
    template.delete()
