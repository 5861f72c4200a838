//! Unified diffs, parsed by hand: the real output of `git diff`, plain `diff -u`, and the
//! hunk-only `patch` fields of GitHub's API (and so of daVinci-Dev's rows). It lives at the
//! crate's root because two parts read diffs with it: contextual synthesis reads commits
//! ([`crate::synth::edits`], [`crate::synth::read::git`]) and the replay policy the gold patch
//! ([`crate::agent::policy::replay`]); both reach it as `crate::diff`.
//!
//! Three entry points:
//! - [`split_git_diff`] cuts the raw bytes of a multi-file `git diff` into one section per file.
//!   It works on bytes because a diff of a Latin-1 file is not UTF-8, and it counts hunk lines by
//!   the `@@ -a,b +c,d @@` header, so a content line that happens to read `diff --git …` cannot
//!   start a new file.
//! - [`parse_file_patch`] reads one file's section (or a header-less run of hunks) into a
//!   [`FilePatch`]: paths, what happened to the file, its mode, and its [`Hunk`]s.
//! - [`parse_diff`] reads a whole multi-file diff, `git diff` output or plain `diff -u` output
//!   whose files start at their `---`/`+++` lines, into one [`FilePatch`] per file.
//!
//! Lines are split on `\n` only. Everything else — `\r`, form feeds, `\x85`, `\u2028` — is part of
//! a line's content, as it is for git. Each [`HunkLine`] keeps its terminator, so joining lines
//! gives the file's exact bytes; `\ No newline at end of file` removes the `\n` of the line before
//! it. A patch text that simply stops without a final `\n` (GitHub trims it) loses nothing: only
//! the explicit marker means "no newline".
//!
//! Past 600 lines with its unit tests (the code is under 550): one reader and writer of
//! unified diffs, `git apply`'s rules in one place.

use thiserror::Error;

/// A diff that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiffError {
    /// A `@@` line that is not `@@ -a[,b] +c[,d] @@`.
    #[error(
        "{path}: line {line}: `{text}` is not a hunk header; expected `@@ -a,b +c,d @@` (combined diffs of merges are not supported: diff a merge against one parent)"
    )]
    BadHunkHeader {
        /// The file the patch is for.
        path: String,
        /// 1-based line in the patch.
        line: usize,
        /// The offending line (cut to 80 characters).
        text: String,
    },
    /// A hunk that ends before its header's line counts are met.
    #[error(
        "{path}: hunk at patch line {line} is truncated: {missing_old} old and {missing_new} new lines missing; the patch was cut or its header counts are wrong"
    )]
    Truncated {
        /// The file the patch is for.
        path: String,
        /// 1-based line of the hunk header.
        line: usize,
        /// Old-side lines still expected.
        missing_old: usize,
        /// New-side lines still expected.
        missing_new: usize,
    },
    /// A line inside a hunk that starts with none of ` `, `-`, `+`, `\`.
    #[error("{path}: line {line}: `{text}` is inside a hunk but starts with none of ' ', '-', '+', '\\'")]
    BadHunkLine {
        /// The file the patch is for.
        path: String,
        /// 1-based line in the patch.
        line: usize,
        /// The offending line (cut to 80 characters).
        text: String,
    },
    /// Text after the hunks that is not another hunk.
    #[error("{path}: line {line}: unexpected `{text}` after a hunk; one patch must hold one file's hunks")]
    Trailing {
        /// The file the patch is for.
        path: String,
        /// 1-based line in the patch.
        line: usize,
        /// The offending line (cut to 80 characters).
        text: String,
    },
    /// A section of `git diff` output whose `diff --git` line names no path.
    #[error("`{text}`: cannot read the paths of this `diff --git` line")]
    BadGitHeader {
        /// The offending line (cut to 80 characters).
        text: String,
    },
    /// In a multi-file diff, a hunk that comes before any file's headers.
    #[error("line {line}: a hunk before any file header; each file needs a `diff --git` line or `---`/`+++` lines")]
    NoFileHeader {
        /// 1-based line of the hunk header.
        line: usize,
    },
}

