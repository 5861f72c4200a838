"""Convert plain numbers between units.

Every conversion goes through the base unit of the dimension: the value is
first expressed in the base unit (:func:`to_base`) and then in the target
unit (:func:`from_base`).
"""

from typing import Iterable, Optional, Union

from .registry import IncompatibleUnitsError, Unit, get_unit, units_for

UnitLike = Union[str, Unit]


def to_base(value: float, unit: UnitLike) -> float:
    """Express *value* (in *unit*) in the base unit of its dimension."""
    u = get_unit(unit)
    return value * u.factor


def from_base(value: float, unit: UnitLike) -> float:
    """Express *value* (in the base unit) in *unit*."""
    u = get_unit(unit)
    return value / u.factor


def check_compatible(a: UnitLike, b: UnitLike) -> None:
    ua, ub = get_unit(a), get_unit(b)
    if ua.dimension != ub.dimension:
        raise IncompatibleUnitsError(f"cannot convert {ua.dimension} ({ua}) to {ub.dimension} ({ub})")


def convert(value: float, src: UnitLike, dst: UnitLike, *, ndigits: Optional[int] = 12) -> float:
    """Convert *value* from *src* to *dst*.

    The result is rounded to *ndigits* decimal places (``None`` disables
    rounding) so that ``convert(1, "ft", "cm")`` gives ``30.48`` rather than
    ``30.479999999999997``.
    """
    check_compatible(src, dst)
    result = from_base(to_base(value, src), dst)
    return result if ndigits is None else round(result, ndigits)


def best_unit(value: float, unit: UnitLike, candidates: Optional[Iterable[UnitLike]] = None) -> Unit:
    """The unit in which *value* reads most naturally.

    That is the largest unit in which the magnitude is at least 1, chosen
    among *candidates* (default: every unit of the same dimension).
    """
    u = get_unit(unit)
    pool = [get_unit(c) for c in candidates] if candidates is not None else units_for(u.dimension)
    for c in pool:
        check_compatible(u, c)
    base = abs(to_base(value, u))
    fitting = [c for c in pool if abs(from_base(base, c)) >= 1]
    if not fitting:
        return min(pool, key=lambda c: c.factor)
    return max(fitting, key=lambda c: c.factor)
