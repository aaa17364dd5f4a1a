"""The project page's budget chart, drawn on the server as inline SVG (no JavaScript library).

Cumulative spend per day of the budget period (a line over an area), the allocation as a horizontal line, and the
projection from now to the period's end at the current burn rate (dashed). The figures come from the reports the
API serves (budgets.reports, budgets.history); this module only places them on a canvas. Coordinates are plain
numbers the template writes into `<path d>` and `<line>` attributes; every label is text the template escapes."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from console.templatetags.console import money as as_money

WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 72, 20, 20, 44
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
Y_TICKS = 4
ZERO = Decimal(0)


@dataclass
class ChartDay:
    day: date
    cost: Decimal
    cumulative: Decimal


@dataclass
class BudgetChart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_x: int = WIDTH - RIGHT
    top: int = TOP
    bottom_y: int = HEIGHT - BOTTOM
    area: str = ""
    line: str = ""
    projection: tuple[float, float, float, float] | None = None
    allocation_y: float | None = None
    allocation_label: str = ""
    today_x: float | None = None
    y_ticks: list[dict] = field(default_factory=list)
    x_ticks: list[dict] = field(default_factory=list)
    days: list[ChartDay] = field(default_factory=list)
    start: date | None = None
    end: date | None = None
    spent: Decimal = ZERO
    projected: Decimal | None = None
    allocation: Decimal = ZERO
    burn: Decimal = ZERO
    description: str = ""


def _nice_ceiling(value: Decimal) -> Decimal:
    """A round top for the y axis: 1, 2, 2.5 or 5 times a power of ten, at or above `value`."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        candidate = step.scaleb(exponent)
        if candidate >= value:
            return candidate
    return Decimal(10).scaleb(exponent)  # pragma: no cover - the loop ends at 10


def _fmt(number: float) -> str:
    return f"{number:.1f}"


def budget_chart(
    *,
    daily: list[tuple[date, Decimal]],
    carried: Decimal,
    start: date,
    end: date,
    now: datetime,
    today: date,
    allocation: Decimal,
    spent: Decimal,
    burn: Decimal,
) -> BudgetChart:
    """`daily`: each day's cost from `start` through `today` (the organization's days), `carried`: what was spent
    in the period before the first listed day (a period longer than the history asked for), `end`: the period's
    last day, `spent`: the period's spend now (the report's figure: the line ends there), `burn`: per day."""
    total_days = max((end - start).days + 1, 1)
    chart = BudgetChart(start=start, end=end, allocation=allocation, spent=spent, burn=burn)

    # Cumulative spend by the end of each day; today's point sits at the current time of day.
    running = carried
    for day, cost in daily:
        running += cost
        chart.days.append(ChartDay(day=day, cost=cost, cumulative=running))
    elapsed_today = Decimal(now.hour * 3600 + now.minute * 60 + now.second) / Decimal(86400)
    now_offset = Decimal((today - start).days) + elapsed_today
    now_offset = min(max(now_offset, ZERO), Decimal(total_days))
    days_left = Decimal(total_days) - now_offset
    projected = spent + burn * days_left
    chart.projected = projected

    top_value = _nice_ceiling(max(allocation, projected, spent, running, Decimal("0.01")) * Decimal("1.08"))

    def x_of(offset: Decimal) -> float:
        return LEFT + float(offset) / total_days * PLOT_W

    def y_of(value: Decimal) -> float:
        return TOP + PLOT_H - float(value / top_value) * PLOT_H

    baseline = y_of(ZERO)
    points = [(x_of(ZERO), y_of(carried))]
    for index, item in enumerate(chart.days):
        offset = now_offset if item.day == today else Decimal((item.day - start).days + 1)
        if index == len(chart.days) - 1 and item.day == today:
            # The report's figure includes what is still open; the line ends at it.
            points.append((x_of(offset), y_of(max(spent, item.cumulative))))
        else:
            points.append((x_of(offset), y_of(item.cumulative)))
    chart.line = "M" + " L".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points)
    chart.area = f"{chart.line} L{_fmt(points[-1][0])},{_fmt(baseline)} L{_fmt(points[0][0])},{_fmt(baseline)} Z"
    last_x, last_y = points[-1]
    if days_left > 0:
        chart.projection = (
            round(last_x, 1),
            round(last_y, 1),
            round(x_of(Decimal(total_days)), 1),
            round(y_of(projected), 1),
        )
    if allocation > 0:
        chart.allocation_y = round(y_of(allocation), 1)
        chart.allocation_label = f"Allocation {as_money(allocation)}"
    if start <= today <= end:
        chart.today_x = round(x_of(now_offset), 1)

    step = top_value / Y_TICKS
    for index in range(Y_TICKS + 1):
        value = step * index
        chart.y_ticks.append({"y": round(y_of(value), 1), "label": _short_money(value)})
    # Days within a year's span; months and years beyond.
    label_format = "%b %-d" if total_days <= 300 else "%b %Y"
    for offset in _x_offsets(total_days):
        day = end if offset >= total_days else start + timedelta(days=offset)
        chart.x_ticks.append(
            {
                "x": round(x_of(Decimal(offset)), 1),
                "label": day.strftime(label_format),
                "anchor": _anchor(offset, total_days),
            }
        )
    chart.description = (
        f"Cumulative spend from {start:%b %-d, %Y} to {today:%b %-d, %Y}: {as_money(spent)}"
        + (f" of an allocation of {as_money(allocation)}" if allocation > 0 else "")
        + f". At the current burn rate of {as_money(burn)} a day, the spend would reach {as_money(projected)} by "
        f"the period's end on {end:%b %-d, %Y}."
    )
    return chart


def _x_offsets(total_days: int) -> list[int]:
    """Day offsets for the x labels: the first day, a few between, and the last day's end."""
    if total_days <= 1:
        return [0, total_days]
    count = 4 if total_days >= 8 else total_days
    step = total_days / count
    offsets = sorted({round(step * index) for index in range(count + 1)})
    return offsets


def _anchor(offset: int, total_days: int) -> str:
    if offset == 0:
        return "start"
    if offset >= total_days:
        return "end"
    return "middle"


def _short_money(value: Decimal) -> str:
    """Axis labels: $0, $25, $2.5k, $1.2M."""
    if value >= 1_000_000:
        return f"${(value / 1_000_000).quantize(Decimal('0.1')).normalize():f}M"
    if value >= 10_000:
        return f"${(value / 1000).quantize(Decimal(1), rounding=ROUND_CEILING):f}k"
    if value >= 1000:
        return f"${(value / 1000).quantize(Decimal('0.1')).normalize():f}k"
    if value == value.to_integral_value():
        return f"${value.quantize(Decimal(1)):f}"
    return f"${value.quantize(Decimal('0.01')):f}"
