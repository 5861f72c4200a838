import re

import pytest

from globmatch import PatternError, translate


def full(pattern, path):
    return re.fullmatch(translate(pattern), path) is not None


def test_literal_characters_are_escaped():
    assert full("a+b.txt", "a+b.txt")
    assert not full("a+b.txt", "aab.txt")


def test_star_does_not_cross_slash():
    assert full("src/*.py", "src/main.py")
    assert not full("src/*.py", "src/app/main.py")


def test_question_mark():
    assert full("file?.txt", "file1.txt")
    assert not full("file?.txt", "file/.txt")


def test_character_classes():
    assert full("[abc].txt", "b.txt")
    assert full("log[0-9]", "log7")
    assert not full("[!abc].txt", "a.txt")
    assert full("[!abc].txt", "d.txt")
    assert not full("a[!x]b", "a/b")


def test_braces():
    assert full("*.{jpg,png}", "logo.png")
    assert not full("*.{jpg,png}", "logo.gif")


def test_double_star_spans_directories():
    assert full("src/**/test.py", "src/a/b/test.py")
    assert full("src/**", "src/a/b/c")


@pytest.mark.parametrize(
    "bad",
    ["", "a**", "**b/c", "[abc", "{a,b"],
    ids=["empty", "star-star-suffix", "star-star-prefix", "open-class", "open-brace"],
)
def test_invalid_patterns(bad):
    with pytest.raises(PatternError):
        translate(bad)
