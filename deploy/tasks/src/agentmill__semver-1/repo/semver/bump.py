"""Compute the next version.

All functions drop build metadata; a new version is a new build.
"""

from .version import Version

DEFAULT_PRERELEASE_TOKEN = "rc"


def bump_major(v: Version) -> Version:
    """``1.4.2 -> 2.0.0``; a pre-release of ``x.0.0`` is finalised instead."""
    if v.is_prerelease and v.minor == 0 and v.patch == 0:
        return v.finalize()
    return Version(v.major + 1, 0, 0)


def bump_minor(v: Version) -> Version:
    """``1.4.2 -> 1.5.0``; a pre-release of ``x.y.0`` is finalised instead."""
    if v.is_prerelease and v.patch == 0:
        return v.finalize()
    return Version(v.major, v.minor + 1, 0)


def bump_patch(v: Version) -> Version:
    """``1.4.2 -> 1.4.3``; any pre-release is finalised instead."""
    if v.is_prerelease:
        return v.finalize()
    return Version(v.major, v.minor, v.patch + 1)


def bump_prerelease(v: Version, token: str = DEFAULT_PRERELEASE_TOKEN) -> Version:
    """The next pre-release.

    * ``1.4.2 -> 1.4.3-rc.1`` (a release starts the next patch's pre-releases)
    * ``1.5.0-rc.1 -> 1.5.0-rc.2`` (a trailing number is incremented)
    * ``1.5.0-beta -> 1.5.0-beta.1`` (otherwise ``.1`` is appended)
    """
    if not v.is_prerelease:
        return Version(v.major, v.minor, v.patch + 1, (token, "1"))
    ids = list(v.prerelease)
    if ids[-1].isdigit():
        ids[-1] = str(int(ids[-1]) + 1)
    else:
        ids.append("1")
    return Version(v.major, v.minor, v.patch, tuple(ids))


def bump(v: Version, part: str, token: str = DEFAULT_PRERELEASE_TOKEN) -> Version:
    """Dispatch on *part*: ``major``, ``minor``, ``patch`` or ``prerelease``."""
    if part == "prerelease":
        return bump_prerelease(v, token)
    funcs = {"major": bump_major, "minor": bump_minor, "patch": bump_patch}
    try:
        return funcs[part](v)
    except KeyError:
        raise ValueError(f"unknown part {part!r}") from None
