"""Render :class:`~money.amount.Money` values for humans, and read them back."""

import re
from decimal import Decimal, InvalidOperation
from typing import Optional

from .amount import Money
from .currency import all_currencies, get_currency

_AMOUNT = re.compile(r"^\d{1,3}(,\d{3})*(\.\d+)?$|^\d+(\.\d+)?$")


def format_money(money: Money, *, symbol: bool = True, grouping: bool = True) -> str:
    """Format *money* like ``-$1,234.50`` (or ``-1,234.50 USD`` without symbol).

    Symbols made of letters (``CHF``, ``KD``) are separated from the number
    by a space.  *grouping* controls the thousands separator.
    """
    amount = money.amount
    sign = "-" if amount < 0 else ""
    spec = ",.2f" if grouping else ".2f"
    digits = format(abs(amount), spec)
    currency = money.currency
    if not symbol:
        return f"{sign}{digits} {currency.code}"
    if currency.symbol.isalpha():
        return f"{sign}{currency.symbol} {digits}"
    return f"{sign}{currency.symbol}{digits}"


def _symbol_table():
    table = {}
    for currency in all_currencies():
        table.setdefault(currency.symbol, currency)
    # Longest symbols first, so that "BD" is tried before "B..." prefixes.
    return sorted(table.items(), key=lambda item: -len(item[0]))


def parse_money(text: str, default_currency: Optional[str] = None) -> Money:
    """Parse ``"$1,234.50"``, ``"-€3"``, ``"12.5 EUR"`` or ``"CHF 10.00"``.

    A trailing three-letter code wins over a symbol; *default_currency* is
    used when the text has neither.
    """
    rest = text.strip()
    negative = rest.startswith("-")
    if negative:
        rest = rest[1:].lstrip()
    currency = None
    match = re.search(r"\s+([A-Za-z]{3})$", rest)
    if match:
        currency = get_currency(match.group(1))
        rest = rest[: match.start()]
    else:
        for sym, cur in _symbol_table():
            if rest.startswith(sym):
                currency, rest = cur, rest[len(sym):].lstrip()
                break
    if currency is None:
        if default_currency is None:
            raise ValueError(f"no currency in {text!r}")
        currency = get_currency(default_currency)
    if not _AMOUNT.match(rest):
        raise ValueError(f"invalid amount in {text!r}")
    try:
        value = Decimal(rest.replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"invalid amount in {text!r}") from None
    return Money(-value if negative else value, currency)
