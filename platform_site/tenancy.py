"""Tenant scoping in one place.

The organization is the tenant. Every tenant-owned model's queryset implements `visible_to(user)`,
and API views get their base queryset only through `scoped_queryset(model, user)`, so a view
cannot forget to scope: an object outside the caller's tenants is simply absent (404, never 403).
"""

from django.db import models


class ScopedQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ScopedQuerySet":  # pragma: no cover - abstract
        raise NotImplementedError(f"{self.model.__name__} must define visible_to(user)")


def scoped_queryset(model: type[models.Model], user) -> models.QuerySet:
    if user is None or not user.is_authenticated:
        return model._default_manager.none()
    queryset = model._default_manager.all()
    if not isinstance(queryset, ScopedQuerySet):
        raise TypeError(f"{model.__name__} has no tenant scope; give it a ScopedQuerySet")
    return queryset.visible_to(user)