/// What a patch does to its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// The file is new.
    Added,
    /// The file is gone.
    Deleted,
    /// The file changed in place (content or mode).
    Modified,
    /// The file moved (`rename from` / `rename to`), possibly with content changes.
    Renamed,
    /// The file was copied (`copy from` / `copy to`), possibly with content changes.
    Copied,
}

/// The kind of one line in a hunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// ` `: on both sides.
    Context,
    /// `-`: only on the old side.
    Removed,
    /// `+`: only on the new side.
    Added,
}

/// One line of a hunk, with its terminator (`\n`, unless `\ No newline at end of file` followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HunkLine {
    /// Which side(s) it is on.
    pub kind: LineKind,
    /// The exact content, terminator included.
    pub text: String,
}

/// One `@@ -a,b +c,d @@` hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// 1-based first old line (for `b = 0`: the line after which the new lines go; 0 = the top).
    pub old_start: usize,
    /// Old-side line count.
    pub old_len: usize,
    /// 1-based first new line.
    pub new_start: usize,
    /// New-side line count.
    pub new_len: usize,
    /// The lines in order.
    pub lines: Vec<HunkLine>,
}

impl Hunk {
    /// The old side's lines (context and removed), each with its terminator.
    pub fn old_lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter(|l| l.kind != LineKind::Added).map(|l| l.text.as_str())
    }

    /// The new side's lines (context and added), each with its terminator.
    pub fn new_lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter(|l| l.kind != LineKind::Removed).map(|l| l.text.as_str())
    }

    /// The old side as one text.
    pub fn old_text(&self) -> String {
        self.old_lines().collect()
    }

    /// The new side as one text.
    pub fn new_text(&self) -> String {
        self.new_lines().collect()
    }
}

/// One file's patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePatch {
    /// The path before (`None` for an added file).
    pub old_path: Option<String>,
    /// The path after (`None` for a deleted file).
    pub new_path: Option<String>,
    /// What happened, from git's extended headers; `None` for a header-less run of hunks, whose
    /// meaning depends on whether the file exists (the caller decides).
    pub change: Option<Change>,
    /// The mode after the change, when git states one (`new file mode 100755`, `new mode 100755`).
    pub new_mode: Option<String>,
    /// Git reported the file as binary (`Binary files … differ` or `GIT binary patch`).
    pub binary: bool,
    /// The hunks in order.
    pub hunks: Vec<Hunk>,
}

impl FilePatch {
    /// The path the file has after the patch, or before it for a deletion.
    pub fn path(&self) -> &str {
        self.new_path.as_deref().or(self.old_path.as_deref()).unwrap_or_default()
    }
}

/// Cuts the raw output of a multi-file `git diff` into one byte slice per file, each starting at
/// its `diff --git` line. Text before the first `diff --git` line is dropped.
pub fn split_git_diff(diff: &[u8]) -> Result<Vec<&[u8]>, DiffError> {
    let mut sections = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    // Lines still expected in the current hunk: (old, new).
    let mut pending = (0usize, 0usize);
    for (no, line) in diff.split_inclusive(|&b| b == b'\n').enumerate() {
        let line_start = pos;
        pos += line.len();
        if pending != (0, 0) {
            match line.first() {
                Some(b' ') => pending = (pending.0.saturating_sub(1), pending.1.saturating_sub(1)),
                Some(b'-') => pending.0 = pending.0.saturating_sub(1),
                Some(b'+') => pending.1 = pending.1.saturating_sub(1),
                Some(b'\\') => {}
                // git never writes such a line inside a hunk; an empty one is a context line whose
                // single space was stripped by some tool.
                _ => pending = (pending.0.saturating_sub(1), pending.1.saturating_sub(1)),
            }
            continue;
        }
        if line.starts_with(b"diff --git ") {
            if let Some(s) = start {
                sections.push(&diff[s..line_start]);
            }
            start = Some(line_start);
        } else if line.starts_with(b"@@ ") && start.is_some() {
            let text = String::from_utf8_lossy(line);
            let (_, old_len, _, new_len) = parse_hunk_header(text.trim_end_matches('\n')).ok_or_else(|| DiffError::BadHunkHeader {
                path: String::from("(git diff)"),
                line: no + 1,
                text: cut(&text),
            })?;
            pending = (old_len, new_len);
        }
    }
    if let Some(s) = start {
        sections.push(&diff[s..]);
    }
    Ok(sections)
}

