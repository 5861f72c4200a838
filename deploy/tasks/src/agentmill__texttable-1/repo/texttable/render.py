"""Turn a :class:`~texttable.table.Table` into text."""

from typing import List, Sequence

from .layout import column_widths, layout_row
from .styles import BorderStyle


def pad(text: str, width: int, align: str) -> str:
    """Pad *text* with spaces to *width* according to *align*."""
    if align == "right":
        return text.rjust(width)
    if align == "center":
        return text.center(width)
    return text.ljust(width)


def rule(widths: Sequence[int], style: BorderStyle, fill: str, aligns: Sequence[str] = ()) -> str:
    """A horizontal rule made of *fill*, with junctions at column boundaries."""
    parts = []
    for col, width in enumerate(widths):
        segment = [fill] * (width + 2 * style.padding)
        if aligns and style.align_markers:
            if aligns[col] in ("right", "center"):
                segment[-1] = ":"
            if aligns[col] == "center":
                segment[0] = ":"
        parts.append("".join(segment))
    inner = style.junction.join(parts)
    return f"{style.junction}{inner}{style.junction}" if style.outer else inner


def content_line(cells: Sequence[str], widths: Sequence[int], aligns: Sequence[str], style: BorderStyle) -> str:
    space = " " * style.padding
    parts = [f"{space}{pad(cell, width, align)}{space}" for cell, width, align in zip(cells, widths, aligns)]
    inner = style.vertical.join(parts)
    line = f"{style.vertical}{inner}{style.vertical}" if style.outer else inner
    return line.rstrip() if not style.outer else line


def render_table(table) -> str:
    """Render *table* with its style; the result has no trailing newline."""
    style = table.style
    widths = column_widths(table.headers, table.rows, table.max_col_width)
    if not widths:
        return ""
    aligns = table.alignments()
    lines: List[str] = []
    if style.horizontal:
        lines.append(rule(widths, style, style.horizontal))
    if table.headers is not None:
        header_aligns = ["center" if a == "center" else "left" for a in aligns]
        for physical in layout_row(table.headers, table.max_col_width):
            lines.append(content_line(physical, widths, header_aligns, style))
        if style.header_horizontal:
            lines.append(rule(widths, style, style.header_horizontal, aligns))
    for row in table.rows:
        for physical in layout_row(row, table.max_col_width):
            lines.append(content_line(physical, widths, aligns, style))
    if style.horizontal:
        lines.append(rule(widths, style, style.horizontal))
    return "\n".join(lines)
