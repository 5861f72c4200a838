"""Month arithmetic and calendar-aligned ranges."""

import calendar
from datetime import date
from typing import Iterator

from .core import DateRange


def days_in_month(year: int, month: int) -> int:
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    return calendar.monthrange(year, month)[1]


def add_months(day: date, months: int) -> date:
    """Move *day* by *months* calendar months (negative goes back).

    The day of the month is clamped to the length of the target month:
    January 31 plus one month is February 28 (or 29).
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise OverflowError("date out of range")
    return date(year, month, min(day.day, days_in_month(year, month)))


def month_range(year: int, month: int) -> DateRange:
    """The whole of the given month."""
    first = date(year, month, 1)
    return DateRange(first, add_months(first, 1))


def year_range(year: int) -> DateRange:
    """The whole of the given year."""
    return DateRange(date(year, 1, 1), date(year + 1, 1, 1))


def iter_months(r: DateRange) -> Iterator[DateRange]:
    """Split *r* at month boundaries.

    >>> [str(m) for m in iter_months(DateRange(date(2024, 1, 20), date(2024, 3, 5)))]
    ['2024-01-20..2024-02-01', '2024-02-01..2024-03-01', '2024-03-01..2024-03-05']
    """
    cursor = r.start
    while cursor < r.end:
        boundary = add_months(cursor.replace(day=1), 1)
        end = min(boundary, r.end)
        yield DateRange(cursor, end)
        cursor = end
