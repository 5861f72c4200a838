//! Reading a unified diff (git's or plain `diff -u`) into files and hunks, for the replay policy.
//!
//! Each hunk keeps its lines with their kind and whether they end with a newline (`\ No newline
//! at end of file`), so its pre-image (context + removed lines) and post-image (context + added
//! lines) are exact text.

/// What one line of a hunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    Context,
    Removed,
    Added,
}

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HunkLine {
    pub kind: LineKind,
    pub text: String,
    /// False when the diff marks the line `\ No newline at end of file`.
    pub newline: bool,
}

/// One `@@ -a,b +c,d @@` hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hunk {
    pub old_start: usize,
    pub old_len: usize,
    pub new_start: usize,
    pub new_len: usize,
    pub lines: Vec<HunkLine>,
}

impl Hunk {
    fn image(&self, keep: LineKind) -> String {
        let mut out = String::new();
        for line in self.lines.iter().filter(|l| l.kind == LineKind::Context || l.kind == keep) {
            out.push_str(&line.text);
            if line.newline {
                out.push('\n');
            }
        }
        out
    }

    /// The text the hunk replaces: its context and removed lines.
    pub fn pre(&self) -> String {
        self.image(LineKind::Removed)
    }

    /// The text the hunk puts in its place: its context and added lines.
    pub fn post(&self) -> String {
        self.image(LineKind::Added)
    }
}

/// The changes to one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FilePatch {
    /// `None` for a new file.
    pub old_path: Option<String>,
    /// `None` for a deleted file.
    pub new_path: Option<String>,
    /// The mode after the change, when the diff states one (`100755`).
    pub new_mode: Option<String>,
    /// A binary change (`GIT binary patch` or `Binary files ... differ`).
    pub binary: bool,
    pub hunks: Vec<Hunk>,
}

impl FilePatch {
    /// The path the file has after the change (or had, for a deletion).
    pub fn path(&self) -> &str {
        self.new_path.as_deref().or(self.old_path.as_deref()).unwrap_or("")
    }
}

/// Parses a unified diff. Errors name the line and what was expected.
pub(crate) fn parse(patch: &str) -> Result<Vec<FilePatch>, String> {
    let lines: Vec<&str> = patch.split('\n').collect();
    let mut files: Vec<FilePatch> = Vec::new();
    // Whether the current file came from a `diff --git` header (so `---` belongs to it).
    let mut in_git_header = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let (a, b) = split_git_header(rest);
            files.push(FilePatch { old_path: a, new_path: b, ..FilePatch::default() });
            in_git_header = true;
        } else if line.starts_with("--- ") && lines.get(i + 1).is_some_and(|l| l.starts_with("+++ ")) {
            if !in_git_header {
                files.push(FilePatch::default());
            }
            let file = files.last_mut().ok_or("a `---` line before any file")?;
            file.old_path = diff_path(&line[4..]);
            file.new_path = diff_path(&lines[i + 1][4..]);
            in_git_header = false;
            i += 1;
        } else if line.starts_with("@@ ") {
            let file = files.last_mut().ok_or_else(|| format!("line {}: a hunk before any file header", i + 1))?;
            in_git_header = false;
            let (hunk, next) = parse_hunk(&lines, i)?;
            file.hunks.push(hunk);
            i = next;
            continue;
        } else if let Some(file) = files.last_mut().filter(|_| in_git_header) {
            if let Some(mode) = line.strip_prefix("new file mode ") {
                file.old_path = None;
                file.new_mode = Some(mode.trim().to_string());
            } else if line.starts_with("deleted file mode ") {
                file.new_path = None;
            } else if let Some(mode) = line.strip_prefix("new mode ") {
                file.new_mode = Some(mode.trim().to_string());
            } else if let Some(p) = line.strip_prefix("rename from ") {
                file.old_path = Some(unquote(p));
            } else if let Some(p) = line.strip_prefix("rename to ") {
                file.new_path = Some(unquote(p));
            } else if line.starts_with("copy from ") || line.starts_with("copy to ") {
                return Err(format!("line {}: copies are not supported; re-create the diff without --find-copies", i + 1));
            } else if line.starts_with("GIT binary patch") || (line.starts_with("Binary files ") && line.ends_with(" differ")) {
                file.binary = true;
            }
        }
        i += 1;
    }
    Ok(files)
}

