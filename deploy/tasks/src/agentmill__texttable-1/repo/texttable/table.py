"""The :class:`Table` container."""

from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, List, Optional, Sequence

from .styles import get_style

ALIGNMENTS = ("left", "right", "center")


def cell_text(value: Any) -> str:
    """Convert a cell value to text: ``None`` becomes an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def looks_numeric(text: str) -> bool:
    """Whether *text* reads as a number (used for default alignment)."""
    try:
        Decimal(text.replace(",", ""))
    except InvalidOperation:
        return False
    return True


class Table:
    """Rows of cells plus rendering options.

    *headers* is optional; without it the table has no header row and the
    column count is fixed by the first row added.  *max_col_width* wraps
    cells wider than that many characters onto several lines.
    """

    def __init__(
        self,
        headers: Optional[Sequence[Any]] = None,
        *,
        style: Any = "ascii",
        max_col_width: Optional[int] = None,
    ) -> None:
        self.headers: Optional[List[str]] = [cell_text(h) for h in headers] if headers is not None else None
        self.rows: List[List[str]] = []
        self.style = get_style(style)
        if max_col_width is not None and max_col_width < 1:
            raise ValueError("max_col_width must be at least 1")
        self.max_col_width = max_col_width
        self._align: dict = {}

    @property
    def column_count(self) -> int:
        if self.headers is not None:
            return len(self.headers)
        return len(self.rows[0]) if self.rows else 0

    def add_row(self, row: Sequence[Any]) -> None:
        cells = [cell_text(v) for v in row]
        expected = self.column_count
        if expected and len(cells) != expected:
            raise ValueError(f"row has {len(cells)} cells, expected {expected}")
        self.rows.append(cells)

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.add_row(row)

    def set_align(self, column: int, align: str) -> None:
        """Force the alignment of *column* (0-based)."""
        if align not in ALIGNMENTS:
            raise ValueError(f"align must be one of {ALIGNMENTS}")
        if not 0 <= column < self.column_count:
            raise IndexError(f"no column {column}")
        self._align[column] = align

    def alignments(self) -> List[str]:
        """Per-column alignment: explicit, else right for all-numeric columns."""
        result = []
        for col in range(self.column_count):
            if col in self._align:
                result.append(self._align[col])
                continue
            values = [row[col] for row in self.rows if row[col]]
            numeric = bool(values) and all(looks_numeric(v) for v in values)
            result.append("right" if numeric else "left")
        return result

    def render(self) -> str:
        from .render import render_table

        return render_table(self)

    __str__ = render
