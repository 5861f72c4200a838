import pytest

from units import IncompatibleUnitsError, Quantity, parse_quantity
from units.parse import parse_many


def test_to_and_repr():
    assert repr(Quantity(1.5, "h").to("min")) == "Quantity(90.0, 'min')"
    assert str(Quantity(2.50, "kg")) == "2.5 kg"


def test_arithmetic_uses_left_unit():
    assert Quantity(5, "km") + Quantity(300, "m") == Quantity(5.3, "km")
    assert repr(Quantity(1, "h") - Quantity(15, "min")) == "Quantity(0.75, 'h')"
    assert (Quantity(2, "m") * 3).value == 6
    assert (Quantity(9, "s") / 2).value == 4.5


def test_comparisons_across_units():
    assert Quantity(2, "kg") > Quantity(4, "lb")
    assert Quantity(100, "cm") == Quantity(1, "m")
    assert len({Quantity(1000, "g"), Quantity(1, "kg")}) == 1
    with pytest.raises(IncompatibleUnitsError):
        Quantity(1, "kg") < Quantity(1, "m")


def test_immutable_and_typed():
    q = Quantity(1, "m")
    with pytest.raises(AttributeError):
        q.value = 2
    with pytest.raises(TypeError):
        Quantity("1", "m")


def test_parse_quantity():
    assert repr(parse_quantity("3.5 km")) == "Quantity(3.5, 'km')"
    assert repr(parse_quantity("1,200 m")) == "Quantity(1200, 'm')"
    assert repr(parse_quantity("20degC")) == "Quantity(20, 'degC')"
    assert repr(parse_quantity("7", default_unit="kg")) == "Quantity(7, 'kg')"
    with pytest.raises(ValueError):
        parse_quantity("7")
    with pytest.raises(ValueError):
        parse_quantity("km 7")


def test_parse_many():
    assert parse_many("5 km, 300 m") == [Quantity(5, "km"), Quantity(300, "m")]
