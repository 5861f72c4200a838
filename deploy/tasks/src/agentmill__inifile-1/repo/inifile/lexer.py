"""Line-level tokenizer for INI text.

The lexer turns raw text into a flat list of :class:`Token` objects, one per
physical line.  It knows nothing about sections or duplicate keys; that is
the parser's job.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

COMMENT_PREFIXES = ("#", ";")
DELIMITERS = ("=", ":")


class ParseError(ValueError):
    """Raised when the input is not valid INI text."""

    def __init__(self, message: str, lineno: int) -> None:
        super().__init__(f"line {lineno}: {message}")
        self.lineno = lineno


@dataclass(frozen=True)
class Token:
    """One classified line of input.

    ``kind`` is one of ``"section"``, ``"pair"``, ``"comment"``, ``"blank"``
    or ``"continuation"``.
    """

    kind: str
    lineno: int
    name: str = ""
    value: str = ""


def split_pair(text: str) -> Optional[Tuple[str, str]]:
    """Split ``key = value`` (or ``key: value``) into a stripped pair.

    Returns ``None`` when the line contains no delimiter at all.
    """
    positions = [text.find(delim) for delim in DELIMITERS if delim in text]
    if not positions:
        return None
    index = max(positions)
    key = text[:index].strip()
    value = text[index + 1:].strip()
    return key, value


def strip_inline_comment(value: str) -> str:
    """Remove a trailing ``;comment`` or ``#comment`` from *value*.

    An inline comment must be preceded by whitespace so that values such as
    ``color = #ff0000`` survive untouched.  Quoted values are left alone.
    """
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value
    for i, ch in enumerate(value):
        if ch in COMMENT_PREFIXES and i > 0 and value[i - 1] in " \t":
            return value[:i].rstrip()
    return value


def tokenize(text: str) -> List[Token]:
    """Classify every line of *text* and return the resulting tokens."""
    tokens: List[Token] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            tokens.append(Token("blank", lineno))
        elif stripped[0] in COMMENT_PREFIXES:
            tokens.append(Token("comment", lineno, value=stripped[1:].strip()))
        elif raw[0] in " \t":
            tokens.append(Token("continuation", lineno, value=stripped))
        elif stripped.startswith("["):
            if not stripped.endswith("]"):
                raise ParseError("unterminated section header", lineno)
            name = stripped[1:-1].strip()
            if not name:
                raise ParseError("empty section name", lineno)
            tokens.append(Token("section", lineno, name=name))
        else:
            pair = split_pair(stripped)
            if pair is None:
                raise ParseError(f"expected 'key = value', got {stripped!r}", lineno)
            key, value = pair
            if not key:
                raise ParseError("missing key before delimiter", lineno)
            tokens.append(
                Token("pair", lineno, name=key, value=strip_inline_comment(value))
            )
    return tokens
