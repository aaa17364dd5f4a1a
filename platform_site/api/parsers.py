"""Request body parsing for the API: JSON objects only, bounded in size and depth.

Every endpoint takes a JSON object (none takes a top-level array), and views read it with
`request.data.get(...)`. So `[]`, `null`, `"x"` or `42` are refused here with VALIDATION_ERROR instead of
failing later with an AttributeError, and pathologically nested documents (`[[[[...]]]]`, which make
the decoder raise RecursionError) with PARSE_ERROR.

This module must not import rest_framework.views (DRF reads DEFAULT_PARSER_CLASSES while defining APIView).
"""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, parsers
from rest_framework.utils.json import strict_constant

MAX_DEPTH = 32


def nesting_depth_exceeds(value, limit: int) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class JSONObjectParser(parsers.JSONParser):
    """DRF's JSON parser, refusing bodies over DATA_UPLOAD_MAX_MEMORY_SIZE, nesting deeper than MAX_DEPTH
    and anything but an object at the top level."""

    max_depth = MAX_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parsers.get_encoding(parser_context)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        try:
            data = json.loads(raw.decode(encoding), parse_constant=strict_constant if self.strict else None)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested more than {self.max_depth} levels deep.") from None
        except ValueError as exc:  # includes UnicodeDecodeError
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if isinstance(data, (dict, list)) and nesting_depth_exceeds(data, self.max_depth):
            raise exceptions.ParseError(f"JSON parse error - nested more than {self.max_depth} levels deep.")
        if not isinstance(data, dict):
            raise exceptions.ValidationError(
                {"non_field_errors": [f"The request body must be a JSON object, not {_json_type(data)}."]}
            )
        return data


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"
