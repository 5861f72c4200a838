import pytest

from calc import ParseError, parse
from calc.nodes import free_names, to_source


def shape(source):
    return to_source(parse(source))


def test_multiplication_binds_tighter_than_addition():
    assert shape("1 + 2 * 3") == "(1 + (2 * 3))"


def test_subtraction_is_left_associative():
    assert shape("10 - 4 - 3") == "((10 - 4) - 3)"


def test_unary_minus_applies_after_power():
    assert shape("-2 ** 2") == "(-(2 ** 2))"


def test_function_call_arguments():
    assert shape("max(1, x + 1)") == "max(1, (x + 1))"


def test_free_names():
    assert free_names(parse("a * b + sqrt(c) - a")) == {"a", "b", "c"}


@pytest.mark.parametrize(
    "source",
    ["", "1 +", "(1 + 2", "1 2", "f(1,)"],
    ids=["empty", "dangling-operator", "unclosed-paren", "missing-operator", "trailing-comma"],
)
def test_invalid_expressions(source):
    with pytest.raises(ParseError):
        parse(source)
