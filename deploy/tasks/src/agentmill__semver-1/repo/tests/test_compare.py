from semver import Version, compare, max_version, sort_versions


def test_core_fields_compare_numerically():
    assert Version.parse("1.10.0") > Version.parse("1.9.0")
    assert Version.parse("2.0.0") > Version.parse("1.99.99")


def test_prerelease_is_lower_than_release():
    assert Version.parse("1.0.0-rc.1") < Version.parse("1.0.0")
    assert Version.parse("1.0.0-rc.1") > Version.parse("0.9.9")


def test_build_metadata_is_ignored():
    assert compare("1.0.0+linux", "1.0.0+darwin") == 0
    assert Version.parse("1.0.0+2") == "1.0.0"


def test_prerelease_identifiers_compare_left_to_right():
    assert Version.parse("1.0.0-alpha") < Version.parse("1.0.0-alpha.1")
    assert Version.parse("1.0.0-alpha.1") < Version.parse("1.0.0-alpha.beta")
    assert Version.parse("1.0.0-alpha.beta") < Version.parse("1.0.0-beta")
    assert Version.parse("1.0.0-beta.11") < Version.parse("1.0.0-rc.1")


def test_sort_versions():
    got = sort_versions(["1.0.0", "0.9.0", "1.0.0-beta", "1.0.0-alpha", "0.10.0"])
    assert [str(v) for v in got] == ["0.9.0", "0.10.0", "1.0.0-alpha", "1.0.0-beta", "1.0.0"]


def test_max_version():
    assert max_version(["1.2.0", "1.3.0-rc.1", "1.2.5"]) == Version.parse("1.3.0-rc.1")
    assert max_version(["1.2.0", "1.3.0-rc.1"], include_prerelease=False) == Version.parse("1.2.0")
    assert max_version([]) is None
