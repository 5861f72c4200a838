"""globmatch - gitignore-flavoured glob matching for relative paths.

* :mod:`globmatch.paths` normalises paths to a canonical ``a/b/c`` form,
* :mod:`globmatch.translate` turns a glob pattern into a regular expression,
* :mod:`globmatch.matcher` matches paths against patterns, alone or as
  include/exclude lists,
* :mod:`globmatch.walk` lists the files below a directory that match.

Example::

    >>> from globmatch import match, Matcher
    >>> match("docs/*.md", "docs/index.md")
    True
    >>> match("docs/*.md", "docs/api/index.md")
    False
    >>> Matcher(include=["*.md"], exclude=["drafts/**"]).filter(
    ...     ["README.md", "drafts/todo.md", "docs/api.md"])
    ['README.md', 'docs/api.md']

Patterns without a ``/`` are matched against the last path segment only,
like in ``.gitignore``; patterns with a ``/`` are matched against the whole
path.  Matching is case-sensitive unless ``case_sensitive=False`` is given.
"""

from .matcher import Matcher, compile_pattern, match
from .paths import normalize
from .translate import PatternError, translate
from .walk import glob, iter_files

__all__ = [
    "Matcher",
    "PatternError",
    "compile_pattern",
    "glob",
    "iter_files",
    "match",
    "normalize",
    "translate",
]

__version__ = "0.6.0"