/// Parses the hunk whose header is at `lines[at]`; returns it and the index after it.
fn parse_hunk(lines: &[&str], at: usize) -> Result<(Hunk, usize), String> {
    let header = lines[at];
    let bad = || format!("line {}: {header:?} is not a hunk header like `@@ -1,3 +1,4 @@`", at + 1);
    let ranges = header.strip_prefix("@@ -").and_then(|r| r.split(" @@").next()).ok_or_else(bad)?;
    let (old, new) = ranges.split_once(" +").ok_or_else(bad)?;
    let range = |r: &str| -> Option<(usize, usize)> {
        match r.split_once(',') {
            Some((s, l)) => Some((s.parse().ok()?, l.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (old_start, old_len) = range(old).ok_or_else(bad)?;
    let (new_start, new_len) = range(new).ok_or_else(bad)?;
    let mut hunk = Hunk { old_start, old_len, new_start, new_len, lines: Vec::new() };
    let (mut old_left, mut new_left) = (old_len, new_len);
    let mut i = at + 1;
    while old_left > 0 || new_left > 0 {
        let Some(&line) = lines.get(i) else {
            return Err(format!("the hunk at line {} ends early: {old_left} old and {new_left} new lines missing", at + 1));
        };
        let (kind, text) = match line.as_bytes().first() {
            Some(b' ') => (LineKind::Context, &line[1..]),
            Some(b'-') => (LineKind::Removed, &line[1..]),
            Some(b'+') => (LineKind::Added, &line[1..]),
            Some(b'\\') => {
                if let Some(last) = hunk.lines.last_mut() {
                    last.newline = false;
                }
                i += 1;
                continue;
            }
            // Some tools strip the lone space of an empty context line.
            None => (LineKind::Context, ""),
            Some(_) => return Err(format!("line {}: {line:?} inside the hunk at line {} is not a diff line", i + 1, at + 1)),
        };
        match kind {
            LineKind::Context => {
                old_left = old_left.checked_sub(1).ok_or_else(|| format!("the hunk at line {} has more old lines than its header says", at + 1))?;
                new_left = new_left.checked_sub(1).ok_or_else(|| format!("the hunk at line {} has more new lines than its header says", at + 1))?;
            }
            LineKind::Removed => {
                old_left = old_left.checked_sub(1).ok_or_else(|| format!("the hunk at line {} has more old lines than its header says", at + 1))?;
            }
            LineKind::Added => {
                new_left = new_left.checked_sub(1).ok_or_else(|| format!("the hunk at line {} has more new lines than its header says", at + 1))?;
            }
        }
        hunk.lines.push(HunkLine { kind, text: text.to_string(), newline: true });
        i += 1;
    }
    if lines.get(i).is_some_and(|l| l.starts_with('\\')) {
        if let Some(last) = hunk.lines.last_mut() {
            last.newline = false;
        }
        i += 1;
    }
    Ok((hunk, i))
}

/// The two paths of `diff --git a/X b/Y` (the `---`/`+++` lines, when present, override them).
fn split_git_header(rest: &str) -> (Option<String>, Option<String>) {
    if rest.starts_with('"') {
        // Quoted paths: `"a/x y" "b/x y"`.
        let parts: Vec<&str> = rest.split("\" \"").collect();
        if let [a, b] = parts.as_slice() {
            return (diff_path(&format!("{a}\"")), diff_path(&format!("\"{b}")));
        }
    }
    // Unquoted: a and b name the same path unless renamed; split in the middle when they match.
    let half = rest.len() / 2;
    if rest.is_char_boundary(half) && rest.as_bytes().get(half) == Some(&b' ') {
        let (a, b) = (&rest[..half], &rest[half + 1..]);
        if a.strip_prefix("a/").is_some() && b.strip_prefix("b/") == a.strip_prefix("a/") {
            return (diff_path(a), diff_path(b));
        }
    }
    match rest.split_once(" b/") {
        Some((a, b)) => (diff_path(a), Some(b.to_string())),
        None => (None, None),
    }
}

/// A path of a `---` / `+++` line: `/dev/null` is none; the `a/` `b/` prefix and a trailing
/// timestamp are dropped; C-quoted paths are unquoted.
fn diff_path(raw: &str) -> Option<String> {
    let raw = raw.split('\t').next().unwrap_or(raw).trim_end_matches('\r');
    if raw == "/dev/null" {
        return None;
    }
    let path = unquote(raw);
    let path = path.strip_prefix("a/").or_else(|| path.strip_prefix("b/")).map(str::to_string).unwrap_or(path);
    Some(path)
}

/// Undoes git's C-style quoting of a path (`"t\303\251st.py"` → `tést.py`).
fn unquote(raw: &str) -> String {
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return raw.to_string();
    };
    let bytes = inner.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let c = bytes[i + 1];
        match c {
            b'0'..=b'7' if i + 4 <= bytes.len() => {
                let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).ok().and_then(|o| u8::from_str_radix(o, 8).ok());
                match octal {
                    Some(b) => {
                        out.push(b);
                        i += 4;
                    }
                    None => {
                        out.push(c);
                        i += 2;
                    }
                }
            }
            b'n' => {
                out.push(b'\n');
                i += 2;
            }
            b't' => {
                out.push(b'\t');
                i += 2;
            }
            other => {
                out.push(other);
                i += 2;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = r#"diff --git a/pkg/m.py b/pkg/m.py
index 1..2 100644
--- a/pkg/m.py
+++ b/pkg/m.py
@@ -1,3 +1,3 @@
 a
-b
+B
 c
@@ -9,2 +9,3 @@ def f():
 x
-y
\ No newline at end of file
+y
+z
\ No newline at end of file
diff --git a/new.py b/new.py
new file mode 100755
index 0000000..1111111
--- /dev/null
+++ b/new.py
@@ -0,0 +1 @@
+print(1)
diff --git a/old.py b/old.py
deleted file mode 100644
--- a/old.py
+++ /dev/null
@@ -1 +0,0 @@
-gone
diff --git a/r1.py b/r2.py
similarity index 100%
rename from r1.py
rename to r2.py
"#;

    #[test]
    fn parses_modify_create_delete_rename_and_missing_newlines() {
        let files = parse(PATCH).expect("parses");
        assert_eq!(files.len(), 4);
        let m = &files[0];
        assert_eq!((m.old_path.as_deref(), m.new_path.as_deref()), (Some("pkg/m.py"), Some("pkg/m.py")));
        assert_eq!(m.hunks.len(), 2);
        assert_eq!((m.hunks[0].pre(), m.hunks[0].post()), ("a\nb\nc\n".to_string(), "a\nB\nc\n".to_string()));
        assert_eq!((m.hunks[1].pre(), m.hunks[1].post()), ("x\ny".to_string(), "x\ny\nz".to_string()));
        assert_eq!((files[1].old_path.as_deref(), files[1].path(), files[1].new_mode.as_deref()), (None, "new.py", Some("100755")));
        assert_eq!(files[1].hunks[0].post(), "print(1)\n");
        assert_eq!((files[2].new_path.as_deref(), files[2].path()), (None, "old.py"));
        assert_eq!((files[3].old_path.as_deref(), files[3].new_path.as_deref()), (Some("r1.py"), Some("r2.py")));
    }

    #[test]
    fn unquotes_c_style_paths() {
        assert_eq!(diff_path("\"b/t\\303\\251st.py\""), Some("tést.py".to_string()));
        assert_eq!(diff_path("a/x.py\t2024-01-01"), Some("x.py".to_string()));
    }

    #[test]
    fn a_short_hunk_is_an_error() {
        let err = parse("--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n").expect_err("short hunk");
        assert!(err.contains("ends early"), "{err}");
    }
}
