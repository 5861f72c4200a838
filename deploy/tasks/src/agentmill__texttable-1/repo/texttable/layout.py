"""Column widths and cell wrapping."""

import textwrap
from typing import List, Optional, Sequence


def cell_lines(text: str, width: Optional[int] = None) -> List[str]:
    """Split a cell into display lines.

    Explicit newlines are kept.  With *width*, each line longer than that is
    wrapped at spaces (or broken mid-word when a single word is too long).
    """
    lines: List[str] = []
    for line in text.split("\n"):
        if width is None or len(line) <= width:
            lines.append(line)
        else:
            lines.extend(textwrap.wrap(line, width=width, break_long_words=True) or [""])
    return lines


def text_width(text: str) -> int:
    """Width of a (possibly multi-line) cell: its longest line."""
    return max(len(line) for line in text.split("\n"))


def column_widths(
    headers: Optional[Sequence[str]],
    rows: Sequence[Sequence[str]],
    max_col_width: Optional[int] = None,
) -> List[int]:
    """The width of each column: its widest cell, capped at *max_col_width*.

    A column is never narrower than one character, so that empty columns
    stay visible.
    """
    all_rows = ([list(headers)] if headers is not None else []) + [list(r) for r in rows]
    if not all_rows:
        return []
    widths = [1] * len(all_rows[0])
    for row in all_rows:
        for col, cell in enumerate(row):
            for line in cell_lines(cell, max_col_width):
                widths[col] = max(widths[col], len(line))
    return widths


def layout_row(row: Sequence[str], max_col_width: Optional[int] = None) -> List[List[str]]:
    """Turn one row of cells into physical lines: a list of lines per line index.

    Cells with fewer lines than the tallest cell are padded with empty lines.
    """
    columns = [cell_lines(cell, max_col_width) for cell in row]
    height = max((len(c) for c in columns), default=0)
    for lines in columns:
        lines.extend([""] * (height - len(lines)))
    return [[lines[i] for lines in columns] for i in range(height)]
