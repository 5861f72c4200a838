"""Match paths against glob patterns."""

import re
from functools import lru_cache
from typing import Iterable, List, Pattern, Sequence

from .paths import basename, normalize
from .translate import translate


@lru_cache(maxsize=512)
def compile_pattern(pattern: str, case_sensitive: bool = True) -> Pattern[str]:
    """Compile *pattern* to an anchored regular expression (cached)."""
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.compile(r"\A(?:" + translate(pattern) + r")\Z", flags)


def _prepare(pattern: str) -> "tuple[str, bool]":
    """Normalise *pattern*; return it and whether it applies to basenames only."""
    anchored = pattern.startswith("/")
    pattern = pattern.strip("/") if anchored else pattern.rstrip("/")
    return pattern, ("/" not in pattern and not anchored)


def match(pattern: str, path: str, *, case_sensitive: bool = True) -> bool:
    """Whether *path* matches the glob *pattern*.

    A pattern without ``/`` is matched against the basename of *path*, so
    ``*.py`` matches ``a/b/c.py``.  A leading ``/`` anchors such a pattern
    at the root instead: ``/setup.py`` matches only the top-level file.
    """
    pattern, basename_only = _prepare(pattern)
    target = basename(path) if basename_only else normalize(path)
    return compile_pattern(pattern, case_sensitive).match(target) is not None


class Matcher:
    """Include/exclude pattern lists, evaluated like a file filter.

    A path is selected when it matches at least one include pattern and no
    exclude pattern.
    """

    def __init__(
        self,
        include: Sequence[str] = ("**",),
        exclude: Sequence[str] = (),
        *,
        case_sensitive: bool = True,
    ) -> None:
        self.include = list(include)
        self.exclude = list(exclude)
        self.case_sensitive = case_sensitive
        for pattern in self.include + self.exclude:
            compile_pattern(_prepare(pattern)[0], case_sensitive)  # fail early

    def __call__(self, path: str) -> bool:
        def hit(patterns: Iterable[str]) -> bool:
            return any(match(p, path, case_sensitive=self.case_sensitive) for p in patterns)

        return hit(self.include) and not hit(self.exclude)

    def filter(self, paths: Iterable[str]) -> List[str]:
        """The selected paths, in their original order."""
        return [p for p in paths if self(p)]

    def __repr__(self) -> str:
        return f"Matcher(include={self.include!r}, exclude={self.exclude!r})"
