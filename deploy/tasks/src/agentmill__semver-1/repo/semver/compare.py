"""Precedence rules (SemVer section 11), sorting and selection.

Functions here accept :class:`~semver.version.Version` objects or version
strings interchangeably.
"""

from typing import Iterable, List, Optional, Tuple, Union

VersionLike = Union["Version", str]  # noqa: F821 - resolved lazily


def _coerce(value: VersionLike):
    from .version import Version

    return value if isinstance(value, Version) else Version.parse(value)


def _prerelease_key(prerelease: Tuple[str, ...]) -> tuple:
    """Sort key for the pre-release part.

    A version without pre-release identifiers ranks above every pre-release
    of the same ``major.minor.patch``.  Otherwise identifiers are compared
    left to right, and when all shared identifiers are equal the longer
    list ranks higher (``1.0.0-alpha < 1.0.0-alpha.1``).
    """
    if not prerelease:
        return (1, ())
    return (0, tuple(prerelease))


def precedence_key(version: VersionLike) -> tuple:
    """A key such that ``a < b`` exactly when *a* has lower precedence than *b*.

    Build metadata is not part of the key.
    """
    v = _coerce(version)
    return (v.major, v.minor, v.patch, _prerelease_key(v.prerelease))


def compare(a: VersionLike, b: VersionLike) -> int:
    """Return -1, 0 or 1 as *a* has lower, equal or higher precedence than *b*."""
    ka, kb = precedence_key(a), precedence_key(b)
    return (ka > kb) - (ka < kb)


def sort_versions(versions: Iterable[VersionLike], reverse: bool = False) -> List["Version"]:  # noqa: F821
    """Parse and sort *versions* by precedence (stable for equal precedence)."""
    return sorted((_coerce(v) for v in versions), key=precedence_key, reverse=reverse)


def max_version(
    versions: Iterable[VersionLike], include_prerelease: bool = True
) -> Optional["Version"]:  # noqa: F821
    """The highest version, or ``None`` for an empty input.

    With ``include_prerelease=False`` pre-releases are ignored.
    """
    candidates = [_coerce(v) for v in versions]
    if not include_prerelease:
        candidates = [v for v in candidates if not v.is_prerelease]
    return max(candidates, key=precedence_key, default=None)
