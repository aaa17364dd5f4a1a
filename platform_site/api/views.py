"""Base classes for API views: every queryset starts scoped to the caller's tenants."""

from rest_framework import generics

from platform_site.errors import NotFound
from platform_site.tenancy import scoped_queryset


class ScopedAPIView(generics.GenericAPIView):
    """`model` is scoped by `visible_to(request.user)` before anything else; a miss is a 404 with
    `not_found_code`, whether the object does not exist or belongs to another tenant."""

    model = None
    not_found_code = "NOT_FOUND"
    not_found_message = "Not found."

    def get_queryset(self):
        return self.refine_queryset(scoped_queryset(self.model, self.request.user))

    def refine_queryset(self, queryset):
        """Add select_related/prefetch/filters here; scoping has already happened."""
        return queryset

    def get_object(self):
        lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
        value = self.kwargs[lookup_url_kwarg]
        obj = self.filter_queryset(self.get_queryset()).filter(**{self.lookup_field: value}).first()
        if obj is None:
            raise NotFound(self.not_found_message, code=self.not_found_code, details=f"{lookup_url_kwarg}={value}")
        self.check_object_permissions(self.request, obj)
        return obj