/// Parses one file's patch: a `git diff` section (headers, then hunks) or a header-less run of
/// hunks as GitHub's API gives them, in which case `path_hint` names the file.
pub fn parse_file_patch(patch: &str, path_hint: &str) -> Result<FilePatch, DiffError> {
    let lines = split_lines(patch);
    let (mut fp, i) = read_headers(&lines, 0, path_hint)?;
    let i = read_hunks(&lines, i, &mut fp)?;
    if lines[i..].iter().any(|l| !l.is_empty()) {
        return Err(DiffError::Trailing { path: fp.path().to_string(), line: i + 1, text: cut(lines[i]) });
    }
    Ok(fp)
}

/// Parses a whole unified diff of any number of files: `git diff` output, or plain `diff -u`
/// output, where a file starts at its `---` line. Text outside the files' headers and hunks (a
/// commit message before the first file, `diff -ruN …` or `Only in …` lines) is skipped; a hunk
/// belongs to the last file whose headers came before it. Line numbers in errors count from 1
/// over the whole diff.
pub fn parse_diff(patch: &str) -> Result<Vec<FilePatch>, DiffError> {
    let lines = split_lines(patch);
    let mut files: Vec<FilePatch> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with("diff --git ") || starts_plain_header(&lines, i) {
            let (fp, next) = read_headers(&lines, i, "")?;
            files.push(fp);
            i = next;
        } else if lines[i].starts_with("@@") {
            let fp = files.last_mut().ok_or(DiffError::NoFileHeader { line: i + 1 })?;
            i = read_hunks(&lines, i, fp)?;
        } else {
            i += 1;
        }
    }
    Ok(files)
}

/// The lines of a patch, split on `\n`; a final `\n` ends the last line rather than starting an
/// empty one.
fn split_lines(patch: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = patch.split('\n').collect();
    if patch.ends_with('\n') {
        lines.pop();
    }
    lines
}

/// Whether `lines[i]` is a `---` line followed by a `+++` line.
fn starts_plain_header(lines: &[&str], i: usize) -> bool {
    lines[i].starts_with("--- ") && lines.get(i + 1).is_some_and(|l| l.starts_with("+++ "))
}

