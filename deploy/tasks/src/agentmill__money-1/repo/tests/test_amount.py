from decimal import Decimal

import pytest

from money import CurrencyMismatchError, Money


def test_amount_is_rounded_half_even():
    assert Money("0.125", "USD").amount == Decimal("0.12")
    assert Money("0.135", "USD").amount == Decimal("0.14")
    assert Money(5, "EUR").amount == Decimal("5.00")


def test_rejects_float_and_garbage():
    with pytest.raises(TypeError):
        Money(0.1, "USD")
    with pytest.raises(ValueError):
        Money("ten", "USD")
    with pytest.raises(ValueError):
        Money("NaN", "USD")


def test_addition_and_subtraction():
    total = Money("10.50", "USD") + Money("0.75", "USD") - Money("1", "USD")
    assert total == Money("10.25", "USD")


def test_currency_mismatch():
    with pytest.raises(CurrencyMismatchError):
        Money("1", "USD") + Money("1", "EUR")
    with pytest.raises(CurrencyMismatchError):
        Money("1", "USD") < Money("2", "EUR")


def test_multiplication_rounds():
    assert Money("19.99", "USD") * 3 == Money("59.97", "USD")
    assert Decimal("0.5") * Money("0.05", "USD") == Money("0.02", "USD")


def test_ordering_and_hash():
    small, big = Money("1.00", "GBP"), Money("2.00", "GBP")
    assert small < big and big >= small
    assert len({Money("1", "GBP"), Money("1.00", "GBP")}) == 1


def test_minor_units_roundtrip_for_cents():
    price = Money.from_minor(1999, "USD")
    assert price == Money("19.99", "USD")
    assert price.to_minor() == 1999


def test_repr():
    assert repr(Money("-3.5", "EUR")) == "Money('-3.50', 'EUR')"
