import pytest

from semver import InvalidVersion, Version


def test_parse_full_version():
    v = Version.parse("1.4.0-rc.1+build.7")
    assert (v.major, v.minor, v.patch) == (1, 4, 0)
    assert v.prerelease == ("rc", "1")
    assert v.build == ("build", "7")
    assert str(v) == "1.4.0-rc.1+build.7"


def test_leading_v_is_accepted():
    assert Version.parse("v2.0.1") == Version(2, 0, 1)


@pytest.mark.parametrize(
    "text",
    ["1.2", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-rc..1", "one.two.three"],
    ids=["two-parts", "leading-zero", "empty-pre", "numeric-leading-zero", "empty-build", "empty-ident", "words"],
)
def test_invalid_versions(text):
    with pytest.raises(InvalidVersion):
        Version.parse(text)


def test_versions_are_immutable_and_hashable():
    v = Version(1, 2, 3)
    with pytest.raises(AttributeError):
        v.major = 2
    assert len({Version.parse("1.0.0+a"), Version.parse("1.0.0+b")}) == 1


def test_repr_and_finalize():
    v = Version.parse("3.1.4-beta.2+sha.5114f85")
    assert repr(v.finalize()) == "Version('3.1.4')"
