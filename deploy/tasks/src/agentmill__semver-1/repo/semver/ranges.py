"""npm-style version ranges.

A range is a ``||``-separated list of comparator sets; a version satisfies
the range when it satisfies every comparator of at least one set.

Supported comparators: ``>=1.2.3``, ``>1.2.3``, ``<=1.2.3``, ``<1.2.3``,
``=1.2.3`` (or a bare version), ``^1.2.3``, ``~1.2.3`` and wildcards
``1.x`` / ``1.2.x`` / ``*``.
"""

import operator
import re
from typing import Callable, Iterable, List, Optional, Tuple

from .compare import max_version
from .version import Version

_OPS: dict = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "=": operator.eq,
}
_WILDCARD = re.compile(r"^(\d+)(?:\.(\d+|[xX*]))?(?:\.[xX*])?$|^[xX*]$")


class RangeError(ValueError):
    """The range expression is malformed."""


Comparator = Tuple[Callable[[Version, Version], bool], Version]


def _wildcard(text: str) -> Optional[List[Comparator]]:
    m = _WILDCARD.match(text)
    if not m or not any(c in text for c in "xX*"):
        return None
    if m.group(1) is None:
        return []  # "*": anything
    major = int(m.group(1))
    minor = m.group(2)
    if minor is None or not minor.isdigit():
        return [(operator.ge, Version(major)), (operator.lt, Version(major + 1))]
    return [(operator.ge, Version(major, int(minor))), (operator.lt, Version(major, int(minor) + 1))]


def _expand(term: str) -> List[Comparator]:
    wild = _wildcard(term)
    if wild is not None:
        return wild
    if term[0] in "^~":
        v = Version.parse(term[1:])
        if term[0] == "~":
            upper = Version(v.major, v.minor + 1)
        elif v.major > 0:
            upper = Version(v.major + 1)
        elif v.minor > 0:
            upper = Version(0, v.minor + 1)
        else:
            upper = Version(0, 0, v.patch + 1)
        return [(operator.ge, v), (operator.lt, upper)]
    for symbol in (">=", "<=", ">", "<", "="):
        if term.startswith(symbol):
            return [(_OPS[symbol], Version.parse(term[len(symbol):]))]
    return [(operator.eq, Version.parse(term))]


class Range:
    """A parsed range expression; use ``version in range``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._sets: List[List[Comparator]] = []
        for part in text.split("||"):
            terms = re.sub(r"(>=|<=|>|<|=)\s+", r"\1", part).split()
            if not terms:
                raise RangeError(f"empty comparator set in {text!r}")
            try:
                self._sets.append([c for term in terms for c in _expand(term)])
            except ValueError as exc:
                raise RangeError(f"invalid range {text!r}: {exc}") from None

    def __contains__(self, version) -> bool:
        v = version if isinstance(version, Version) else Version.parse(version)
        return any(all(op(v, bound) for op, bound in cset) for cset in self._sets)

    def filter(self, versions: Iterable) -> List[Version]:
        return [v if isinstance(v, Version) else Version.parse(v) for v in versions if v in self]

    def max_satisfying(self, versions: Iterable) -> Optional[Version]:
        """The highest version in *versions* that satisfies the range."""
        return max_version(self.filter(versions))

    def __repr__(self) -> str:
        return f"Range({self.text!r})"
