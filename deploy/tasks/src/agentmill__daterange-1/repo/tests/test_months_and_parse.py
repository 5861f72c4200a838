from datetime import date as D

import pytest

from daterange import DateRange, add_months, iter_months, month_range, parse_range


def test_add_months_clamps_day():
    assert add_months(D(2024, 1, 31), 1) == D(2024, 2, 29)
    assert add_months(D(2023, 1, 31), 1) == D(2023, 2, 28)
    assert add_months(D(2024, 3, 15), -3) == D(2023, 12, 15)


def test_month_range():
    assert month_range(2024, 12) == DateRange(D(2024, 12, 1), D(2025, 1, 1))


def test_iter_months():
    parts = list(iter_months(DateRange(D(2024, 1, 20), D(2024, 3, 5))))
    assert [str(p) for p in parts] == [
        "2024-01-20..2024-02-01",
        "2024-02-01..2024-03-01",
        "2024-03-01..2024-03-05",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-01-01..2024-01-15", "2024-01-01..2024-01-15"),
        ("2024-01-30+3", "2024-01-30..2024-02-02"),
        ("2024-02", "2024-02-01..2024-03-01"),
        ("2024", "2024-01-01..2025-01-01"),
        ("2024-W01", "2024-01-01..2024-01-08"),
        ("2024-05-17", "2024-05-17..2024-05-18"),
    ],
    ids=["explicit", "span", "month", "year", "iso-week", "single-day"],
)
def test_parse_range(text, expected):
    assert str(parse_range(text)) == expected


@pytest.mark.parametrize("text", ["2024-13", "2024-W54", "yesterday", "2024-1-5"], ids=["month-13", "week-54", "word", "short-date"])
def test_parse_range_rejects(text):
    with pytest.raises(ValueError):
        parse_range(text)
