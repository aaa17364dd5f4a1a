"""The API's JSON: exact money, and the same values from the fast (orjson) and the general (simplejson) writer."""

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import simplejson
from django.utils.translation import gettext_lazy

from platform_site.api.renderers import ExactJSONRenderer

DOCUMENT = {
    "money": Decimal("12.3400"),
    "tiny": Decimal("0.00000001"),
    "zero": Decimal("0E-8"),
    "negative": Decimal("-0.50"),
    "when": datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),
    "local": datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=-5))),
    "day": date(2026, 3, 1),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "lazy": gettext_lazy("Not found."),
    "text": "Zürich — naïve ✓",
    "nested": [{"n": 1, "f": 0.25, "b": True, "none": None}, ("tuple", 2)],
    7: "an int key",
}


def render(data, media_type="application/json") -> bytes:
    return ExactJSONRenderer().render(data, accepted_media_type=media_type, renderer_context={})


def test_it_writes_decimals_as_the_exact_numbers_they_are():
    body = render({"money": Decimal("12.3400"), "tiny": Decimal("0.00000001"), "big": Decimal("123456789012.345678")})
    assert body == b'{"money":12.3400,"tiny":1E-8,"big":123456789012.345678}'
    assert simplejson.loads(body, use_decimal=True)["money"] == Decimal("12.3400")


def test_it_writes_the_same_values_as_the_general_writer():
    fast = simplejson.loads(render(DOCUMENT), use_decimal=True)
    slow = simplejson.loads(render(DOCUMENT, "application/json; indent=4"), use_decimal=True)
    assert fast == slow
    assert fast["money"] == Decimal("12.3400") and str(fast["money"]) == "12.3400"
    assert fast["when"] == "2026-03-01T12:30:05.123456Z"  # DRF's form for UTC
    assert fast["local"] == "2026-03-01T12:30:00-05:00"
    assert fast["lazy"] == "Not found." and fast["7"] == "an int key"


def test_it_writes_utf8_and_escapes_the_javascript_line_separators():
    body = render({"text": "Zürich", "separators": "a\u2028b\u2029c"})
    assert "Zürich".encode() in body
    assert b"\\u2028" in body and b"\\u2029" in body and b"\xe2\x80\xa8" not in body


def test_it_falls_back_for_integers_beyond_64_bits():
    assert render({"n": 2**70}) == b'{"n":1180591620717411303424}'


def test_it_renders_nothing_for_none():
    assert render(None) == b""
