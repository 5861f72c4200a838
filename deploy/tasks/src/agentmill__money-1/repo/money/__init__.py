"""money - exact money arithmetic with currency metadata.

* :mod:`money.currency` - the ISO 4217 currencies this package knows about,
  with their symbols and number of minor-unit digits.
* :mod:`money.amount` - the immutable :class:`Money` value type.
* :mod:`money.allocate` - splitting an amount without losing a cent.
* :mod:`money.formatting` - rendering and parsing human-readable amounts.

Example::

    >>> from money import Money, allocate, format_money
    >>> bill = Money("100.00", "EUR")
    >>> [str(share) for share in allocate(bill, [1, 1, 1])]
    ['€33.34', '€33.33', '€33.33']
    >>> format_money(Money("-1234.5", "GBP"))
    '-£1,234.50'

Amounts never hold more precision than their currency allows: every
operation that produces a :class:`Money` rounds half-to-even to the
currency's smallest unit.
"""

from .allocate import allocate, split_evenly
from .amount import CurrencyMismatchError, Money
from .currency import Currency, UnknownCurrencyError, get_currency, register
from .formatting import format_money, parse_money

__all__ = [
    "Currency",
    "CurrencyMismatchError",
    "Money",
    "UnknownCurrencyError",
    "allocate",
    "format_money",
    "get_currency",
    "parse_money",
    "register",
    "split_evenly",
]

__version__ = "2.1.0"
