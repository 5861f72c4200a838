import pytest

from semver import Range, RangeError, Version


def test_comparator_set():
    r = Range(">=1.2.0 <2.0.0")
    assert "1.2.0" in r and "1.9.9" in r
    assert "2.0.0" not in r and "1.1.9" not in r


def test_operator_followed_by_space():
    assert "1.5.0" in Range(">= 1.2.0 < 2.0.0")


def test_caret_ranges():
    assert "1.9.3" in Range("^1.2.0")
    assert "2.0.0" not in Range("^1.2.0")
    assert "0.2.9" in Range("^0.2.3") and "0.3.0" not in Range("^0.2.3")
    assert "0.0.4" not in Range("^0.0.3")


def test_tilde_and_wildcards():
    assert "1.2.9" in Range("~1.2.3") and "1.3.0" not in Range("~1.2.3")
    assert "1.7.0" in Range("1.x") and "2.0.0" not in Range("1.x")
    assert "1.2.5" in Range("1.2.x") and "1.3.0" not in Range("1.2.x")
    assert "9.9.9" in Range("*")


def test_alternatives_and_max_satisfying():
    r = Range("^1.2.0 || >=3.0.0")
    assert "2.5.0" not in r and "3.1.0" in r
    assert r.max_satisfying(["1.1.9", "1.2.3", "1.9.0", "2.0.0"]) == Version.parse("1.9.0")


@pytest.mark.parametrize("text", ["", ">=1.2", "^banana", "1.0.0 ||"], ids=["empty", "partial", "garbage", "dangling-or"])
def test_invalid_ranges(text):
    with pytest.raises(RangeError):
        Range(text)
