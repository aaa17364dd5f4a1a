from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from accounts.models import User
from templates import resolution
from templates.models import WorkspaceTemplate


def definitions_by_reference(definitions: Iterable[dict[str, Any]]) -> dict[str, dict]:
    """Map both name and slug of each definition to it: `inherits` may use either."""
    catalog: dict[str, dict] = {}
    for definition in definitions:
        catalog[definition["name"]] = definition
        if definition.get("slug"):
            catalog[definition["slug"]] = definition
    return catalog


@dataclass
class TemplateView:
    template: WorkspaceTemplate
    report: resolution.ValidationReport
    resolved: resolution.ResolvedTemplate | None


def templates_for(*, user: User) -> list[TemplateView]:
    """Every template the user may use, resolved and validated, from one query.

    A private template resolves against the catalog plus its own organization's templates.
    """
    templates = list(WorkspaceTemplate.objects.visible_to(user).order_by("organization_id", "name"))
    catalog = [t.definition for t in templates if t.organization_id is None]
    by_org: dict[str | None, dict[str, dict]] = {None: definitions_by_reference(catalog)}
    views = []
    for template in templates:
        if template.organization_id not in by_org:
            own = [t.definition for t in templates if t.organization_id == template.organization_id]
            by_org[template.organization_id] = definitions_by_reference([*catalog, *own])
        lookup = by_org[template.organization_id]
        report = resolution.validate(template.definition, lookup)
        try:
            resolved = resolution.resolve(template.definition, lookup)
        except resolution.ResolutionError:
            resolved = None
        views.append(TemplateView(template=template, report=report, resolved=resolved))
    return views


def template_for(*, user: User, reference: str) -> TemplateView | None:
    """A template by name or slug; the organization's own template wins over a catalog one."""
    matches = [view for view in templates_for(user=user) if reference in (view.template.name, view.template.slug)]
    matches.sort(key=lambda view: view.template.organization_id is None)
    return matches[0] if matches else None
