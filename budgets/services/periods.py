"""Budget periods: the span of time an allocation's amount (and its thresholds) apply to."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from budgets.models import BudgetPool


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def month_of(moment: datetime, zone: ZoneInfo) -> Period:
    """The calendar month holding `moment` in `zone`, from its first local midnight to the next month's."""
    local = moment.astimezone(zone)
    first = local.date().replace(day=1)
    following = (
        first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)
    )
    return Period(
        start=datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC),
        end=datetime.combine(following, time(0), tzinfo=zone).astimezone(UTC),
    )


def current_period(pool: BudgetPool, *, zone: ZoneInfo, now: datetime) -> Period:
    """A "project" pool has one period, its start to end date; a "monthly" pool's amounts are per calendar
    month in the organization's time zone, within the pool's own dates. Periods are whole days there: they
    begin at the local midnight of the start date and end at the midnight after the end date (or at the end
    date itself when it is a midnight), so no ledger row (never longer than a local day) straddles one. The
    one definition of a budget period: enforcement, the pool figures and the project reports all take it
    from here."""
    start = _midnight_at_or_before(pool.start_date, zone)
    end = _midnight_at_or_after(pool.end_date, zone)
    if pool.period == BudgetPool.Period.MONTHLY:
        month = month_of(now, zone)
        start, end = max(month.start, start), min(month.end, end)
        return Period(start=start, end=max(start, end))
    return Period(start=start, end=end)


def _midnight_at_or_before(moment: datetime, zone: ZoneInfo) -> datetime:
    return datetime.combine(moment.astimezone(zone).date(), time(0), tzinfo=zone).astimezone(UTC)


def _midnight_at_or_after(moment: datetime, zone: ZoneInfo) -> datetime:
    midnight = _midnight_at_or_before(moment, zone)
    if midnight == moment:
        return midnight
    following = moment.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(following, time(0), tzinfo=zone).astimezone(UTC)
