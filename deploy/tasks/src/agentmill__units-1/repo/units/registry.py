"""Unit definitions and their lookup.

A :class:`Unit` relates to the base unit of its dimension by a ``factor``:
``value_in_base = value * factor``.
"""

from dataclasses import dataclass
from typing import Dict, List, Tuple


class UnknownUnitError(KeyError):
    """No unit is registered under that symbol or name."""


class IncompatibleUnitsError(ValueError):
    """The units measure different dimensions (e.g. metres and seconds)."""


@dataclass(frozen=True)
class Unit:
    symbol: str
    name: str
    dimension: str
    factor: float
    aliases: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.factor <= 0:
            raise ValueError(f"factor of {self.symbol!r} must be positive")

    def __str__(self) -> str:
        return self.symbol


_BY_SYMBOL: Dict[str, Unit] = {}
_BY_NAME: Dict[str, Unit] = {}


def define(symbol: str, name: str, dimension: str, factor: float, aliases: Tuple[str, ...] = ()) -> Unit:
    """Register a unit; symbols are case-sensitive, names and aliases are not."""
    unit = Unit(symbol, name, dimension, factor, tuple(aliases))
    if symbol in _BY_SYMBOL:
        raise ValueError(f"unit {symbol!r} is already defined")
    _BY_SYMBOL[symbol] = unit
    for key in (name, *aliases):
        _BY_NAME[key.lower()] = unit
    return unit


def get_unit(key) -> Unit:
    """Look a unit up by symbol (exact) or by name/alias (case-insensitive)."""
    if isinstance(key, Unit):
        return key
    unit = _BY_SYMBOL.get(key) or _BY_NAME.get(key.strip().lower())
    if unit is None:
        raise UnknownUnitError(key)
    return unit


def units_for(dimension: str) -> List[Unit]:
    """All units of *dimension*, smallest first."""
    return sorted((u for u in _BY_SYMBOL.values() if u.dimension == dimension), key=lambda u: u.factor)


_DEFINITIONS = [
    # length (base: metre)
    ("mm", "millimetre", "length", 0.001, ("millimeter",)),
    ("cm", "centimetre", "length", 0.01, ("centimeter",)),
    ("m", "metre", "length", 1.0, ("meter",)),
    ("km", "kilometre", "length", 1000.0, ("kilometer",)),
    ("in", "inch", "length", 0.0254, ("inches",)),
    ("ft", "foot", "length", 0.3048, ("feet",)),
    ("yd", "yard", "length", 0.9144, ()),
    ("mi", "mile", "length", 1609.344, ("miles",)),
    # mass (base: kilogram)
    ("mg", "milligram", "mass", 1e-6, ()),
    ("g", "gram", "mass", 0.001, ()),
    ("kg", "kilogram", "mass", 1.0, ()),
    ("t", "tonne", "mass", 1000.0, ()),
    ("oz", "ounce", "mass", 0.028349523125, ()),
    ("lb", "pound", "mass", 0.45359237, ("lbs",)),
    # time (base: second)
    ("ms", "millisecond", "time", 0.001, ()),
    ("s", "second", "time", 1.0, ("sec",)),
    ("min", "minute", "time", 60.0, ()),
    ("h", "hour", "time", 3600.0, ("hr",)),
    ("d", "day", "time", 86400.0, ()),
    # volume (base: cubic metre)
    ("ml", "millilitre", "volume", 1e-6, ("milliliter",)),
    ("l", "litre", "volume", 0.001, ("liter", "L")),
    ("m3", "cubic metre", "volume", 1.0, ("cubic meter",)),
    ("gal", "US gallon", "volume", 0.003785411784, ("gallon",)),
    # temperature (base: kelvin)
    ("K", "kelvin", "temperature", 1.0, ()),
    ("degC", "celsius", "temperature", 1.0, ("°C",)),
    ("degF", "fahrenheit", "temperature", 5 / 9, ("°F",)),
]

for _definition in _DEFINITIONS:
    define(*_definition)
del _definition
