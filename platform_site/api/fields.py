"""Strict serializer fields for request bodies: a JSON value of the wrong type is an error, not a guess.

DRF's fields are lenient by design (a CharField takes 0 and stores "0", a BooleanField takes "yes", a
FloatField takes false as 0.0). An API whose schema says `string` or `boolean` must refuse anything else,
or a client bug silently becomes data. Input serializers declare their fields from this module; the
names match DRF's, so a declaration reads the same.
"""

from rest_framework import serializers


class _StringsOnly:
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class CharField(_StringsOnly, serializers.CharField):
    pass


class EmailField(_StringsOnly, serializers.EmailField):
    pass


class SlugField(_StringsOnly, serializers.SlugField):
    pass


class DateTimeField(serializers.DateTimeField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", format="an ISO 8601 date and time, e.g. 2026-12-31T23:59:00Z")
        return super().to_internal_value(data)


class ChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class BooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class IntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class FloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class DecimalField(serializers.DecimalField):
    """Numbers, or numbers written as strings (money is often sent as "12.50" to keep it exact)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            self.fail("invalid")
        return super().to_internal_value(data)
