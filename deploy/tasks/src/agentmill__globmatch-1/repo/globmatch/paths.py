"""Canonical form of relative, ``/``-separated paths.

All matching in this package is done on normalised paths: forward slashes
only, no ``.`` segments, no duplicate or trailing slashes.
"""

from typing import List


def normalize(path: str) -> str:
    """Return the canonical form of *path*.

    >>> normalize(".\\\\src//app/./main.py")
    'src/app/main.py'

    ``..`` segments are kept as they are: resolving them would need the
    file system.  A leading ``/`` is dropped because all paths are relative
    to the root being matched.
    """
    path = path.replace("\\", "/")
    segments = [seg for seg in path.split("/") if seg not in ("", ".")]
    return "/".join(segments)


def split(path: str) -> List[str]:
    """The segments of *path* after normalisation (``[]`` for the root)."""
    normalized = normalize(path)
    return normalized.split("/") if normalized else []


def join(*parts: str) -> str:
    """Join path fragments and normalise the result."""
    return normalize("/".join(parts))


def basename(path: str) -> str:
    """The last segment of *path* (``""`` for the root)."""
    segments = split(path)
    return segments[-1] if segments else ""


def parent(path: str) -> str:
    """*path* without its last segment (``""`` for a top-level entry)."""
    return "/".join(split(path)[:-1])


def is_hidden(path: str) -> bool:
    """Whether any segment of *path* starts with a dot."""
    return any(seg.startswith(".") and seg not in (".", "..") for seg in split(path))


def depth(path: str) -> int:
    """Number of segments: ``depth("a/b/c") == 3``."""
    return len(split(path))
