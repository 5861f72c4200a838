"""texttable - render rows of data as plain-text tables.

The public entry point is :class:`Table`::

    >>> from texttable import Table
    >>> t = Table(["id", "name"], style="markdown")
    >>> t.add_row([1, "Ann"])
    >>> t.add_row([22, "Bob"])
    >>> print(t)
    | id | name |
    |---:|------|
    |  1 | Ann  |
    | 22 | Bob  |

Internals:

* :mod:`texttable.table` - the :class:`Table` container and its options,
* :mod:`texttable.layout` - column widths and cell wrapping,
* :mod:`texttable.render` - turning a laid-out table into lines of text,
* :mod:`texttable.styles` - border styles (``ascii``, ``markdown``,
  ``plain``).

Alignment: header cells are left-aligned (or centred when the column is
centred); body cells follow :meth:`Table.alignments`, which right-aligns
columns whose non-empty cells all look like numbers.  Call
:meth:`Table.set_align` to override a column.

Cells may contain newlines; with ``max_col_width`` long lines are wrapped
at spaces.  Every rendered line of a table has the same width, and the
result never ends with a newline, so it can be embedded in log messages or
written with ``print``.  Rendering does not modify the table, so rows can
be added after a table has been printed and it can be rendered again.
"""

from .styles import STYLES, BorderStyle, get_style
from .table import Table

__all__ = ["BorderStyle", "STYLES", "Table", "get_style"]

__version__ = "0.9.2"
