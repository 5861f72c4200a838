import pytest

from money import Money, format_money, parse_money


def test_format_with_symbol_and_grouping():
    assert format_money(Money("1234.5", "USD")) == "$1,234.50"
    assert format_money(Money("-1234.5", "GBP")) == "-£1,234.50"


def test_format_letter_symbol_gets_a_space():
    assert format_money(Money("10", "CHF")) == "CHF 10.00"


def test_format_without_symbol_or_grouping():
    assert format_money(Money("1234567.891", "EUR"), symbol=False) == "1,234,567.89 EUR"
    assert format_money(Money("1234.5", "USD"), grouping=False) == "$1234.50"


def test_str_uses_format_money():
    assert str(Money("7", "EUR")) == "€7.00"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$1,234.50", Money("1234.50", "USD")),
        ("-€3", Money("-3", "EUR")),
        ("12.5 EUR", Money("12.50", "EUR")),
        ("CHF 10.00", Money("10", "CHF")),
    ],
    ids=["symbol-grouped", "symbol-negative", "code-suffix", "letter-symbol"],
)
def test_parse_money(text, expected):
    assert parse_money(text) == expected


def test_parse_money_needs_a_currency():
    with pytest.raises(ValueError):
        parse_money("12.00")
    assert parse_money("12.00", default_currency="USD") == Money("12", "USD")
