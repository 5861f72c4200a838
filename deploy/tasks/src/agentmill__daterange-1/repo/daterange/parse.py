"""Read dates and ranges from strings.

Accepted range forms:

=========================  =============================================
``2024-01-01..2024-01-15``  half-open, as printed by ``str(DateRange)``
``2024-01-01+14``           14 days starting on the given day
``2024-03``                 the whole month
``2024``                    the whole year
``2024-W05``                the ISO week, Monday to Sunday
``2024-01-01``              that single day
=========================  =============================================
"""

import re
from datetime import date

from .core import DateRange
from .months import month_range, year_range

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_SPAN = re.compile(r"^(.+)\+(\d+)$")


def parse_date(text: str) -> date:
    """Parse a strict ``YYYY-MM-DD`` date."""
    m = _DATE.match(text.strip())
    if not m:
        raise ValueError(f"expected YYYY-MM-DD, got {text!r}")
    year, month, day = (int(g) for g in m.groups())
    return date(year, month, day)


def parse_range(text: str) -> DateRange:
    """Parse any of the forms listed in the module docstring."""
    text = text.strip()
    if ".." in text:
        start, _, end = text.partition("..")
        return DateRange(parse_date(start), parse_date(end))
    m = _SPAN.match(text)
    if m:
        return DateRange.from_days(parse_date(m.group(1)), int(m.group(2)))
    m = _WEEK.match(text)
    if m:
        year, week = int(m.group(1)), int(m.group(2))
        try:
            monday = date.fromisocalendar(year, week, 1)
        except ValueError:
            raise ValueError(f"no ISO week {week} in {year}") from None
        return DateRange.from_days(monday, 7)
    m = _MONTH.match(text)
    if m:
        return month_range(int(m.group(1)), int(m.group(2)))
    m = _YEAR.match(text)
    if m:
        return year_range(int(m.group(1)))
    if _DATE.match(text):
        return DateRange.from_days(parse_date(text), 1)
    raise ValueError(f"cannot parse date range {text!r}")
