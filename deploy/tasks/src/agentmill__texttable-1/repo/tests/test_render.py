from texttable import Table


def make(style="ascii"):
    t = Table(["name", "qty"], style=style)
    t.add_row(["apple", 3])
    t.add_row(["fig", 12])
    return t


def test_ascii_style():
    assert str(make()) == (
        "+-------+-----+\n"
        "| name  | qty |\n"
        "+=======+=====+\n"
        "| apple |   3 |\n"
        "| fig   |  12 |\n"
        "+-------+-----+"
    )


def test_markdown_style_marks_alignment():
    assert str(make("markdown")) == (
        "| name  | qty |\n"
        "|-------|----:|\n"
        "| apple |   3 |\n"
        "| fig   |  12 |"
    )


def test_plain_style_strips_trailing_spaces():
    t = Table(["name", "qty"], style="plain")
    t.set_align(1, "left")
    t.add_row(["apple", 3])
    assert str(t) == "name  qty\napple 3"


def test_center_alignment():
    t = Table(["x"])
    t.set_align(0, "center")
    t.add_row(["abc"])
    t.add_row(["a"])
    assert str(t).splitlines()[3:5] == ["| abc |", "|  a  |"]


def test_multiline_and_wrapped_cells():
    t = Table(["k", "v"], max_col_width=5)
    t.add_row(["a", "one two three"])
    assert str(t).splitlines()[3:6] == [
        "| a | one   |",
        "|   | two   |",
        "|   | three |",
    ]


def test_empty_table_renders_nothing():
    assert str(Table()) == ""
