from globmatch import Matcher, match


def test_pattern_without_slash_matches_basename():
    assert match("*.py", "src/app/main.py")
    assert match("Makefile", "sub/dir/Makefile")


def test_pattern_with_slash_matches_whole_path():
    assert match("src/*.py", "src/main.py")
    assert not match("src/*.py", "lib/src/main.py")


def test_leading_slash_anchors_at_root():
    assert match("/setup.py", "setup.py")
    assert not match("/setup.py", "pkg/setup.py")


def test_double_star_only_matches_whole_segments():
    assert not match("docs/**/index.md", "docs/old-index.md")
    assert not match("**/test_*.py", "pkg/mytest_x.py")
    assert match("**/test_*.py", "pkg/sub/test_x.py")


def test_case_insensitive():
    assert match("*.JPG", "photos/a.jpg", case_sensitive=False)
    assert not match("*.JPG", "photos/a.jpg")


def test_paths_are_normalised_before_matching():
    assert match("src/*.py", ".\\src\\main.py")


def test_matcher_include_and_exclude():
    m = Matcher(include=["*.py", "*.md"], exclude=["build/**", "setup.py"])
    assert m.filter(["a.py", "build/gen/b.py", "docs/c.md", "setup.py", "d.txt"]) == ["a.py", "docs/c.md"]
