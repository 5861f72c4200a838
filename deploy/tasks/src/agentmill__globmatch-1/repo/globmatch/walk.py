"""List the files below a directory that match a pattern."""

import os
from typing import Iterator, List, Optional

from .matcher import Matcher
from .paths import is_hidden


def iter_files(
    root: "os.PathLike[str] | str",
    matcher: Optional[Matcher] = None,
    *,
    include_hidden: bool = False,
) -> Iterator[str]:
    """Yield the files below *root* as normalised relative paths.

    Directories are visited in sorted order, so the output is stable.
    Hidden files and directories (any segment starting with ``.``) are
    skipped unless *include_hidden* is true.  With *matcher*, only the
    paths it selects are yielded.
    """
    root = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        if not include_hidden:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not include_hidden and is_hidden(rel):
                continue
            if matcher is None or matcher(rel):
                yield rel


def glob(
    root: "os.PathLike[str] | str",
    pattern: str,
    *,
    exclude: Optional[List[str]] = None,
    include_hidden: bool = False,
) -> List[str]:
    """Sorted list of files below *root* matching *pattern* (minus *exclude*)."""
    matcher = Matcher(include=[pattern], exclude=exclude or [])
    return sorted(iter_files(root, matcher, include_hidden=include_hidden))
