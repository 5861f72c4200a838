from decimal import Decimal

import pytest

from money import Currency, UnknownCurrencyError, get_currency, register


def test_lookup_is_case_insensitive():
    assert get_currency("usd") is get_currency("USD")
    assert get_currency(" eur ").symbol == "€"


def test_unknown_currency():
    with pytest.raises(UnknownCurrencyError):
        get_currency("XYZ")


@pytest.mark.parametrize(
    "code, exponent, quantum",
    [("USD", 2, "0.01"), ("JPY", 0, "1"), ("KWD", 3, "0.001")],
)
def test_minor_unit_metadata(code, exponent, quantum):
    currency = get_currency(code)
    assert currency.exponent == exponent
    assert currency.quantum == Decimal(quantum)


def test_register_and_validate():
    register(Currency("SEK", 2, "kr", "Swedish krona"))
    assert get_currency("sek").name == "Swedish krona"
    with pytest.raises(ValueError):
        Currency("usd", 2, "$", "lowercase code")
