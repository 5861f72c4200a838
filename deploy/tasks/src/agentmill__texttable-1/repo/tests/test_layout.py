from texttable.layout import cell_lines, column_widths, layout_row


def test_column_widths_use_widest_cell():
    assert column_widths(["id", "name"], [["1", "Ann"], ["22", "Bartholomew"]]) == [2, 11]


def test_empty_columns_stay_visible():
    assert column_widths(None, [["", ""]]) == [1, 1]


def test_cell_lines_wraps_at_spaces():
    assert cell_lines("the quick brown fox", 9) == ["the quick", "brown fox"]


def test_cell_lines_keeps_explicit_newlines():
    assert cell_lines("a\nbb") == ["a", "bb"]


def test_layout_row_pads_short_cells():
    assert layout_row(["a\nb\nc", "x"]) == [["a", "x"], ["b", ""], ["c", ""]]
