"""Serialise an :class:`~inifile.document.IniDocument` back to INI text."""

from typing import IO

from .document import IniDocument
from .lexer import COMMENT_PREFIXES

CONTINUATION_INDENT = "    "


def needs_quotes(value: str) -> bool:
    """Whether *value* would not survive a round trip without quoting.

    Leading or trailing whitespace is stripped by the lexer, a leading
    comment character would start an inline comment, and a value that is
    itself quoted would lose its quotes.
    """
    if not value:
        return False
    if value != value.strip():
        return True
    if value[0] in COMMENT_PREFIXES:
        return True
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return True
    return any(
        ch in COMMENT_PREFIXES and value[i - 1] in " \t"
        for i, ch in enumerate(value)
        if i > 0
    )


def format_value(value: str) -> str:
    """Quote the first line of *value* if needed and indent the others."""
    first, *rest = value.split("\n")
    if needs_quotes(first):
        first = f'"{first}"'
    lines = [first]
    lines.extend(CONTINUATION_INDENT + line for line in rest)
    return "\n".join(lines)


def dumps(doc: IniDocument, *, delimiter: str = " = ") -> str:
    """Return *doc* as INI text; sections are separated by a blank line."""
    if delimiter.strip() not in ("=", ":"):
        raise ValueError(f"unsupported delimiter {delimiter!r}")
    blocks = []
    for name in doc.sections():
        lines = [f"[{name}]"]
        for key, value in doc[name].items():
            lines.append(f"{key}{delimiter}{format_value(value)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def dump(doc: IniDocument, fp: IO[str], **kwargs) -> None:
    """Write :func:`dumps` output to the text file object *fp*."""
    fp.write(dumps(doc, **kwargs))
