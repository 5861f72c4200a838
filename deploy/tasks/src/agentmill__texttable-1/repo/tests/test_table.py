import pytest

from texttable import Table


def test_cells_are_converted_to_text():
    t = Table(["a", "b", "c"])
    t.add_row([None, 1.5, 7])
    assert t.rows == [["", "1.5", "7"]]


def test_row_length_is_checked():
    t = Table(["a", "b"])
    with pytest.raises(ValueError):
        t.add_row([1, 2, 3])


def test_headerless_table_takes_width_from_first_row():
    t = Table()
    t.add_rows([[1, 2], [3, 4]])
    assert t.column_count == 2
    with pytest.raises(ValueError):
        t.add_row([5])


def test_numeric_columns_align_right_by_default():
    t = Table(["name", "qty", "note"])
    t.add_rows([["a", "1,000", ""], ["b", "-2.5", "x"]])
    assert t.alignments() == ["left", "right", "left"]


def test_set_align_overrides_and_validates():
    t = Table(["name", "qty"])
    t.set_align(1, "center")
    assert t.alignments()[1] == "center"
    with pytest.raises(ValueError):
        t.set_align(0, "justify")
    with pytest.raises(IndexError):
        t.set_align(5, "left")


def test_unknown_style():
    with pytest.raises(ValueError):
        Table(style="fancy")
