"""Tenant scoping in one place.

The organization is the tenant. Every tenant-owned model's queryset implements `visible_to(user)`,
and API views get their base queryset only through `scoped_queryset(model, user)`, so a view
cannot forget to scope: an object outside the caller's tenants is simply absent (404, never 403).
"""

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import models

from platform_site.actors import Caller

M = TypeVar("M", bound=models.Model)


class ScopedQuerySet(models.QuerySet[M]):
    def visible_to(self, user: Caller) -> "ScopedQuerySet[M]":  # pragma: no cover - abstract
        raise NotImplementedError(f"{self.model.__name__} must define visible_to(user)")


def scoped_queryset(model: type[M], user: Caller) -> models.QuerySet[M]:
    if user is None or not user.is_authenticated:
        return model._default_manager.none()
    queryset = model._default_manager.all()
    if not isinstance(queryset, ScopedQuerySet):
        raise TypeError(f"{model.__name__} has no tenant scope; give it a ScopedQuerySet")
    return queryset.visible_to(user)


def visible_or_404(
    model: type[M],
    user: Caller,
    *,
    code: str,
    message: str | None = None,
    refine: Callable[[models.QuerySet[M]], models.QuerySet[M]] | None = None,
    **lookup: Any,
) -> M:
    """The object `lookup` names among those `user` may see, or NotFound with `code`.

    The same answer whether the object does not exist or belongs to another tenant (404, never 403).
    `refine` adds select_related/annotations to the scoped queryset; it cannot widen it."""
    queryset = scoped_queryset(model, user)
    if refine is not None:
        queryset = refine(queryset)
    found = queryset.filter(**lookup).first()
    if found is None:
        from platform_site.errors import NotFound

        wanted = ", ".join(str(value) for value in lookup.values())
        raise NotFound(
            message or f"No {model._meta.verbose_name} '{wanted}' visible to you.",
            code=code,
            details=", ".join(f"{key}={value}" for key, value in lookup.items()),
        )
    return found


def visible_by_id_or_name(
    model: type[M],
    user: Caller,
    reference: str,
    *,
    code: str,
    refine: Callable[[models.QuerySet[M]], models.QuerySet[M]] | None = None,
    name_field: str = "name",
) -> M:
    """By id first, then by name (ids resolve before names), among the objects `user` may see."""
    queryset = scoped_queryset(model, user)
    if refine is not None:
        queryset = refine(queryset)
    found = queryset.filter(pk=reference).first() or queryset.filter(**{name_field: reference}).first()
    if found is None:
        from platform_site.errors import NotFound

        raise NotFound(f"No {model._meta.verbose_name} '{reference}' visible to you.", code=code)
    return found
