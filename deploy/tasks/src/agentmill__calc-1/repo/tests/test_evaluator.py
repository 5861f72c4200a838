import math

import pytest

from calc import EvalError, calculate


def test_arithmetic():
    assert calculate("2 * (3 + 4) - 10 / 4") == 11.5
    assert calculate("17 % 5") == 2


def test_simple_power():
    assert calculate("2 ** 10") == 1024
    assert calculate("-3 ** 2") == -9


def test_variables_and_constants():
    assert calculate("r * r * pi", r=2) == pytest.approx(4 * math.pi)


def test_functions():
    assert calculate("sqrt(x ** 2 + y ** 2)", x=3, y=4) == 5.0
    assert calculate("max(1, 7, 3) - min(4, 2)") == 5


def test_unknown_variable():
    with pytest.raises(EvalError, match="unknown variable 'z'"):
        calculate("z + 1")


def test_division_by_zero():
    with pytest.raises(EvalError):
        calculate("1 / (2 - 2)")


def test_bad_function_arguments():
    with pytest.raises(EvalError):
        calculate("sqrt(1, 2)")
