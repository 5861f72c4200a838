"""The :class:`Version` type and parsing."""

import re
from functools import total_ordering
from typing import Iterable, Tuple, Union

_IDENT = r"[0-9A-Za-z-]+"
_PATTERN = re.compile(
    r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?$"
)


class InvalidVersion(ValueError):
    """The text is not a valid semantic version."""


def _check_identifiers(ids: Tuple[str, ...], what: str, numeric_rule: bool) -> None:
    for ident in ids:
        if not re.fullmatch(_IDENT, ident):
            raise InvalidVersion(f"invalid {what} identifier {ident!r}")
        if numeric_rule and ident.isdigit() and len(ident) > 1 and ident[0] == "0":
            raise InvalidVersion(f"numeric {what} identifier {ident!r} has a leading zero")


@total_ordering
class Version:
    """An immutable semantic version.

    ``prerelease`` and ``build`` are tuples of identifier strings, e.g.
    ``("rc", "1")`` for ``-rc.1``.
    """

    __slots__ = ("major", "minor", "patch", "prerelease", "build")

    def __init__(
        self,
        major: int,
        minor: int = 0,
        patch: int = 0,
        prerelease: Iterable[str] = (),
        build: Iterable[str] = (),
    ) -> None:
        for name, value in (("major", major), ("minor", minor), ("patch", patch)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidVersion(f"{name} must be a non-negative int, got {value!r}")
        prerelease, build = tuple(prerelease), tuple(build)
        _check_identifiers(prerelease, "pre-release", numeric_rule=True)
        _check_identifiers(build, "build", numeric_rule=False)
        object.__setattr__(self, "major", major)
        object.__setattr__(self, "minor", minor)
        object.__setattr__(self, "patch", patch)
        object.__setattr__(self, "prerelease", prerelease)
        object.__setattr__(self, "build", build)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Version is immutable")

    @classmethod
    def parse(cls, text: str) -> "Version":
        """Parse ``1.2.3``, ``1.2.3-rc.1``, ``1.2.3+build.5`` (a leading ``v`` is allowed)."""
        if not isinstance(text, str):
            raise TypeError(f"expected str, got {type(text).__name__}")
        raw = text.strip()
        if raw[:1] in ("v", "V"):
            raw = raw[1:]
        m = _PATTERN.match(raw)
        if not m:
            raise InvalidVersion(f"invalid version {text!r}")
        pre, build = m.group("pre"), m.group("build")
        return cls(
            int(m.group("major")),
            int(m.group("minor")),
            int(m.group("patch")),
            tuple(pre.split(".")) if pre else (),
            tuple(build.split(".")) if build else (),
        )

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def finalize(self) -> "Version":
        """This version without pre-release and build metadata."""
        return Version(self.major, self.minor, self.patch)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        from .compare import precedence_key

        if isinstance(other, str):
            other = Version.parse(other)
        if not isinstance(other, Version):
            return NotImplemented
        return precedence_key(self) == precedence_key(other)

    def __lt__(self, other: Union["Version", str]) -> bool:
        from .compare import precedence_key

        if isinstance(other, str):
            other = Version.parse(other)
        if not isinstance(other, Version):
            return NotImplemented
        return precedence_key(self) < precedence_key(other)

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch, self.prerelease))


def parse(text: str) -> Version:
    """Shorthand for :meth:`Version.parse`."""
    return Version.parse(text)
