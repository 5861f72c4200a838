import pytest

from inifile.lexer import ParseError, split_pair, strip_inline_comment, tokenize


def kinds(text):
    return [tok.kind for tok in tokenize(text)]


def test_blank_and_comment_lines():
    assert kinds("\n# a comment\n; another\n") == ["blank", "comment", "comment"]


def test_section_header():
    (tok,) = tokenize("[ server ]")
    assert tok.kind == "section"
    assert tok.name == "server"


def test_equals_pair():
    assert split_pair("name = value") == ("name", "value")


def test_colon_pair():
    assert split_pair("name: value") == ("name", "value")


def test_line_without_delimiter_is_rejected():
    with pytest.raises(ParseError) as info:
        tokenize("[s]\njust some words\n")
    assert info.value.lineno == 2


def test_unterminated_section_is_rejected():
    with pytest.raises(ParseError):
        tokenize("[server")


def test_inline_comment_is_stripped():
    assert strip_inline_comment("8080 ; the port") == "8080"


def test_hash_without_space_is_kept():
    assert strip_inline_comment("#ff0000") == "#ff0000"
    assert strip_inline_comment("a#b") == "a#b"


def test_continuation_line():
    toks = tokenize("key = first\n    second\n")
    assert [t.kind for t in toks] == ["pair", "continuation"]
    assert toks[1].value == "second"
