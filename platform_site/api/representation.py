"""A read-only serializer's output written without building the serializer.

DRF copies every declared field of a serializer (and of each nested one) for each instance it builds; for a
response read on every page load that copying costs more than formatting the values. `represent` walks the
serializer class's declared fields once per value instead: the same fields format each value as they would
(DecimalField's places, DateTimeField's time zone), so the output is the serializer's, key by key."""

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


def represent(serializer_class: type[serializers.Serializer], instance: Any) -> dict:
    """`serializer_class(instance).data`, for shapes whose fields read the key or attribute of their own name (no
    `source`, no SerializerMethodField)."""
    return _fields(serializer_class._declared_fields, instance)


def _fields(fields: Mapping[str, serializers.Field], instance: Any) -> dict:
    shown: dict[str, Any] = {}
    for name, field in fields.items():
        if field.source not in (None, name) or isinstance(field, serializers.SerializerMethodField):
            raise TypeError(f"{name}: represent() reads fields by their own name only")
        value = instance[name] if isinstance(instance, Mapping) else getattr(instance, name)
        if value is None:
            shown[name] = None
        elif isinstance(field, serializers.ListSerializer):
            shown[name] = [_fields(field.child._declared_fields, item) for item in value]
        elif isinstance(field, serializers.Serializer):
            shown[name] = _fields(field._declared_fields, value)
        else:
            shown[name] = field.to_representation(value)
    return shown
