import pytest

from semver import Version
from semver.bump import bump, bump_major, bump_minor, bump_patch, bump_prerelease

V = Version.parse


def test_bump_release_parts():
    assert bump_major(V("1.4.2")) == V("2.0.0")
    assert bump_minor(V("1.4.2+b1")) == V("1.5.0")
    assert bump_patch(V("1.4.2")) == V("1.4.3")


def test_bumping_a_prerelease_finalises_it():
    assert bump_patch(V("1.4.3-rc.1")) == V("1.4.3")
    assert bump_minor(V("1.5.0-rc.1")) == V("1.5.0")
    assert bump_major(V("2.0.0-alpha")) == V("2.0.0")
    assert bump_major(V("2.1.0-alpha")) == V("3.0.0")


def test_bump_prerelease():
    assert str(bump_prerelease(V("1.4.2"))) == "1.4.3-rc.1"
    assert str(bump_prerelease(V("1.5.0-rc.1"))) == "1.5.0-rc.2"
    assert str(bump_prerelease(V("1.5.0-beta"))) == "1.5.0-beta.1"
    assert str(bump_prerelease(V("1.4.2"), token="alpha")) == "1.4.3-alpha.1"


def test_bump_dispatch():
    assert bump(V("0.1.0"), "minor") == V("0.2.0")
    with pytest.raises(ValueError):
        bump(V("0.1.0"), "micro")
