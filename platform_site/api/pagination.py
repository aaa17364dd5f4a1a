"""Lists answer with a bare JSON array, as the Prism clients expect, and page through headers:
`?page=2&page_size=50`, `X-Total-Count`, and an RFC 8288 `Link` header with next/prev.

A list view may opt in to keyset (cursor) paging by naming its order in `keyset_ordering`, e.g.
`("-created_at", "id")`: a total order over non-null fields of the model, the last one unique. Then
- `?cursor=` (opaque, from a `Link` header) answers the page after (or before) a row with a range scan that
  starts at that row: every page costs what the first does, however deep;
- `?page=N` keeps working; a page in the back half of the list is read from the end (the order reversed), and
  the rows before a page are skipped in a subquery over the order's keys alone (no joins or annotations), so
  the last page is as cheap as the first and a middle one close to it;
- `Link` next/prev carry cursors, so a client that follows links never pays for an offset; `last` (while there
  is a next page) is the last page's number;
- `X-Total-Count` stays exact (one `COUNT(*)` of the scoped, filtered queryset: an index-only scan where an
  index covers the filters). A view may define `count_rows(queryset) -> int` to count more cheaply, and
  `page_rows(queryset) -> queryset` for what a page reads (e.g. `.values()` with joins and annotations): it
  applies to the page's query only, so the count is of the bare scoped, filtered queryset.
Views without `keyset_ordering` behave exactly as before.
"""

import base64
import binascii
import json
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator as DjangoPaginator
from django.db.models import Q, QuerySet
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from platform_site.errors import NotFound, ValidationFailed
from platform_site.sql import among

FORWARD, BACKWARD = "n", "p"


class _FirstPageCountingPaginator(DjangoPaginator):
    """Django's paginator, minus the COUNT of a list that fits on its first page: fewer rows than a page is the
    whole list (most lists of projects, organizations or tokens). A full first page is counted as before."""

    def page(self, number):
        if str(number) != "1":
            return super().page(number)
        rows = list(self.object_list[: self.per_page])
        if len(rows) < self.per_page:
            self.__dict__["count"] = len(rows)  # the cached property, known without a query
        self.validate_number(1)
        return self._get_page(rows, 1, self)


