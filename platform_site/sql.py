"""SQL shapes the ORM does not write by itself."""

from collections.abc import Sequence
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connections
from django.db.models import BooleanField, F, Func, IntegerField, Model, Q, QuerySet


def among(field: str, values: QuerySet, *, using: str = "default") -> Q:
    """`field` is one of the values of a one-column subquery: on PostgreSQL `field = ANY(ARRAY(subquery))`.

    The subquery runs once, first, and the outer query looks each value up in `field`'s index. The ORM's
    `field IN (subquery)` lets the planner hash-join every row of the outer table against the subquery instead,
    which it prefers on tables of a few thousand rows, and costs a probe per row where an index range would do.
    Elsewhere (SQLite) the plain IN."""
    if connections[using].vendor != "postgresql":
        return Q(**{f"{field}__in": values})
    if not values.query.is_sliced:
        values = values.order_by()  # a set: sorting it is wasted work (a slice's order picks its rows)
    return Q(_EqualsAny(F(field), ArraySubquery(values)))


class _EqualsAny(Func):
    """`column = ANY(array)`: a condition PostgreSQL serves from the column's index."""

    arg_joiner = " = ANY("
    template = "(%(expressions)s))"
    output_field = BooleanField()


def count_disjoint(*querysets: QuerySet, using: str = "default") -> int:
    """The number of rows of querysets that share none: one query summing a `COUNT(*)` of each, so that each
    part is counted from its own index where their OR would scan the table."""
    if connections[using].vendor != "postgresql":
        return sum(queryset.count() for queryset in querysets)
    parts, params = [], []
    for queryset in querysets:
        counted = queryset.order_by().annotate(_n=Func(template="COUNT(*)", output_field=IntegerField())).values("_n")
        sql, part_params = counted.query.get_compiler(using=using).as_sql()
        parts.append(f"({sql})")
        params.extend(part_params)
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT " + " + ".join(parts), params)
        return int(cursor.fetchone()[0])


class RowLoader:
    """A model's instances from the columns of a hand-written query, converted as the ORM converts them
    (`from_db_value`: JSON, for one). For the few queries every request makes, where compiling a queryset costs
    more than running it: `loader.columns` is the select list (table alias `alias`), `loader.load(row)` the
    instance from that many values. PostgreSQL only: SQLite's backend adds converters of its own."""

    def __init__(self, model: type[Model], alias: str, fields: Sequence[str] | None = None) -> None:
        """`fields`: the attribute names to read (the others are deferred, as with `.only()`); all when None."""
        concrete = model._meta.concrete_fields
        fields = [field for field in concrete if fields is None or field.attname in fields or field.name in fields]
        self.model = model
        self.width = len(fields)
        self.columns = ", ".join(f'{alias}."{field.column}"' for field in fields)
        self._attnames = [field.attname for field in fields]
        self._converters = [
            (index, field.from_db_value) for index, field in enumerate(fields) if hasattr(field, "from_db_value")
        ]

    def load(self, values: Sequence[Any], *, using: str = "default") -> Any:
        values = list(values)
        for index, convert in self._converters:
            values[index] = convert(values[index], None, connections[using])
        return self.model.from_db(using, self._attnames, values)
