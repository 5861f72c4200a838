"""Border styles.

A style describes the characters used around and between cells.  Rules
(horizontal lines) are drawn from ``junction`` characters at column
boundaries and ``horizontal`` (or ``header_horizontal`` below the header)
in between.  An empty ``horizontal`` means "no rule".
"""

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class BorderStyle:
    name: str
    vertical: str          # between and around cells on content lines
    horizontal: str        # top and bottom rules
    header_horizontal: str # the rule under the header row
    junction: str          # where rules meet column boundaries
    outer: bool = True     # draw the left and right edges
    padding: int = 1       # spaces on each side of a cell
    align_markers: bool = False  # markdown-style ":" markers in the header rule

    def __post_init__(self) -> None:
        if self.padding < 0:
            raise ValueError("padding must not be negative")
        for attr in ("horizontal", "header_horizontal"):
            if len(getattr(self, attr)) > 1:
                raise ValueError(f"{attr} must be a single character or empty")


ASCII = BorderStyle(
    name="ascii",
    vertical="|",
    horizontal="-",
    header_horizontal="=",
    junction="+",
)

MARKDOWN = BorderStyle(
    name="markdown",
    vertical="|",
    horizontal="",
    header_horizontal="-",
    junction="|",
    padding=1,
    align_markers=True,
)

PLAIN = BorderStyle(
    name="plain",
    vertical=" ",
    horizontal="",
    header_horizontal="",
    junction=" ",
    outer=False,
    padding=0,
)

STYLES: Dict[str, BorderStyle] = {s.name: s for s in (ASCII, MARKDOWN, PLAIN)}


def get_style(style) -> BorderStyle:
    """Accept a :class:`BorderStyle` or the name of a built-in one."""
    if isinstance(style, BorderStyle):
        return style
    try:
        return STYLES[style]
    except KeyError:
        raise ValueError(f"unknown style {style!r}; choose from {sorted(STYLES)}") from None
