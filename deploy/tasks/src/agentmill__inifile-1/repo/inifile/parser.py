"""Build an :class:`~inifile.document.IniDocument` from lexer tokens."""

from typing import IO

from .document import IniDocument
from .lexer import ParseError, tokenize

DEFAULT_SECTION = "default"


def unquote(value: str) -> str:
    """Strip one pair of matching single or double quotes from *value*."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def loads(
    text: str,
    *,
    allow_duplicates: bool = False,
    default_section: str = DEFAULT_SECTION,
) -> IniDocument:
    """Parse INI *text* into an :class:`IniDocument`.

    Keys that appear before the first section header are stored in
    *default_section*.  A repeated section or a repeated key inside a section
    raises :class:`ParseError` unless *allow_duplicates* is true, in which
    case sections are merged and the last value of a key wins.

    Indented lines continue the value of the previous key; the pieces are
    joined with newlines.
    """
    doc = IniDocument()
    current = None
    last_key = None
    for tok in tokenize(text):
        if tok.kind == "section":
            if doc.has_section(tok.name) and not allow_duplicates:
                raise ParseError(f"duplicate section {tok.name!r}", tok.lineno)
            current = doc.add_section(tok.name, exist_ok=True)
            last_key = None
        elif tok.kind == "pair":
            if current is None:
                current = doc.add_section(default_section, exist_ok=True)
            if tok.name in current and not allow_duplicates:
                raise ParseError(
                    f"duplicate key {tok.name!r} in section {current.name!r}",
                    tok.lineno,
                )
            current[tok.name] = unquote(tok.value)
            last_key = tok.name
        elif tok.kind == "continuation":
            if current is None or last_key is None:
                raise ParseError("continuation line without a key", tok.lineno)
            previous = current[last_key]
            current[last_key] = f"{previous}\n{tok.value}" if previous else tok.value
        # comments and blank lines carry no data
    return doc


def load(fp: IO[str], **kwargs) -> IniDocument:
    """Parse the contents of the text file object *fp*; see :func:`loads`."""
    return loads(fp.read(), **kwargs)
