"""semver - Semantic Versioning 2.0.0 for Python.

* :mod:`semver.version` - the immutable :class:`Version` type and parsing,
* :mod:`semver.compare` - precedence rules, sorting and ``max_version``,
* :mod:`semver.bump` - computing the next version,
* :mod:`semver.ranges` - npm-style ranges such as ``>=1.2.0 <2.0.0``,
  ``^1.4.2``, ``~0.3.1`` and ``1.x || 2.x``.

Example::

    >>> from semver import Version, Range
    >>> Version.parse("2.0.0-rc.1") < Version.parse("2.0.0")
    True
    >>> Version.parse("1.0.0+linux") == Version.parse("1.0.0+darwin")
    True
    >>> "1.9.3" in Range("^1.2.0")
    True

Versions compare by precedence as defined in section 11 of the
specification: major, minor and patch numerically, a pre-release below the
corresponding release, and build metadata ignored.
"""

from . import bump
from .compare import compare, max_version, sort_versions
from .ranges import Range, RangeError
from .version import InvalidVersion, Version, parse

__all__ = [
    "InvalidVersion",
    "Range",
    "RangeError",
    "Version",
    "bump",
    "compare",
    "max_version",
    "parse",
    "sort_versions",
]

__version__ = "0.8.1"
