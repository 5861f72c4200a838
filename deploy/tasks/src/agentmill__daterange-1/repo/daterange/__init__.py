"""daterange - half-open ranges of calendar days.

Modules:

* :mod:`daterange.core` - the :class:`DateRange` value type,
* :mod:`daterange.ops` - operations on collections of ranges (merge,
  subtract, gaps),
* :mod:`daterange.months` - month arithmetic and calendar-aligned ranges,
* :mod:`daterange.parse` - reading ranges from strings such as
  ``2024-03``, ``2024-W05`` or ``2024-01-01..2024-01-15``.

Example::

    >>> from datetime import date
    >>> from daterange import DateRange, merge
    >>> a = DateRange(date(2024, 1, 1), date(2024, 1, 10))
    >>> b = DateRange(date(2024, 1, 5), date(2024, 1, 20))
    >>> merge([b, a])
    [DateRange(start=datetime.date(2024, 1, 1), end=datetime.date(2024, 1, 20))]

All ranges are half-open: ``start`` is included and ``end`` is not, so
``len(DateRange(d, d))`` is 0 and a range and the one starting at its end
do not overlap.
"""

from .core import DateRange
from .months import add_months, days_in_month, iter_months, month_range, year_range
from .ops import gaps, merge, subtract, total_days
from .parse import parse_date, parse_range

__all__ = [
    "DateRange",
    "add_months",
    "days_in_month",
    "gaps",
    "iter_months",
    "merge",
    "month_range",
    "parse_date",
    "parse_range",
    "subtract",
    "total_days",
    "year_range",
]

__version__ = "1.0.3"
