"""units - unit conversion with quantities.

* :mod:`units.registry` - the unit definitions and their lookup,
* :mod:`units.convert` - converting plain numbers between units,
* :mod:`units.quantity` - :class:`Quantity`, a number with a unit,
* :mod:`units.parse` - reading quantities such as ``"3.5 km"``.

Example::

    >>> from units import Quantity, convert
    >>> convert(1, "ft", "cm")
    30.48
    >>> Quantity(2, "kg") > Quantity(4, "lb")
    True

Every unit is defined relative to the base unit of its dimension (metre,
kilogram, second, cubic metre, kelvin).  Conversions go through the base
unit, so adding a unit only requires its relation to the base.
"""

from .convert import convert, to_base, from_base
from .parse import parse_quantity
from .quantity import Quantity
from .registry import (
    IncompatibleUnitsError,
    Unit,
    UnknownUnitError,
    define,
    get_unit,
    units_for,
)

__all__ = [
    "IncompatibleUnitsError",
    "Quantity",
    "Unit",
    "UnknownUnitError",
    "convert",
    "define",
    "from_base",
    "get_unit",
    "parse_quantity",
    "to_base",
    "units_for",
]

__version__ = "0.5.0"
