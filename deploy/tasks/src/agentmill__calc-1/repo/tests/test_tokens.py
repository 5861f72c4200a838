import pytest

from calc.tokens import TokenizeError, tokenize


def texts(source):
    return [(t.kind, t.text) for t in tokenize(source)]


def test_integers_and_operators():
    assert texts("1+23") == [("NUMBER", "1"), ("OP", "+"), ("NUMBER", "23"), ("EOF", "")]


def test_double_star_is_one_token():
    assert [t.text for t in tokenize("2**3")] == ["2", "**", "3", ""]


def test_float_and_exponent_literals():
    assert [t.text for t in tokenize(".5 1.25 1e3 2.5E-4")][:-1] == [".5", "1.25", "1e3", "2.5E-4"]


def test_names_and_punctuation():
    kinds = [t.kind for t in tokenize("max(a_1, b)")]
    assert kinds == ["NAME", "LPAREN", "NAME", "COMMA", "NAME", "RPAREN", "EOF"]


def test_unexpected_character():
    with pytest.raises(TokenizeError, match="position 2"):
        tokenize("1 $ 2")
