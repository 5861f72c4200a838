from globmatch import Matcher, glob, iter_files


def make_tree(root):
    for rel in ["a.txt", "b.py", "pkg/c.txt", "pkg/sub/d.txt", ".hidden/e.txt", "pkg/.f.txt"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


def test_iter_files_is_sorted_and_skips_hidden(tmp_path):
    make_tree(tmp_path)
    assert list(iter_files(tmp_path)) == ["a.txt", "b.py", "pkg/c.txt", "pkg/sub/d.txt"]


def test_iter_files_can_include_hidden(tmp_path):
    make_tree(tmp_path)
    files = list(iter_files(tmp_path, include_hidden=True))
    assert ".hidden/e.txt" in files and "pkg/.f.txt" in files


def test_glob_with_exclude(tmp_path):
    make_tree(tmp_path)
    assert glob(tmp_path, "*.txt", exclude=["pkg/sub/**"]) == ["a.txt", "pkg/c.txt"]


def test_iter_files_with_matcher(tmp_path):
    make_tree(tmp_path)
    assert list(iter_files(tmp_path, Matcher(include=["pkg/*"]))) == ["pkg/c.txt"]
