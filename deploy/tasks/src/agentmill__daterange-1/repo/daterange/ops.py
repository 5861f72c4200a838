"""Operations on collections of :class:`~daterange.core.DateRange`."""

from typing import Iterable, List, Optional

from .core import DateRange


def merge(ranges: Iterable[DateRange]) -> List[DateRange]:
    """Combine *ranges* into the shortest sorted list of disjoint ranges.

    The result covers exactly the same days as the input.  Empty ranges are
    dropped.
    """
    merged: List[DateRange] = []
    for current in sorted(r for r in ranges if not r.is_empty()):
        if merged and merged[-1].overlaps(current):
            last = merged[-1]
            merged[-1] = DateRange(last.start, max(last.end, current.end))
        else:
            merged.append(current)
    return merged


def total_days(ranges: Iterable[DateRange]) -> int:
    """Number of distinct days covered by *ranges*."""
    return sum(r.days for r in merge(ranges))


def gaps(ranges: Iterable[DateRange], within: Optional[DateRange] = None) -> List[DateRange]:
    """The uncovered stretches between *ranges*.

    Without *within*, only the gaps between the first and the last range are
    reported; with it, uncovered days at either end of *within* count too,
    and the result is clipped to *within*.
    """
    covered = merge(ranges)
    if within is not None:
        return subtract(within, covered)
    return [
        DateRange(a.end, b.start)
        for a, b in zip(covered, covered[1:])
        if a.end < b.start
    ]


def subtract(base: DateRange, ranges: Iterable[DateRange]) -> List[DateRange]:
    """The parts of *base* not covered by any of *ranges*, in order."""
    pieces: List[DateRange] = []
    cursor = base.start
    for r in merge(ranges):
        if r.end <= cursor:
            continue
        if r.start >= base.end:
            break
        if r.start > cursor:
            pieces.append(DateRange(cursor, r.start))
        cursor = max(cursor, r.end)
    if cursor < base.end:
        pieces.append(DateRange(cursor, base.end))
    return pieces


def covers(ranges: Iterable[DateRange], day) -> bool:
    """Whether *day* lies in any of *ranges*."""
    return any(day in r for r in ranges)
