"""Tokenizer for arithmetic expressions."""

from dataclasses import dataclass
from typing import List

# Longest operators first, so that "**" is not read as two "*".
OPERATORS = ("**", "+", "-", "*", "/", "%")
PUNCTUATION = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA"}


class CalcError(Exception):
    """Base class of every error raised by this package."""


class TokenizeError(CalcError):
    """The input contains a character that cannot start a token."""


@dataclass(frozen=True)
class Token:
    """A token: ``kind`` is NUMBER, NAME, OP, LPAREN, RPAREN, COMMA or EOF."""

    kind: str
    text: str
    pos: int


def _scan_number(source: str, i: int) -> int:
    """Return the index just past the number literal starting at *i*."""
    n = len(source)
    seen_dot = False
    while i < n and (source[i].isdigit() or (source[i] == "." and not seen_dot)):
        seen_dot = seen_dot or source[i] == "."
        i += 1
    if i < n and source[i] in "eE":  # optional exponent: 1e3, 2.5E-4
        j = i + 1
        if j < n and source[j] in "+-":
            j += 1
        if j < n and source[j].isdigit():
            i = j
            while i < n and source[i].isdigit():
                i += 1
    return i


def tokenize(source: str) -> List[Token]:
    """Split *source* into tokens, ending with a single EOF token."""
    tokens: List[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit() or (ch == "." and i + 1 < n and source[i + 1].isdigit()):
            end = _scan_number(source, i)
            tokens.append(Token("NUMBER", source[i:end], i))
            i = end
        elif ch.isalpha() or ch == "_":
            start = i
            while i < n and (source[i].isalnum() or source[i] == "_"):
                i += 1
            tokens.append(Token("NAME", source[start:i], start))
        elif ch in PUNCTUATION:
            tokens.append(Token(PUNCTUATION[ch], ch, i))
            i += 1
        else:
            for op in OPERATORS:
                if source.startswith(op, i):
                    tokens.append(Token("OP", op, i))
                    i += len(op)
                    break
            else:
                raise TokenizeError(f"unexpected character {ch!r} at position {i}")
    tokens.append(Token("EOF", "", n))
    return tokens
