"""A number together with its unit."""

from functools import total_ordering
from numbers import Real
from typing import Union

from .convert import check_compatible, convert, to_base
from .registry import Unit, get_unit


@total_ordering
class Quantity:
    """An immutable ``value`` in ``unit``.

    Quantities of the same dimension can be compared, added and subtracted;
    the result of ``a + b`` is expressed in ``a``'s unit.  Multiplying or
    dividing by a plain number scales the value.
    """

    __slots__ = ("value", "unit")

    def __init__(self, value: Real, unit: Union[str, Unit]) -> None:
        if not isinstance(value, Real) or isinstance(value, bool):
            raise TypeError(f"value must be a real number, got {value!r}")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "unit", get_unit(unit))

    def __setattr__(self, name, value):
        raise AttributeError("Quantity is immutable")

    @property
    def dimension(self) -> str:
        return self.unit.dimension

    def to(self, unit: Union[str, Unit]) -> "Quantity":
        """The same quantity expressed in *unit*."""
        return Quantity(convert(self.value, self.unit, unit), unit)

    def _other_value(self, other: "Quantity") -> float:
        if not isinstance(other, Quantity):
            raise TypeError(f"expected Quantity, got {type(other).__name__}")
        check_compatible(self.unit, other.unit)
        return convert(other.value, other.unit, self.unit)

    def __add__(self, other: "Quantity") -> "Quantity":
        return Quantity(round(self.value + self._other_value(other), 12), self.unit)

    def __sub__(self, other: "Quantity") -> "Quantity":
        return Quantity(round(self.value - self._other_value(other), 12), self.unit)

    def __mul__(self, k: Real) -> "Quantity":
        if not isinstance(k, Real):
            return NotImplemented
        return Quantity(self.value * k, self.unit)

    __rmul__ = __mul__

    def __truediv__(self, k: Real) -> "Quantity":
        if not isinstance(k, Real):
            return NotImplemented
        return Quantity(self.value / k, self.unit)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity) or other.dimension != self.dimension:
            return NotImplemented
        return round(to_base(self.value, self.unit), 9) == round(to_base(other.value, other.unit), 9)

    def __lt__(self, other: "Quantity") -> bool:
        check_compatible(self.unit, other.unit)
        return to_base(self.value, self.unit) < to_base(other.value, other.unit)

    def __hash__(self) -> int:
        return hash((self.dimension, round(to_base(self.value, self.unit), 9)))

    def __repr__(self) -> str:
        return f"Quantity({self.value!r}, {self.unit.symbol!r})"

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit.symbol}"