/// Reads one file's headers from `lines[start]` on, up to its first hunk or the next file's
/// headers (another `diff --git` line, or `---`/`+++` lines after this file's own); returns the
/// file without hunks and the index of the line that ended the headers.
fn read_headers(lines: &[&str], start: usize, path_hint: &str) -> Result<(FilePatch, usize), DiffError> {
    let mut fp = FilePatch { old_path: None, new_path: None, change: None, new_mode: None, binary: false, hunks: Vec::new() };
    let mut git_header: Option<&str> = None;
    let (mut minus, mut plus): (Option<Option<String>>, Option<Option<String>>) = (None, None);
    let (mut rename_from, mut rename_to) = (None, None);
    let mut i = start;
    // Extended headers, up to the first hunk.
    while i < lines.len() && !lines[i].starts_with("@@") {
        let l = lines[i];
        let seen_sides = minus.is_some() || plus.is_some();
        if (l.starts_with("diff --git ") && (git_header.is_some() || seen_sides)) || (seen_sides && starts_plain_header(lines, i)) {
            break;
        }
        if let Some(rest) = l.strip_prefix("diff --git ") {
            git_header = Some(rest);
            fp.change = Some(Change::Modified);
        } else if let Some(mode) = l.strip_prefix("new file mode ") {
            fp.change = Some(Change::Added);
            fp.new_mode = Some(mode.trim().to_string());
        } else if l.starts_with("deleted file mode") {
            fp.change = Some(Change::Deleted);
        } else if let Some(mode) = l.strip_prefix("new mode ") {
            fp.new_mode = Some(mode.trim().to_string());
        } else if let Some(p) = l.strip_prefix("rename from ") {
            rename_from = Some(unquote(p));
            fp.change = Some(Change::Renamed);
        } else if let Some(p) = l.strip_prefix("rename to ") {
            rename_to = Some(unquote(p));
            fp.change = Some(Change::Renamed);
        } else if let Some(p) = l.strip_prefix("copy from ") {
            rename_from = Some(unquote(p));
            fp.change = Some(Change::Copied);
        } else if let Some(p) = l.strip_prefix("copy to ") {
            rename_to = Some(unquote(p));
            fp.change = Some(Change::Copied);
        } else if let Some(p) = l.strip_prefix("--- ") {
            minus = Some(side_path(p, "a/"));
        } else if let Some(p) = l.strip_prefix("+++ ") {
            plus = Some(side_path(p, "b/"));
        } else if l.starts_with("Binary files ") || l.starts_with("GIT binary patch") {
            fp.binary = true;
        }
        // `index`, `old mode`, `similarity index`, … carry nothing we need.
        i += 1;
    }
    // Paths: rename/copy headers, then ---/+++, then the `diff --git` line.
    let (header_old, header_new) = match git_header {
        Some(h) => match parse_git_header_paths(h) {
            Some((a, b)) => (Some(a), Some(b)),
            None if rename_from.is_some() || minus.is_some() || plus.is_some() => (None, None),
            None => return Err(DiffError::BadGitHeader { text: cut(h) }),
        },
        None => (None, None),
    };
    fp.old_path = rename_from.or(minus.clone().flatten()).or(header_old);
    fp.new_path = rename_to.or(plus.clone().flatten()).or(header_new);
    match fp.change {
        Some(Change::Added) => fp.old_path = None,
        Some(Change::Deleted) => fp.new_path = None,
        None => {
            // Header-less hunks, or bare ---/+++ headers (a `diff -u` of one file).
            if minus == Some(None) {
                fp.change = Some(Change::Added);
            } else if plus == Some(None) {
                fp.change = Some(Change::Deleted);
            } else if minus.is_some() || plus.is_some() {
                fp.change = Some(Change::Modified);
            }
            if fp.old_path.is_none() && fp.change != Some(Change::Added) {
                fp.old_path = Some(path_hint.to_string());
            }
            if fp.new_path.is_none() && fp.change != Some(Change::Deleted) {
                fp.new_path = Some(path_hint.to_string());
            }
        }
        _ => {}
    }
    Ok((fp, i))
}

/// Reads the hunks that start at `lines[i]` into `fp`, up to the first line after a hunk that is
/// not another hunk's header; returns that line's index.
fn read_hunks(lines: &[&str], mut i: usize, fp: &mut FilePatch) -> Result<usize, DiffError> {
    let path = fp.path().to_string();
    while let Some(&l) = lines.get(i).filter(|l| l.starts_with("@@")) {
        let header_line = i + 1;
        let (old_start, old_len, new_start, new_len) =
            parse_hunk_header(l).ok_or_else(|| DiffError::BadHunkHeader { path: path.clone(), line: i + 1, text: cut(l) })?;
        let mut hunk = Hunk { old_start, old_len, new_start, new_len, lines: Vec::new() };
        let (mut old_left, mut new_left) = (old_len, new_len);
        i += 1;
        while old_left > 0 || new_left > 0 {
            let Some(&l) = lines.get(i) else {
                return Err(DiffError::Truncated { path, line: header_line, missing_old: old_left, missing_new: new_left });
            };
            let (kind, content) = match l.as_bytes().first() {
                Some(b' ') => (LineKind::Context, &l[1..]),
                Some(b'-') => (LineKind::Removed, &l[1..]),
                Some(b'+') => (LineKind::Added, &l[1..]),
                Some(b'\\') => {
                    strip_newline(&mut hunk);
                    i += 1;
                    continue;
                }
                None => (LineKind::Context, ""),
                Some(_) => return Err(DiffError::BadHunkLine { path, line: i + 1, text: cut(l) }),
            };
            let (old_dec, new_dec) = match kind {
                LineKind::Context => (1, 1),
                LineKind::Removed => (1, 0),
                LineKind::Added => (0, 1),
            };
            if old_left < old_dec || new_left < new_dec {
                return Err(DiffError::BadHunkLine { path, line: i + 1, text: cut(l) });
            }
            old_left -= old_dec;
            new_left -= new_dec;
            hunk.lines.push(HunkLine { kind, text: format!("{content}\n") });
            i += 1;
        }
        // The marker for the hunk's last line comes after the counts are met.
        while lines.get(i).is_some_and(|l| l.starts_with('\\')) {
            strip_newline(&mut hunk);
            i += 1;
        }
        fp.hunks.push(hunk);
    }
    Ok(i)
}

