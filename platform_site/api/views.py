"""Base classes for API views: every queryset starts scoped to the caller's tenants."""

from rest_framework import generics

from platform_site.tenancy import scoped_queryset, visible_or_404


class ScopedAPIView(generics.GenericAPIView):
    """`model` is scoped by `visible_to(request.user)` before anything else; a miss is a 404 with
    `not_found_code`, whether the object does not exist or belongs to another tenant."""

    model = None
    not_found_code = "NOT_FOUND"
    not_found_message = "Not found."

    def refine_queryset(self, queryset):
        """Add select_related/prefetch/filters here; scoping has already happened."""
        return queryset

    def get_queryset(self):
        # Final: views refine the scoped queryset (refine_queryset), they never replace it.
        return self.refine_queryset(scoped_queryset(self.model, self.request.user))

    def get_object(self):
        lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
        value = self.kwargs[lookup_url_kwarg]
        obj = visible_or_404(
            self.model,
            self.request.user,
            code=self.not_found_code,
            message=self.not_found_message,
            refine=lambda queryset: self.filter_queryset(self.refine_queryset(queryset)),
            **{self.lookup_field: value},
        )
        self.check_object_permissions(self.request, obj)
        return obj

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} overrides get_queryset; refine the scoped queryset in refine_queryset")
