from datetime import date as D

from daterange import DateRange, gaps, merge, subtract, total_days
from daterange.ops import covers


def R(a, b):
    return DateRange(D(2024, 1, a), D(2024, 1, b))


def test_merge_overlapping_unsorted():
    assert merge([R(5, 12), R(1, 6), R(20, 25)]) == [R(1, 12), R(20, 25)]


def test_merge_contained_and_empty():
    assert merge([R(1, 20), R(3, 4), R(7, 7)]) == [R(1, 20)]


def test_merge_keeps_separated_ranges_apart():
    assert merge([R(1, 5), R(6, 9)]) == [R(1, 5), R(6, 9)]


def test_total_days_counts_each_day_once():
    assert total_days([R(1, 5), R(3, 8), R(10, 11)]) == 8


def test_gaps_between_ranges():
    assert gaps([R(1, 3), R(5, 8), R(8, 10), R(12, 13)]) == [R(3, 5), R(10, 12)]


def test_gaps_within_period():
    assert gaps([R(5, 8)], within=R(1, 10)) == [R(1, 5), R(8, 10)]


def test_subtract():
    assert subtract(R(1, 31), [R(5, 10), R(20, 25), R(28, 31)]) == [R(1, 5), R(10, 20), R(25, 28)]
    assert subtract(R(1, 5), [R(1, 5)]) == []


def test_covers():
    assert covers([R(1, 3), R(10, 12)], D(2024, 1, 11))
    assert not covers([R(1, 3), R(10, 12)], D(2024, 1, 3))
