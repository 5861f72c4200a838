//! What the harnesses read out of a patch: the files it modifies (`unidiff`'s view, which
//! SWE-bench resets test files by), its test directives, and the reverse of a patch (SWE-smith's
//! gold fix is its bug patch reversed).

use std::sync::OnceLock;

use regex::Regex;

/// The files of `patch` that exist before it (SWE-bench's `get_modified_files`: every file in
/// `unidiff.PatchSet(patch)` whose source is not `/dev/null`, `a/` stripped). Fails where
/// `unidiff` raises.
pub fn modified_files(patch: &str) -> Result<Vec<String>, String> {
    let files = patched_files(patch)?;
    Ok(files.into_iter().filter(|f| f.source != "/dev/null").filter_map(|f| f.source.strip_prefix("a/").map(str::to_string)).collect())
}

/// The paths a patch touches as `PatchSet(patch)` names them (`x.path`: the target without its
/// `b/`, or the source where the target is `/dev/null`).
pub fn patch_paths(patch: &str) -> Result<Vec<String>, String> {
    Ok(patched_files(patch)?.into_iter().map(|f| f.path()).collect())
}

/// The paths of the files a patch changes or adds, deleted files left out (SWE-rebench's
/// `get_changed_files`: `path` of every file that `unidiff` does not call removed).
pub fn changed_paths(patch: &str) -> Result<Vec<String>, String> {
    Ok(patched_files(patch)?.into_iter().filter(|f| !f.is_removed()).map(|f| f.path()).collect())
}

#[derive(Debug)]
struct PatchedFile {
    source: String,
    target: String,
    /// (target start, target length) of each hunk.
    hunks: Vec<(u64, u64)>,
}

impl PatchedFile {
    /// unidiff's `is_removed_file`.
    fn is_removed(&self) -> bool {
        self.target == "/dev/null" || (self.hunks.len() == 1 && self.hunks[0] == (0, 0))
    }

    /// unidiff's `path`: the source, or the target for an added file or a rename; quotes kept,
    /// one VCS prefix (`a/`, `b/`, …) dropped.
    fn path(&self) -> String {
        let is_rename = self.source != "/dev/null" && self.target != "/dev/null" && self.source.get(2..) != self.target.get(2..);
        let mut path = if self.source == "/dev/null" || is_rename { self.target.as_str() } else { self.source.as_str() };
        let quoted = path.len() >= 2 && path.starts_with('"') && path.ends_with('"');
        if quoted {
            path = &path[1..path.len() - 1];
        }
        let path = if prefix_re().is_match(path) { &path[2..] } else { path };
        if quoted { format!("\"{path}\"") } else { path.to_string() }
    }
}

fn prefix_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[abciow12]/").expect("static regex"))
}

