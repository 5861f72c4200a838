"""ISO 4217 currency metadata.

Each :class:`Currency` knows its three-letter code, the number of digits of
its minor unit (``exponent``: 2 for cents, 0 for yen, 3 for fils) and the
symbol used when formatting.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Dict, Iterable


class UnknownCurrencyError(KeyError):
    """No currency with the requested code has been registered."""


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int
    symbol: str
    name: str

    def __post_init__(self) -> None:
        if len(self.code) != 3 or not self.code.isalpha() or not self.code.isupper():
            raise ValueError(f"invalid currency code {self.code!r}")
        if not 0 <= self.exponent <= 4:
            raise ValueError(f"unsupported exponent {self.exponent}")

    @property
    def quantum(self) -> Decimal:
        """The smallest representable amount, e.g. ``Decimal('0.01')`` for USD."""
        return Decimal(1).scaleb(-self.exponent)

    def __str__(self) -> str:
        return self.code


_REGISTRY: Dict[str, Currency] = {}


def register(currency: Currency) -> Currency:
    """Make *currency* available to :func:`get_currency`; returns it."""
    _REGISTRY[currency.code] = currency
    return currency


def get_currency(code: str) -> Currency:
    """Look a currency up by its code (case-insensitive)."""
    try:
        return _REGISTRY[code.strip().upper()]
    except KeyError:
        raise UnknownCurrencyError(code) from None


def all_currencies() -> Iterable[Currency]:
    return sorted(_REGISTRY.values(), key=lambda c: c.code)


for _args in [
    ("USD", 2, "$", "US dollar"),
    ("EUR", 2, "€", "Euro"),
    ("GBP", 2, "£", "Pound sterling"),
    ("CHF", 2, "CHF", "Swiss franc"),
    ("JPY", 0, "¥", "Japanese yen"),
    ("KRW", 0, "₩", "South Korean won"),
    ("KWD", 3, "KD", "Kuwaiti dinar"),
    ("BHD", 3, "BD", "Bahraini dinar"),
]:
    register(Currency(*_args))
del _args
