from datetime import date, datetime

import pytest

from daterange import DateRange

D = date


def test_half_open_membership():
    r = DateRange(D(2024, 1, 1), D(2024, 1, 4))
    assert D(2024, 1, 1) in r
    assert D(2024, 1, 3) in r
    assert D(2024, 1, 4) not in r
    assert len(r) == 3
    assert list(r) == [D(2024, 1, 1), D(2024, 1, 2), D(2024, 1, 3)]


def test_inclusive_constructor_and_last():
    r = DateRange.inclusive(D(2024, 2, 27), D(2024, 3, 1))
    assert r.end == D(2024, 3, 2)
    assert r.last == D(2024, 3, 1)
    assert len(r) == 4


def test_validation():
    with pytest.raises(ValueError):
        DateRange(D(2024, 1, 2), D(2024, 1, 1))
    with pytest.raises(TypeError):
        DateRange(datetime(2024, 1, 1), D(2024, 1, 2))
    with pytest.raises(ValueError):
        DateRange(D(2024, 1, 1), D(2024, 1, 1)).last


def test_overlapping_ranges():
    a = DateRange(D(2024, 1, 1), D(2024, 1, 10))
    b = DateRange(D(2024, 1, 9), D(2024, 1, 20))
    assert a.overlaps(b) and b.overlaps(a)
    assert a.intersection(b) == DateRange(D(2024, 1, 9), D(2024, 1, 10))


def test_adjacent_ranges_do_not_overlap():
    a = DateRange(D(2024, 1, 1), D(2024, 1, 10))
    b = DateRange(D(2024, 1, 10), D(2024, 1, 20))
    assert not a.overlaps(b)
    assert not b.overlaps(a)
    assert a.intersection(b) is None


def test_shift_and_str():
    r = DateRange(D(2024, 12, 30), D(2025, 1, 2)).shift(2)
    assert str(r) == "2025-01-01..2025-01-04"
