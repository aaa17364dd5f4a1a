"""Lists answer with a bare JSON array, as the Prism clients expect, and page through headers:
`?page=2&page_size=50`, `X-Total-Count`, and an RFC 8288 `Link` header with next/prev.
"""

from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from platform_site.errors import NotFound, ValidationFailed


class HeaderPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        self._require_valid_parameters(request)
        try:
            return super().paginate_queryset(queryset, request, view)
        except exceptions.NotFound:
            raise NotFound("No such page.", code="PAGE_NOT_FOUND") from None

    def _require_valid_parameters(self, request) -> None:
        """A page or page size that is not a whole number in range is an error, not a silent default."""
        errors = {}
        for name, highest in ((self.page_query_param, None), (self.page_size_query_param, self.max_page_size)):
            values = request.query_params.getlist(name)
            if not values:
                continue
            value = values[0]
            if len(values) > 1:
                errors[name] = ["Give it once."]
            elif not (value.isascii() and value.isdigit()) or int(value) < 1 or (highest and int(value) > highest):
                errors[name] = [f"A whole number from 1{f' to {highest}' if highest else ''}."]
        if errors:
            raise ValidationFailed(fields=errors)

    def get_paginated_response(self, data):
        links = []
        if next_url := self.get_next_link():
            links.append(f'<{next_url}>; rel="next"')
        if previous_url := self.get_previous_link():
            links.append(f'<{previous_url}>; rel="prev"')
        headers = {"X-Total-Count": str(self.page.paginator.count)}
        if links:
            headers["Link"] = ", ".join(links)
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema):
        return schema
