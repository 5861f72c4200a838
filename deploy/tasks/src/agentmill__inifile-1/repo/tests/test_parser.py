import io

import pytest

import inifile
from inifile import ParseError


def test_sections_and_keys():
    doc = inifile.loads("[a]\nx = 1\n[b]\ny: 2\n")
    assert doc.sections() == ["a", "b"]
    assert doc.get("a", "x") == "1"
    assert doc.get("b", "y") == "2"


def test_keys_before_first_section_go_to_default():
    doc = inifile.loads("top = level\n[s]\nk = v\n")
    assert doc.get("default", "top") == "level"


def test_duplicate_key_is_an_error():
    with pytest.raises(ParseError):
        inifile.loads("[s]\nk = 1\nK = 2\n")


def test_duplicate_key_last_wins_when_allowed():
    doc = inifile.loads("[s]\nk = 1\nk = 2\n", allow_duplicates=True)
    assert doc.get("s", "k") == "2"


def test_multiline_value():
    doc = inifile.loads("[s]\npaths = /usr\n    /opt\n")
    assert doc.get("s", "paths") == "/usr\n/opt"


def test_quoted_value_keeps_comment_characters():
    doc = inifile.loads('[s]\nprompt = "; not a comment"\n')
    assert doc.get("s", "prompt") == "; not a comment"


def test_load_from_file_object():
    doc = inifile.load(io.StringIO("[s]\nk = v\n"))
    assert doc.to_dict() == {"s": {"k": "v"}}
