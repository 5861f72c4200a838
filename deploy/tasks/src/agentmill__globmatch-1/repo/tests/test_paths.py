from globmatch.paths import basename, depth, is_hidden, join, normalize, parent, split


def test_normalize():
    assert normalize(".\\src//app/./main.py") == "src/app/main.py"
    assert normalize("/abs/path/") == "abs/path"
    assert normalize("a/../b") == "a/../b"


def test_split_join_and_depth():
    assert split("a//b/") == ["a", "b"]
    assert split(".") == []
    assert join("a/", "/b", "c.txt") == "a/b/c.txt"
    assert depth("a/b/c") == 3


def test_basename_parent_and_hidden():
    assert basename("a/b/c.py") == "c.py"
    assert parent("a/b/c.py") == "a/b"
    assert parent("c.py") == ""
    assert is_hidden("a/.git/config")
    assert not is_hidden("../a/b")
