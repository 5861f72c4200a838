"""Read quantities from text such as ``"3.5 km"`` or ``"-40°F"``."""

import re
from typing import Optional

from .quantity import Quantity
from .registry import get_unit

_QUANTITY = re.compile(
    r"""^\s*
    (?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)   # number
    \s*
    (?P<unit>[^\d\s].*?)?                                      # unit
    \s*$""",
    re.VERBOSE,
)


def parse_number(text: str):
    """An ``int`` when the text has no decimal point or exponent, else a ``float``."""
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return float(text)


def parse_quantity(text: str, default_unit: Optional[str] = None) -> Quantity:
    """Parse ``"<number> <unit>"``; the space is optional (``"20degC"``).

    Thousands separators are accepted (``"1,200 km"``).  When the text has
    no unit, *default_unit* is used, and without one a ``ValueError`` is
    raised.
    """
    cleaned = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    m = _QUANTITY.match(cleaned)
    if not m:
        raise ValueError(f"cannot parse quantity {text!r}")
    unit = m.group("unit") or default_unit
    if unit is None:
        raise ValueError(f"no unit in {text!r}")
    return Quantity(parse_number(m.group("value")), get_unit(unit))


def parse_many(text: str, separator: str = ",") -> list:
    """Parse a separated list such as ``"5 km, 300 m"``.

    Thousands separators are not supported here because the default list
    separator is also a comma.
    """
    return [parse_quantity(part) for part in text.split(separator) if part.strip()]
