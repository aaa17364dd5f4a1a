"""Formatting shared by every console page: money, percentages, durations, state badges."""

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django import template
from django.utils import timezone

register = template.Library()

CENT = Decimal("0.01")

# Each state's badge colour (a CSS class in carrel.css): green runs and costs, amber is on its way, grey rests.
STATE_TONES = {
    "running": "ok",
    "pending": "busy",
    "launching": "busy",
    "starting": "busy",
    "resuming": "busy",
    "stopping": "busy",
    "hibernating": "busy",
    "resizing": "busy",
    "terminating": "busy",
    "stopped": "rest",
    "hibernated": "rest",
    "terminated": "gone",
    "error": "bad",
}


@register.filter
def money(value: Decimal | int | float | str | None) -> str:
    """$1,234.56 (cents, half up); a dash for no value. Amounts under a cent but not zero show as <$0.01."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    if amount and abs(amount) < CENT:
        return "<$0.01" if amount > 0 else "-<$0.01"
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.2f}"


@register.filter
def rate(value: Decimal | None) -> str:
    """An hourly rate with the precision prices have ($0.0416/h)."""
    if value is None:
        return "—"
    amount = Decimal(str(value)).normalize()
    if amount >= 1:
        return f"${amount.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"
    return f"${amount.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP)}"


@register.filter
def percent(value: Decimal | float | None, places: int = 0) -> str:
    """A fraction (0.42) as 42%."""
    if value is None:
        return "—"
    scaled = Decimal(str(value)) * 100
    return f"{scaled.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)}%"


@register.filter
def bar_width(value: Decimal | float | None) -> str:
    """A fraction as a CSS width, clamped to 0–100%."""
    if value is None:
        return "0%"
    scaled = max(Decimal(0), min(Decimal(100), Decimal(str(value)) * 100))
    return f"{scaled.quantize(Decimal('0.1'))}%"


@register.filter
def state_tone(state: str) -> str:
    return STATE_TONES.get(str(state), "rest")


@register.filter
def duration(value: timedelta | int | float | None) -> str:
    """3 d 4 h, 2 h 5 min, 40 s."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds < 0:
        seconds = 0
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


@register.filter
def until(moment: datetime | None) -> str:
    """Time left until `moment` (TTLs): "in 3 h 5 min", or "expired"."""
    if moment is None:
        return "—"
    left = moment - timezone.now()
    if left.total_seconds() <= 0:
        return "expired"
    return f"in {duration(left)}"


@register.inclusion_tag("console/parts/state.html")
def state_badge(state: str) -> dict:
    return {"state": state, "tone": STATE_TONES.get(str(state), "rest")}
