import pytest

from units import IncompatibleUnitsError, convert
from units.convert import best_unit


@pytest.mark.parametrize(
    "value, src, dst, expected",
    [
        (1, "ft", "cm", 30.48),
        (3, "mi", "km", 4.828032),
        (1, "lb", "oz", 16.0),
        (1.5, "h", "min", 90.0),
        (2, "gal", "l", 7.570823568),
        (300, "K", "K", 300.0),
    ],
    ids=["ft-cm", "mi-km", "lb-oz", "h-min", "gal-l", "K-K"],
)
def test_linear_conversions(value, src, dst, expected):
    assert convert(value, src, dst) == expected


def test_incompatible_dimensions():
    with pytest.raises(IncompatibleUnitsError):
        convert(1, "kg", "m")


def test_rounding_can_be_disabled():
    assert convert(1, "ft", "cm", ndigits=None) == pytest.approx(30.48)


def test_best_unit():
    assert best_unit(5400, "s").symbol == "h"
    assert best_unit(0.2, "m", ["mm", "cm", "m", "km"]).symbol == "cm"
    assert best_unit(0.2, "m").symbol == "in"
    assert best_unit(0.0001, "m", ["cm", "m"]).symbol == "cm"
