import pytest

from units import UnknownUnitError, define, get_unit, units_for


def test_lookup_by_symbol_name_and_alias():
    assert get_unit("km") is get_unit("Kilometre") is get_unit("kilometer")
    assert get_unit("°C") is get_unit("degC")


def test_symbols_are_case_sensitive():
    assert get_unit("m").dimension == "length"
    assert get_unit("min").dimension == "time"
    with pytest.raises(UnknownUnitError):
        get_unit("KM")


def test_units_for_dimension_sorted_by_size():
    assert [u.symbol for u in units_for("time")] == ["ms", "s", "min", "h", "d"]


def test_define_validates():
    define("nmi", "nautical mile", "length", 1852.0)
    assert get_unit("nautical mile").factor == 1852.0
    with pytest.raises(ValueError):
        define("km", "duplicate", "length", 1000.0)
    with pytest.raises(ValueError):
        define("zero", "zero", "length", 0)