/// The subset of `unidiff.PatchSet._parse` that decides which files a patch has and their
/// source and target names (hunks are consumed by their counts so their lines are never read
/// as headers).
fn patched_files(patch: &str) -> Result<Vec<PatchedFile>, String> {
    static GIT: OnceLock<[Regex; 3]> = OnceLock::new();
    let [git, git_uri, git_plain] = GIT.get_or_init(|| {
        [
            Regex::new(r#"^diff --git (?P<source>"?a/[^\t\n]+"?) (?P<target>"?b/[^\t\n]+"?)"#).expect("static regex"),
            Regex::new(r"^diff --git (?P<source>.*://[^\t\n]+) (?P<target>.*://[^\t\n]+)").expect("static regex"),
            Regex::new(r"^diff --git (?P<source>[^\t\n]+) (?P<target>[^\t\n]+)").expect("static regex"),
        ]
    });
    static HUNK: OnceLock<Regex> = OnceLock::new();
    let hunk = HUNK.get_or_init(|| Regex::new(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))?\ @@[ ]?(.*)").expect("static regex"));

    let mut files: Vec<PatchedFile> = Vec::new();
    let mut current: Option<usize> = None;
    let mut in_header = false; // unidiff's `patch_info is not None`
    let mut pending_source: Option<String> = None;
    let lines: Vec<&str> = patch.split_inclusive('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let bare = line.strip_suffix('\n').unwrap_or(line);
        i += 1;
        if let Some(c) = git.captures(bare).or_else(|| git_uri.captures(bare)).or_else(|| git_plain.captures(bare)) {
            files.push(PatchedFile { source: c["source"].to_string(), target: c["target"].to_string(), hunks: Vec::new() });
            current = Some(files.len() - 1);
            in_header = true;
            continue;
        }
        if bare.starts_with("new file mode ") && is_mode(&bare["new file mode ".len()..]) {
            let Some(c) = current.filter(|_| in_header) else { return Err(format!("Unexpected new file found: {bare}")) };
            files[c].source = "/dev/null".into();
            continue;
        }
        if bare.starts_with("deleted file mode ") && is_mode(&bare["deleted file mode ".len()..]) {
            let Some(c) = current.filter(|_| in_header) else { return Err(format!("Unexpected deleted file found: {bare}")) };
            files[c].target = "/dev/null".into();
            continue;
        }
        if current.is_some() && in_header && (is_mode_line(bare, "old mode ") || is_mode_line(bare, "new mode ") || is_index_line(bare)) {
            continue;
        }
        if let Some(rest) = bare.strip_prefix("--- ") {
            pending_source = Some(header_name(rest));
            if current.is_some() && !in_header {
                current = None;
            }
            continue;
        }
        if let Some(rest) = bare.strip_prefix("+++ ") {
            let target = header_name(rest);
            match current {
                Some(c) if files[c].target != target => return Err(format!("Target without source: {bare}")),
                Some(_) => {}
                None => {
                    let Some(source) = pending_source.take() else { return Err(format!("Target without source: {bare}")) };
                    files.push(PatchedFile { source, target, hunks: Vec::new() });
                    current = Some(files.len() - 1);
                    in_header = false;
                }
            }
            continue;
        }
        if let Some(c) = hunk.captures(bare) {
            in_header = false;
            let Some(cur) = current else {
                return Err(format!("Unexpected hunk found: {bare}"));
            };
            let n = |k: usize| c.get(k).map_or(Ok(1), |m| m.as_str().parse::<u64>().map_err(|e| e.to_string()));
            let (mut want_src, mut want_tgt) = (n(2)?, n(4)?);
            files[cur].hunks.push((n(3)?, want_tgt));
            while (want_src > 0 || want_tgt > 0) && i < lines.len() {
                let l = lines[i];
                i += 1;
                match l.as_bytes().first() {
                    Some(b'+') => want_tgt = want_tgt.saturating_sub(1),
                    Some(b'-') => want_src = want_src.saturating_sub(1),
                    Some(b' ') | Some(b'\n') | Some(b'\r') | None => {
                        want_src = want_src.saturating_sub(1);
                        want_tgt = want_tgt.saturating_sub(1);
                    }
                    Some(b'\\') => {}
                    _ => return Err(format!("Hunk diff line expected: {l}")),
                }
            }
            continue;
        }
    }
    Ok(files)
}

fn is_mode(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_mode_line(line: &str, prefix: &str) -> bool {
    line.strip_prefix(prefix).is_some_and(is_mode)
}

fn is_index_line(line: &str) -> bool {
    // `index abc..def 100644`
    let Some(rest) = line.strip_prefix("index ") else { return false };
    let Some((range, mode)) = rest.split_once(' ') else { return false };
    let Some((a, b)) = range.split_once("..") else { return false };
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    hex(a) && hex(b) && is_mode(mode)
}

/// The file name of a `---`/`+++` header (up to a tab, which starts a timestamp).
fn header_name(rest: &str) -> String {
    rest.split('\t').next().unwrap_or(rest).to_string()
}

/// SWE-bench 4.x's test directives: the `b/` paths of `diff --git` lines, less non-test files;
/// Django's become dotted labels (`tests/` and `.py` dropped), others stay paths.
pub fn test_directives(repo: &str, test_patch: &str, non_test_exts: &[String]) -> Vec<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"diff --git a/.* b/(.*)").expect("static regex"));
    if repo == "swe-bench/humaneval" {
        return vec!["test.py".into()];
    }
    let directives = re.captures_iter(test_patch).map(|c| c[1].to_string()).filter(|d| !non_test_exts.iter().any(|e| d.ends_with(e.as_str())));
    if repo == "django/django" {
        directives
            .map(|d| {
                let d = d.strip_suffix(".py").unwrap_or(&d);
                let d = d.strip_prefix("tests/").unwrap_or(d);
                d.replace('/', ".")
            })
            .collect()
    } else {
        directives.collect()
    }
}

