"""Free text that people type and other people read: names, descriptions, messages.

Names end up in e-mail headers, audit trails, shell prompts and HTML. A control character (a newline in
a project name makes every invitation e-mail about it unsendable: Django refuses header injection) or a
bidirectional override (text that reads differently from what it is, the trick behind "Trojan Source"
phishing) has no business in any of them.
"""

import unicodedata

from platform_site.errors import ValidationFailed

# Unicode's bidirectional embeddings, overrides and isolates, plus the invisible marks that reorder text.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e"  # LRE RLE PDF LRO RLO
    "\u2066\u2067\u2068\u2069"  # LRI RLI FSI PDI
    "\u200e\u200f\u061c"  # LRM RLM ALM
)


def unsafe_characters(value: str, *, allow_newlines: bool = False) -> list[str]:
    """The characters of `value` that must not appear in it, as U+XXXX strings (empty when it is clean)."""
    found = []
    for char in value:
        if allow_newlines and char in "\n\t":
            continue
        category = unicodedata.category(char)
        # Cc: control characters (C0, DEL, C1); Cs: lone surrogates; Zl/Zp: line and paragraph separators.
        if category in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS:
            found.append(f"U+{ord(char):04X}")
    return list(dict.fromkeys(found))


def clean_text(value: str, *, field: str, allow_newlines: bool = False) -> str:
    """`value` stripped of surrounding spaces, or VALIDATION_ERROR naming the offending characters."""
    bad = unsafe_characters(value, allow_newlines=allow_newlines)
    if bad:
        raise ValidationFailed(
            f"The {field} contains characters that are not allowed.",
            details=f"Control or bidirectional-override characters: {', '.join(bad)}.",
            remediation="Remove control characters, line breaks and bidirectional overrides.",
            fields={field: [f"Must not contain control or bidirectional-override characters ({', '.join(bad)})."]},
        )
    return value.strip()


def clean_name(value: str, *, field: str = "name") -> str:
    """A one-line name: no control characters, no bidi overrides, not blank."""
    cleaned = clean_text(value, field=field)
    if not cleaned:
        raise ValidationFailed(fields={field: ["Must not be blank."]})
    return cleaned
