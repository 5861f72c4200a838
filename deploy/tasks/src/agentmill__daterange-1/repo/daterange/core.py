"""The half-open :class:`DateRange` value type."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterator, Optional

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, order=True)
class DateRange:
    """Calendar days from ``start`` (included) up to ``end`` (excluded).

    Ranges order by start, then end.  An empty range (``start == end``) is
    allowed; a reversed one is not.
    """

    start: date
    end: date

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, date) or hasattr(value, "hour"):
                raise TypeError(f"{name} must be a datetime.date, got {value!r}")
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")

    @classmethod
    def inclusive(cls, first: date, last: date) -> "DateRange":
        """The range from *first* to *last*, both included."""
        return cls(first, last + ONE_DAY)

    @classmethod
    def from_days(cls, start: date, days: int) -> "DateRange":
        """The *days*-long range beginning on *start*."""
        if days < 0:
            raise ValueError("days must not be negative")
        return cls(start, start + timedelta(days=days))

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last(self) -> date:
        """The last day in the range (``end`` minus one day)."""
        if self.is_empty():
            raise ValueError("an empty range has no last day")
        return self.end - ONE_DAY

    def is_empty(self) -> bool:
        return self.start == self.end

    def __len__(self) -> int:
        return self.days

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day < self.end

    def __iter__(self) -> Iterator[date]:
        day = self.start
        while day < self.end:
            yield day
            day += ONE_DAY

    def overlaps(self, other: "DateRange") -> bool:
        """Whether the two ranges share at least one day."""
        return self.start < other.end and other.start < self.end

    def intersection(self, other: "DateRange") -> Optional["DateRange"]:
        """The days in both ranges, or ``None`` if they do not overlap."""
        if not self.overlaps(other):
            return None
        return DateRange(max(self.start, other.start), min(self.end, other.end))

    def shift(self, days: int) -> "DateRange":
        delta = timedelta(days=days)
        return DateRange(self.start + delta, self.end + delta)

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"