/// The patch that undoes `patch`: every file's old and new sides swapped, hunks inverted.
/// Used where a dataset ships the bug and its fix is the bug reversed (SWE-smith).
pub fn reverse_patch(patch: &str) -> String {
    let mut out = String::with_capacity(patch.len());
    let mut in_hunk = (0u64, 0u64);
    let mut minus_header: Option<String> = None;
    // A run of changed lines, turned round: its removals go out before its additions.
    let (mut removed, mut added) = (String::new(), String::new());
    // Which buffer took the last changed line (a "\\ No newline" marker follows it there).
    let mut last_added = false;
    let flush = |out: &mut String, removed: &mut String, added: &mut String| {
        out.push_str(removed);
        out.push_str(added);
        removed.clear();
        added.clear();
    };
    for line in patch.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let marker_of_last_line = body.starts_with('\\') && !(removed.is_empty() && added.is_empty());
        if in_hunk.0 > 0 || in_hunk.1 > 0 || marker_of_last_line {
            match body.as_bytes().first() {
                // `in_hunk` counts the reversed hunk's (old, new) lines: an added line of the
                // original is an old line of its reverse.
                Some(b'+') => {
                    in_hunk.0 = in_hunk.0.saturating_sub(1);
                    removed.push_str(&format!("-{}{nl}", &body[1..]));
                    last_added = false;
                }
                Some(b'-') => {
                    in_hunk.1 = in_hunk.1.saturating_sub(1);
                    added.push_str(&format!("+{}{nl}", &body[1..]));
                    last_added = true;
                }
                Some(b'\\') => {
                    // "\ No newline at end of file" belongs to the line before it.
                    let last = if last_added { &mut added } else { &mut removed };
                    if last.is_empty() {
                        out.push_str(body);
                        out.push_str(nl);
                    } else {
                        last.push_str(body);
                        last.push_str(nl);
                    }
                }
                _ => {
                    flush(&mut out, &mut removed, &mut added);
                    in_hunk.0 = in_hunk.0.saturating_sub(1);
                    in_hunk.1 = in_hunk.1.saturating_sub(1);
                    out.push_str(body);
                    out.push_str(nl);
                }
            }
            continue;
        }
        flush(&mut out, &mut removed, &mut added);
        if let Some(rest) = body.strip_prefix("diff --git ") {
            // `diff --git a/x b/y` → `diff --git a/y b/x`
            match rest.rsplit_once(" b/") {
                Some((a, b)) if a.starts_with("a/") => out.push_str(&format!("diff --git a/{b} b/{}", &a[2..])),
                _ => out.push_str(body),
            }
        } else if let Some(mode) = body.strip_prefix("new file mode ") {
            out.push_str(&format!("deleted file mode {mode}"));
        } else if let Some(mode) = body.strip_prefix("deleted file mode ") {
            out.push_str(&format!("new file mode {mode}"));
        } else if let Some(mode) = body.strip_prefix("old mode ") {
            out.push_str(&format!("new mode {mode}"));
        } else if let Some(mode) = body.strip_prefix("new mode ") {
            out.push_str(&format!("old mode {mode}"));
        } else if let Some(name) = body.strip_prefix("rename from ") {
            out.push_str(&format!("rename to {name}"));
        } else if let Some(name) = body.strip_prefix("rename to ") {
            out.push_str(&format!("rename from {name}"));
        } else if let Some(rest) = body.strip_prefix("index ") {
            match rest.split_once(' ').map(|(r, m)| (r.split_once(".."), m)) {
                Some((Some((a, b)), m)) => out.push_str(&format!("index {b}..{a} {m}")),
                _ => match rest.split_once("..") {
                    Some((a, b)) => out.push_str(&format!("index {b}..{a}")),
                    None => out.push_str(body),
                },
            }
        } else if let Some(minus) = body.strip_prefix("--- ") {
            minus_header = Some(minus.to_string());
            continue;
        } else if let Some(plus) = body.strip_prefix("+++ ") {
            let minus = minus_header.take().unwrap_or_default();
            let swap = |s: &str, from: &str, to: &str| s.strip_prefix(from).map(|r| format!("{to}{r}")).unwrap_or_else(|| s.to_string());
            out.push_str(&format!("--- {}\n+++ {}", swap(plus, "b/", "a/"), swap(&minus, "a/", "b/")));
        } else if let Some(rest) = body.strip_prefix("@@ -") {
            // `@@ -a,b +c,d @@ tail` → `@@ -c,d +a,b @@ tail`
            let (ranges, tail) = rest.split_once(" @@").unwrap_or((rest, ""));
            let (old, new) = ranges.split_once(" +").unwrap_or((ranges, ""));
            let count = |r: &str| r.split_once(',').map_or(Some(1), |(_, n)| n.parse::<u64>().ok()).unwrap_or(0);
            in_hunk = (count(new), count(old));
            out.push_str(&format!("@@ -{new} +{old} @@{tail}"));
        } else {
            out.push_str(body);
        }
        out.push_str(nl);
    }
    flush(&mut out, &mut removed, &mut added);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/pkg/mod.py b/pkg/mod.py\nindex 1111111..2222222 100644\n--- a/pkg/mod.py\n+++ b/pkg/mod.py\n@@ -1,3 +1,3 @@\n def f():\n--- not a header\n+++ not a header either\n x\ndiff --git a/new.py b/new.py\nnew file mode 100644\nindex 0000000..3333333\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+y = 1\ndiff --git a/tests/test_mod.py b/tests/test_mod.py\n--- a/tests/test_mod.py\n+++ b/tests/test_mod.py\n@@ -1 +1,2 @@\n a\n+b\n";

    #[test]
    fn modified_files_are_the_ones_that_existed_before() {
        assert_eq!(modified_files(PATCH).expect("parses"), ["pkg/mod.py", "tests/test_mod.py"]);
        assert_eq!(patch_paths(PATCH).expect("parses"), ["pkg/mod.py", "new.py", "tests/test_mod.py"]);
    }

    #[test]
    fn directives_follow_the_repository() {
        let exts = vec![".json".to_string(), "csv".to_string()];
        let p = "diff --git a/tests/forms_tests/tests/test_forms.py b/tests/forms_tests/tests/test_forms.py\ndiff --git a/tests/data.json b/tests/data.json\n";
        assert_eq!(test_directives("django/django", p, &exts), ["forms_tests.tests.test_forms"]);
        assert_eq!(test_directives("sympy/sympy", p, &exts), ["tests/forms_tests/tests/test_forms.py"]);
    }

    #[test]
    fn a_reversed_patch_reverses_again_to_itself() {
        let p = "diff --git a/x.py b/x.py\nindex 1111111..2222222 100644\n--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@ def f():\n a\n-b\n+c\n+d\n-e\n";
        let r = reverse_patch(p);
        assert!(r.contains("@@ -1,3 +1,3 @@ def f():\n a\n-c\n-d\n+b\n+e\n"), "{r}");
        assert!(r.contains("index 2222222..1111111 100644"));
        assert_eq!(reverse_patch(&r), "diff --git a/x.py b/x.py\nindex 1111111..2222222 100644\n--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@ def f():\n a\n-b\n-e\n+c\n+d\n");
    }
}
