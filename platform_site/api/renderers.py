"""JSON whose money is exact: a Decimal is written as the number it is, never passed through float."""

from typing import Any

import simplejson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class ExactJSONRenderer(JSONRenderer):
    """DRF's JSON renderer, with `Decimal("12.3400")` rendered as `12.3400` (DRF's encoder would make it a
    float, which can change the digits)."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        renderer_context = renderer_context or {}
        indent = self.get_indent(accepted_media_type, renderer_context)
        separators = (",", ": ") if indent else (",", ":") if self.compact else (", ", ": ")
        text = simplejson.dumps(
            data,
            default=JSONEncoder().default,
            use_decimal=True,
            ensure_ascii=self.ensure_ascii,
            allow_nan=not self.strict,
            indent=indent,
            separators=separators,
        )
        # As DRF does: U+2028/2029 are valid JSON but not valid JavaScript.
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()
