"""Translate glob patterns into regular expressions.

Supported syntax:

* ``*`` matches any run of characters except ``/``
* ``?`` matches one character except ``/``
* ``[abc]``, ``[a-z]`` and ``[!abc]`` match one character (never ``/``)
* ``{png,jpg}`` matches any of the comma-separated alternatives
* ``**`` as a whole path segment matches any number of directories

Everything else matches itself.
"""

import re
from typing import List


class PatternError(ValueError):
    """The glob pattern is malformed."""


def _char_class(pattern: str, i: int) -> "tuple[str, int]":
    """Translate the class starting at ``pattern[i] == "["``; return (regex, next index)."""
    j = i + 1
    if j < len(pattern) and pattern[j] == "!":
        j += 1
    if j < len(pattern) and pattern[j] == "]":  # a leading "]" is literal
        j += 1
    end = pattern.find("]", j)
    if end == -1:
        raise PatternError(f"unterminated character class in {pattern!r}")
    body = pattern[i + 1:end]
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    body = body.replace("\\", "\\\\").replace("^", "\\^")
    if negate:
        return f"[^/{body}]", end + 1
    return f"(?!/)[{body}]", end + 1


def _translate(pattern: str, allow_braces: bool = True) -> str:
    out: List[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                at_start = i == 0 or pattern[i - 1] == "/"
                at_end = i + 2 == n or pattern[i + 2] == "/"
                if not (at_start and at_end):
                    raise PatternError(f"'**' must be a whole path segment in {pattern!r}")
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            regex, i = _char_class(pattern, i)
            out.append(regex)
            continue
        elif c == "{" and allow_braces:
            end = pattern.find("}", i)
            if end == -1:
                raise PatternError(f"unterminated '{{' in {pattern!r}")
            alternatives = pattern[i + 1:end].split(",")
            out.append("(?:" + "|".join(_translate(a, allow_braces=False) for a in alternatives) + ")")
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def translate(pattern: str) -> str:
    """Return a regular expression (without anchors) equivalent to *pattern*."""
    if not pattern:
        raise PatternError("empty pattern")
    return _translate(pattern)
