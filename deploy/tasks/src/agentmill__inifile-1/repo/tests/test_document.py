import pytest

from inifile import IniDocument


def make():
    doc = IniDocument()
    doc.set("server", "Port", 8080)
    doc.set("server", "debug", "Yes")
    doc.set("server", "ratio", "0.5")
    return doc


def test_keys_are_case_insensitive():
    doc = make()
    assert doc.get("server", "PORT") == "8080"
    assert list(doc["server"]) == ["port", "debug", "ratio"]


def test_typed_getters():
    doc = make()
    assert doc.getint("server", "port") == 8080
    assert doc.getfloat("server", "ratio") == 0.5
    assert doc.getboolean("server", "debug") is True


def test_fallbacks():
    doc = make()
    assert doc.get("server", "missing", "x") == "x"
    assert doc.getint("nope", "port", fallback=1) == 1


def test_bad_boolean():
    doc = make()
    doc.set("server", "flag", "maybe")
    with pytest.raises(ValueError):
        doc.getboolean("server", "flag")


def test_remove_section():
    doc = make()
    doc.remove_section("server")
    assert doc.sections() == []
