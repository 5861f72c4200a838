"""Clock abstractions, so that expiry logic can be tested deterministically.

A clock is any object with a ``now()`` method returning seconds as a float.
Only differences between two readings are meaningful; the epoch is
arbitrary.
"""

import time


class Clock:
    """Base class for clocks.  Subclasses implement :meth:`now`."""

    def now(self) -> float:
        raise NotImplementedError

    def __call__(self) -> float:
        return self.now()


class MonotonicClock(Clock):
    """The real clock: :func:`time.monotonic`, immune to wall-clock jumps."""

    def now(self) -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "MonotonicClock()"


class ManualClock(Clock):
    """A clock that only moves when told to.  Intended for tests."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by *seconds* (which must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock cannot move backwards")
        self._now += seconds

    def set(self, value: float) -> None:
        """Jump to the absolute reading *value* (not earlier than now)."""
        if value < self._now:
            raise ValueError("a clock cannot move backwards")
        self._now = float(value)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"
