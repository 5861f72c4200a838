"""The immutable :class:`Money` value type."""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import total_ordering
from typing import Union

from .currency import Currency, get_currency

CENT = Decimal("0.01")

Numeric = Union[int, str, Decimal]


class CurrencyMismatchError(ValueError):
    """Arithmetic or comparison between amounts in different currencies."""


@total_ordering
class Money:
    """An amount of a currency, rounded half-to-even to the smallest unit.

    Floats are rejected because they cannot represent most decimal amounts
    exactly; pass a string, an int or a :class:`~decimal.Decimal`.
    """

    __slots__ = ("amount", "currency")

    def __init__(self, amount: Numeric, currency: Union[str, Currency]) -> None:
        if isinstance(currency, str):
            currency = get_currency(currency)
        if isinstance(amount, float):
            raise TypeError("use a str or Decimal amount, not float")
        try:
            value = Decimal(amount)
        except (InvalidOperation, TypeError, ValueError):
            raise ValueError(f"invalid amount {amount!r}") from None
        if not value.is_finite():
            raise ValueError(f"invalid amount {amount!r}")
        self.currency: Currency = currency
        self.amount: Decimal = value.quantize(CENT, rounding=ROUND_HALF_EVEN)

    @classmethod
    def from_minor(cls, units: int, currency: Union[str, Currency]) -> "Money":
        """Build an amount from an integer number of minor units (cents)."""
        if isinstance(currency, str):
            currency = get_currency(currency)
        return cls(Decimal(units).scaleb(-currency.exponent), currency)

    def to_minor(self) -> int:
        """The amount as an integer number of minor units (cents)."""
        return int(self.amount.scaleb(self.currency.exponent))

    def _check(self, other: "Money") -> None:
        if not isinstance(other, Money):
            raise TypeError(f"expected Money, got {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"{self.currency} vs {other.currency}")

    def __add__(self, other: "Money") -> "Money":
        self._check(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._check(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: Numeric) -> "Money":
        if isinstance(factor, (float, Money)):
            raise TypeError("multiply by an int, str or Decimal")
        return Money(self.amount * Decimal(factor), self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> "Money":
        return Money(-self.amount, self.currency)

    def __abs__(self) -> "Money":
        return Money(abs(self.amount), self.currency)

    def __bool__(self) -> bool:
        return bool(self.amount)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __lt__(self, other: "Money") -> bool:
        self._check(other)
        return self.amount < other.amount

    def __hash__(self) -> int:
        return hash((self.currency.code, self.amount))

    def __repr__(self) -> str:
        return f"Money({str(self.amount)!r}, {self.currency.code!r})"

    def __str__(self) -> str:
        from .formatting import format_money

        return format_money(self)