class HeaderPagination(PageNumberPagination):
    django_paginator_class = _FirstPageCountingPaginator
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self._require_valid_parameters(request, keyset=_keyset_ordering(view) is not None)
        ordering = _keyset_ordering(view)
        if ordering is not None:
            return self._paginate_by_keyset(queryset, request, view, ordering)
        self._keyset = None
        try:
            return super().paginate_queryset(queryset, request, view)
        except exceptions.NotFound:
            raise NotFound("No such page.", code="PAGE_NOT_FOUND") from None

    def _require_valid_parameters(self, request, *, keyset: bool) -> None:
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
        if keyset:
            cursors = request.query_params.getlist(self.cursor_query_param)
            if len(cursors) > 1:
                errors[self.cursor_query_param] = ["Give it once."]
            elif cursors and self.page_query_param in request.query_params:
                errors[self.cursor_query_param] = [f"Give either {self.cursor_query_param} or page, not both."]
        if errors:
            raise ValidationFailed(fields=errors)

    # --- Keyset paging -------------------------------------------------------------------------------------

    def _paginate_by_keyset(self, queryset: QuerySet, request, view, ordering: tuple[str, ...]) -> list:
        self.request = request
        self._keyset = _Keyset(queryset.model, ordering)
        size = self.get_page_size(request) or self.page_size
        count_rows = getattr(view, "count_rows", None)
        self._count = count_rows(queryset) if count_rows else queryset.count()
        self._next = self._prev = None
        page_rows = getattr(view, "page_rows", None) or (lambda rows: rows)
        raw = request.query_params.get(self.cursor_query_param)
        if raw is not None:
            direction, position = self._keyset.decode(raw)
            return self._cursor_page(page_rows(queryset), direction, position, size)
        number = int(request.query_params.get(self.page_query_param) or 1)
        offset = (number - 1) * size
        if offset >= self._count and number > 1:
            raise NotFound("No such page.", code="PAGE_NOT_FOUND")
        limit = min(size, self._count - offset)
        from_end = self._count - offset - limit
        # The back half is read from the end, so the last page costs what the first does.
        order, skip = (self._keyset.forward, offset) if offset <= from_end else (self._keyset.backward, from_end)
        if skip:
            # Skip over the order's keys alone (a subquery), then read the page's rows by primary key: what
            # page_rows adds (joins, subqueries) is computed for the page's rows, not for every row skipped.
            keys = queryset.order_by(*order).values("pk")[skip : skip + limit]
            # The keys are already scoped: the outer query repeats none of the scope's joins, and reads the page's
            # rows by primary key (platform_site.sql.among).
            outer = queryset if queryset.query.annotations else queryset.model._base_manager.all()
            rows = list(page_rows(outer.filter(among("pk", keys, using=queryset.db))).order_by(*order))
        else:
            rows = list(page_rows(queryset).order_by(*order)[:limit])
        if order is self._keyset.backward:
            rows.reverse()
        if rows and offset + len(rows) < self._count:
            self._next = self._cursor_link(FORWARD, rows[-1])
        if rows and offset > 0:
            self._prev = self._cursor_link(BACKWARD, rows[0])
        return rows

    def _cursor_page(self, queryset: QuerySet, direction: str, position: list, size: int) -> list:
        keyset = self._keyset
        assert keyset is not None
        if direction == FORWARD:
            rows = list(queryset.filter(keyset.after(position)).order_by(*keyset.forward)[: size + 1])
            more, rows = len(rows) > size, rows[:size]
            if rows:
                self._prev = self._cursor_link(BACKWARD, rows[0])
                if more:
                    self._next = self._cursor_link(FORWARD, rows[-1])
        else:
            rows = list(queryset.filter(keyset.before(position)).order_by(*keyset.backward)[: size + 1])
            more, rows = len(rows) > size, rows[:size][::-1]
            if rows:
                self._next = self._cursor_link(FORWARD, rows[-1])
                if more:
                    self._prev = self._cursor_link(BACKWARD, rows[0])
        return rows

    def _cursor_link(self, direction: str, row: Any) -> str:
        assert self._keyset is not None
        url = remove_query_param(self.request.build_absolute_uri(), self.page_query_param)
        return replace_query_param(url, self.cursor_query_param, self._keyset.encode(direction, row))

    def _last_link(self) -> str:
        """The last page by number: read from the end of the order, it costs what the first page does."""
        size = self.get_page_size(self.request) or self.page_size
        url = remove_query_param(self.request.build_absolute_uri(), self.cursor_query_param)
        return replace_query_param(url, self.page_query_param, max(1, -(-self._count // size)))

    # --- Response --------------------------------------------------------------------------------------------

    def get_paginated_response(self, data):
        if self._keyset is not None:
            count, next_url, previous_url = self._count, self._next, self._prev
            last_url = self._last_link() if next_url else None
        else:
            count, next_url, previous_url = self.page.paginator.count, self.get_next_link(), self.get_previous_link()
            last_url = None
        links = []
        if next_url:
            links.append(f'<{next_url}>; rel="next"')
        if previous_url:
            links.append(f'<{previous_url}>; rel="prev"')
        if last_url:
            links.append(f'<{last_url}>; rel="last"')
        headers = {"X-Total-Count": str(count)}
        if links:
            headers["Link"] = ", ".join(links)
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        if _keyset_ordering(view) is not None:
            parameters.append(
                {
                    "name": self.cursor_query_param,
                    "required": False,
                    "in": "query",
                    "description": "An opaque position from a Link header (rel next or prev); instead of page.",
                    "schema": {"type": "string"},
                }
            )
        return parameters


def _keyset_ordering(view) -> tuple[str, ...] | None:
    ordering = getattr(view, "keyset_ordering", None)
    return tuple(ordering) if ordering else None


class _Keyset:
    """A total order over model fields and the positions (cursors) in it."""

    def __init__(self, model, ordering: tuple[str, ...]):
        self.names = [name.lstrip("-") for name in ordering]
        self.descending = [name.startswith("-") for name in ordering]
        self.fields = [model._meta.get_field(name) for name in self.names]
        self.forward = ordering
        self.backward = tuple(
            name if descending else f"-{name}" for name, descending in zip(self.names, self.descending, strict=True)
        )

    def encode(self, direction: str, row: Any) -> str:
        values = [row[name] if isinstance(row, dict) else getattr(row, name) for name in self.names]
        position = [value.isoformat() if hasattr(value, "isoformat") else str(value) for value in values]
        raw = json.dumps([direction, position], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> tuple[str, list]:
        try:
            direction, position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if direction not in (FORWARD, BACKWARD) or not isinstance(position, list):
                raise ValueError(cursor)
            values = [field.to_python(value) for field, value in zip(self.fields, position, strict=True)]
            if any(value is None for value in values):
                raise ValueError(cursor)
            return direction, values
        except (ValueError, TypeError, binascii.Error, DjangoValidationError):
            raise ValidationFailed(fields={"cursor": ["Not a cursor from this list's Link header."]}) from None

    def after(self, position: list) -> Q:
        return self._beyond(position, forward=True)

    def before(self, position: list) -> Q:
        return self._beyond(position, forward=False)

    def _beyond(self, position: list, *, forward: bool) -> Q:
        """Rows strictly after (or before) `position` in the order: (a, b) after (x, y) is a beyond x, or a = x
        and b beyond y. The first field's bound is repeated on its own (`a <= x` for a descending `a`), so an
        index on the order serves it as a range scan that starts at the position."""
        condition = Q()
        equal = Q()
        for name, descending, value in zip(self.names, self.descending, position, strict=True):
            lookup = "lt" if descending == forward else "gt"
            condition |= equal & Q(**{f"{name}__{lookup}": value})
            equal &= Q(**{name: value})
        first = "lte" if self.descending[0] == forward else "gte"
        return Q(**{f"{self.names[0]}__{first}": position[0]}) & condition
