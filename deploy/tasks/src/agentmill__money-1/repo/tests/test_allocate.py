import pytest

from money import Money, allocate, split_evenly


def test_allocate_evenly_hands_out_leftover_cents_first():
    shares = allocate(Money("100", "USD"), [1, 1, 1])
    assert shares == [Money("33.34", "USD"), Money("33.33", "USD"), Money("33.33", "USD")]


def test_allocate_by_ratio():
    shares = allocate(Money("0.05", "EUR"), [3, 7])
    assert shares == [Money("0.02", "EUR"), Money("0.03", "EUR")]


def test_zero_ratio_gets_nothing():
    shares = allocate(Money("1.00", "USD"), [0, 1, 2])
    assert shares[0] == Money("0", "USD")
    assert sum((s for s in shares), Money("0", "USD")) == Money("1.00", "USD")


def test_negative_amount_is_preserved():
    shares = split_evenly(Money("-10.00", "GBP"), 3)
    assert sum((s for s in shares), Money("0", "GBP")) == Money("-10.00", "GBP")
    assert max(shares) - min(shares) <= Money("0.01", "GBP")


@pytest.mark.parametrize("ratios", [[], [0, 0], [1, -1]], ids=["empty", "all-zero", "negative"])
def test_invalid_ratios(ratios):
    with pytest.raises(ValueError):
        allocate(Money("1", "USD"), ratios)
