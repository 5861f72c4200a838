"""Split an amount into parts without losing or creating a single unit."""

from decimal import Decimal
from typing import List, Sequence

from .amount import CENT, Money


def allocate(money: Money, ratios: Sequence[int]) -> List[Money]:
    """Split *money* in proportion to the integer *ratios*.

    Every share is first rounded down to a whole number of cents; the cents
    left over are then handed out one by one, starting with the first share.
    The shares always add up to *money* exactly::

        >>> allocate(Money("100", "USD"), [1, 1, 1])
        [Money('33.34', 'USD'), Money('33.33', 'USD'), Money('33.33', 'USD')]
    """
    if not ratios:
        raise ValueError("need at least one ratio")
    if any(not isinstance(r, int) or r < 0 for r in ratios):
        raise ValueError("ratios must be non-negative integers")
    total = sum(ratios)
    if total == 0:
        raise ValueError("ratios must not all be zero")

    unit = CENT
    units = int(money.amount / unit)
    shares = [units * r // total for r in ratios]
    leftover = units - sum(shares)
    # Floor division leaves 0 <= leftover < len(ratios).  Give the extra
    # units to the shares with a non-zero ratio, in order.
    for i, ratio in enumerate(ratios):
        if leftover == 0:
            break
        if ratio:
            shares[i] += 1
            leftover -= 1
    return [Money(Decimal(s) * unit, money.currency) for s in shares]


def split_evenly(money: Money, parts: int) -> List[Money]:
    """Split *money* into *parts* shares that differ by at most one cent."""
    if parts <= 0:
        raise ValueError("parts must be positive")
    return allocate(money, [1] * parts)