/// `\ No newline at end of file`: the line before it has no terminator.
fn strip_newline(hunk: &mut Hunk) {
    if let Some(last) = hunk.lines.last_mut()
        && last.text.ends_with('\n')
    {
        last.text.pop();
    }
}

/// Reads `@@ -a[,b] +c[,d] @@ …` into `(a, b, c, d)`; an omitted count is 1.
pub fn parse_hunk_header(line: &str) -> Option<(usize, usize, usize, usize)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let range = |r: &str| -> Option<(usize, usize)> {
        match r.split_once(',') {
            Some((s, n)) => Some((s.parse().ok()?, n.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (a, b) = range(old)?;
    let (c, d) = range(new)?;
    Some((a, b, c, d))
}

/// A `---`/`+++` name: `None` for `/dev/null`, else the path without its `a/`/`b/` prefix. A tab
/// ends the name: git adds one after a name with a space in it, plain `diff -u` one before the
/// file's timestamp (git quotes a name that holds a tab). A `\r` at the end of a CRLF diff's line
/// is not part of the name either.
fn side_path(raw: &str, prefix: &str) -> Option<String> {
    let raw = raw.split('\t').next().unwrap_or(raw).trim_end_matches('\r');
    let name = unquote(raw);
    if name == "/dev/null" {
        return None;
    }
    Some(name.strip_prefix(prefix).map(str::to_string).unwrap_or(name))
}

/// The two paths of a `diff --git a/X b/Y` line. Unquoted names with spaces are ambiguous in
/// general; as git does, this relies on the two names being equal unless a rename or copy header
/// (which names them separately) follows.
fn parse_git_header_paths(rest: &str) -> Option<(String, String)> {
    if rest.starts_with('"') {
        let (a, after) = take_quoted(rest)?;
        let after = after.strip_prefix(' ')?;
        let b = if after.starts_with('"') { take_quoted(after)?.0 } else { after.to_string() };
        return Some((strip(a, "a/"), strip(b, "b/")));
    }
    if let Some(idx) = rest.find(" \"") {
        let (b, _) = take_quoted(&rest[idx + 1..])?;
        return Some((strip(rest[..idx].to_string(), "a/"), strip(b, "b/")));
    }
    // `a/NAME b/NAME` with the same NAME on both sides.
    if rest.len() % 2 == 1 {
        let half = rest.len() / 2;
        if rest.is_char_boundary(half) && rest.is_char_boundary(half + 1) {
            let (a, b) = (&rest[..half], &rest[half + 1..]);
            if let (Some(na), Some(nb)) = (a.strip_prefix("a/"), b.strip_prefix("b/"))
                && na == nb
            {
                return Some((na.to_string(), nb.to_string()));
            }
        }
    }
    let (a, b) = rest.split_once(" b/")?;
    Some((strip(a.to_string(), "a/"), b.to_string()))
}

fn strip(s: String, prefix: &str) -> String {
    s.strip_prefix(prefix).map(str::to_string).unwrap_or(s)
}

/// A name as git writes it: C-quoted (`"a\tb\303\251"`) when it holds special bytes.
fn unquote(raw: &str) -> String {
    if raw.starts_with('"')
        && let Some((s, rest)) = take_quoted(raw)
        && rest.is_empty()
    {
        return s;
    }
    raw.to_string()
}

/// Reads one C-quoted string at the start of `s`; returns it and what follows.
fn take_quoted(s: &str) -> Option<(String, &str)> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), &s[i + 1..])),
            b'\\' => {
                let c = *bytes.get(i + 1)?;
                i += 2;
                match c {
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b't' => out.push(b'\t'),
                    b'n' => out.push(b'\n'),
                    b'v' => out.push(11),
                    b'f' => out.push(12),
                    b'r' => out.push(b'\r'),
                    b'0'..=b'7' => {
                        let digits = bytes.get(i - 1..i + 2)?;
                        let v =
                            digits.iter().try_fold(0u32, |acc, &d| (b'0'..=b'7').contains(&d).then(|| acc * 8 + u32::from(d - b'0')))?;
                        out.push(u8::try_from(v).ok()?);
                        i += 2;
                    }
                    other => out.push(other),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

fn cut(s: &str) -> String {
    let s = s.trim_end_matches('\n');
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_git_sections_and_hunks() {
        let diff = "diff --git a/x.py b/x.py\nindex 1..2 100644\n--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n a\r\n-b\n+c\n\\ No newline at end of file\n\
                    diff --git a/y z.py b/y z.py\nnew file mode 100644\n--- /dev/null\n+++ b/y z.py\t\n@@ -0,0 +1 @@\n+diff --git a/q b/q\n";
        let sections = split_git_diff(diff.as_bytes()).expect("splits");
        assert_eq!(sections.len(), 2);
        let first = parse_file_patch(std::str::from_utf8(sections[0]).expect("utf8"), "").expect("parses");
        assert_eq!(first.change, Some(Change::Modified));
        assert_eq!(first.hunks[0].old_text(), "a\r\nb\n");
        assert_eq!(first.hunks[0].new_text(), "a\r\nc");
        let second = parse_file_patch(std::str::from_utf8(sections[1]).expect("utf8"), "").expect("parses");
        assert_eq!((second.old_path, second.new_path.as_deref()), (None, Some("y z.py")));
        assert_eq!(second.hunks[0].new_text(), "diff --git a/q b/q\n");
    }

    #[test]
    fn reads_quoted_and_renamed_names() {
        let p = "diff --git \"a/t\\303\\251st\\tx\" \"b/n\\303\\251w\"\nsimilarity index 90%\nrename from \"t\\303\\251st\\tx\"\nrename to \"n\\303\\251w\"\n";
        let fp = parse_file_patch(p, "").expect("parses");
        assert_eq!(fp.change, Some(Change::Renamed));
        assert_eq!(fp.old_path.as_deref(), Some("tést\tx"));
        assert_eq!(fp.new_path.as_deref(), Some("néw"));
        let mode_only = parse_file_patch("diff --git a/a b c b/a b c\nold mode 100644\nnew mode 100755\n", "").expect("parses");
        assert_eq!(mode_only.path(), "a b c");
    }

    #[test]
    fn header_less_hunks_use_the_hint_and_keep_the_last_line() {
        let fp = parse_file_patch("@@ -1,2 +1,2 @@\n a\n-b\n+c", "pkg/m.py").expect("parses");
        assert_eq!(fp.change, None);
        assert_eq!(fp.path(), "pkg/m.py");
        assert_eq!(fp.hunks[0].new_text(), "a\nc\n");
        assert!(matches!(parse_file_patch("@@ -1,3 +1,3 @@\n a\n-b\n", "m.py"), Err(DiffError::Truncated { .. })));
        assert!(matches!(parse_file_patch("@@@ -1 -1 +1 @@@\n", "m.py"), Err(DiffError::BadHunkHeader { .. })));
    }

    const GIT_DIFF: &str = r#"diff --git a/pkg/m.py b/pkg/m.py
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
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
"#;

    #[test]
    fn a_whole_git_diff_reads_modify_create_delete_rename_mode_and_missing_newlines() {
        let files = parse_diff(GIT_DIFF).expect("parses");
        assert_eq!(files.len(), 5);
        let m = &files[0];
        assert_eq!((m.old_path.as_deref(), m.new_path.as_deref(), m.change), (Some("pkg/m.py"), Some("pkg/m.py"), Some(Change::Modified)));
        assert_eq!(m.hunks.len(), 2);
        assert_eq!((m.hunks[0].old_text(), m.hunks[0].new_text()), ("a\nb\nc\n".to_string(), "a\nB\nc\n".to_string()));
        assert_eq!((m.hunks[1].old_text(), m.hunks[1].new_text()), ("x\ny".to_string(), "x\ny\nz".to_string()));
        let new = &files[1];
        assert_eq!((new.old_path.as_deref(), new.path(), new.change), (None, "new.py", Some(Change::Added)));
        assert_eq!(new.new_mode.as_deref(), Some("100755"));
        assert_eq!(new.hunks[0].new_text(), "print(1)\n");
        assert_eq!((files[2].new_path.as_deref(), files[2].path(), files[2].change), (None, "old.py", Some(Change::Deleted)));
        let renamed = &files[3];
        assert_eq!((renamed.old_path.as_deref(), renamed.new_path.as_deref()), (Some("r1.py"), Some("r2.py")));
        assert_eq!(renamed.change, Some(Change::Renamed));
        assert!(renamed.hunks.is_empty());
        assert_eq!((files[4].path(), files[4].new_mode.as_deref(), files[4].hunks.len()), ("run.sh", Some("100755"), 0));
        // One file's section reads the same alone.
        let sections = split_git_diff(GIT_DIFF.as_bytes()).expect("splits");
        let alone = parse_file_patch(std::str::from_utf8(sections[1]).expect("utf8"), "").expect("parses");
        assert_eq!(&alone, new);
    }

    #[test]
    fn a_plain_diff_u_reads_its_files_and_skips_what_lies_between() {
        let diff = "Only in a: junk\n\
                    diff -ruN a/x.py b/x.py\n\
                    --- a/x.py\t2024-01-01 10:00:00.000000000 +0000\n\
                    +++ b/x.py\t2024-01-02 10:00:00.000000000 +0000\n\
                    @@ -1 +1 @@\n-old\n+new\n\
                    diff -ruN a/y.py b/y.py\n\
                    --- a/y.py\t2024-01-01 10:00:00.000000000 +0000\n\
                    +++ b/y.py\t2024-01-02 10:00:00.000000000 +0000\n\
                    @@ -1,2 +1 @@\n keep\n-drop\n\
                    --- /dev/null\n\
                    +++ b/z.py\n\
                    @@ -0,0 +1 @@\n+z\n";
        let files = parse_diff(diff).expect("parses");
        let got: Vec<_> = files.iter().map(|f| (f.old_path.as_deref(), f.new_path.as_deref(), f.change, f.hunks.len())).collect();
        assert_eq!(
            got,
            [
                (Some("x.py"), Some("x.py"), Some(Change::Modified), 1),
                (Some("y.py"), Some("y.py"), Some(Change::Modified), 1),
                (None, Some("z.py"), Some(Change::Added), 1),
            ]
        );
        assert_eq!((files[1].hunks[0].old_text(), files[1].hunks[0].new_text()), ("keep\ndrop\n".to_string(), "keep\n".to_string()));
    }

    #[test]
    fn a_copy_is_read_as_a_copy() {
        let files = parse_diff("diff --git a/a.py b/b.py\nsimilarity index 100%\ncopy from a.py\ncopy to b.py\n").expect("parses");
        assert_eq!((files[0].old_path.as_deref(), files[0].new_path.as_deref()), (Some("a.py"), Some("b.py")));
        assert_eq!(files[0].change, Some(Change::Copied));
    }

    #[test]
    fn side_paths_are_unquoted_and_lose_timestamps() {
        assert_eq!(side_path("\"b/t\\303\\251st.py\"", "b/"), Some("tést.py".to_string()));
        assert_eq!(side_path("a/x.py\t2024-01-01", "a/"), Some("x.py".to_string()));
        assert_eq!(side_path("b/y z.py\t", "b/"), Some("y z.py".to_string()));
        assert_eq!(side_path("a/w.py\r", "a/"), Some("w.py".to_string()));
        assert_eq!(side_path("/dev/null", "a/"), None);
    }

    #[test]
    fn whole_diff_errors_name_the_line_of_the_whole_diff() {
        let short = parse_diff("--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n");
        assert_eq!(short, Err(DiffError::Truncated { path: "x".into(), line: 3, missing_old: 2, missing_new: 2 }));
        let bad = parse_diff("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-a\n?b\n");
        assert_eq!(bad, Err(DiffError::BadHunkLine { path: "y".into(), line: 10, text: "?b".into() }));
        assert_eq!(parse_diff("intro\n@@ -1 +1 @@\n-a\n+b\n"), Err(DiffError::NoFileHeader { line: 2 }));
    }
}
