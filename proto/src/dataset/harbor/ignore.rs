//! `.harborignore`: the package's exclusions of test and solution inputs
//! (`harbor.models.task.file_filter.TaskFileFilter`), with pathspec 1.1's `GitIgnoreSpec`
//! semantics: each pattern translated to a regular expression as `GitIgnoreSpecPattern` does,
//! matched as its simple backend matches (the last match wins, a match that ends in a
//! directory marker weighs less than a whole-path match unless it re-includes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::{HarborErrorKind, Res, read_text, rel, resolve, validate_input_tree};

/// The name of the ignore file.
pub const IGNORE_FILENAME: &str = ".harborignore";

/// One compiled pattern: its regular expression and whether a match excludes (`true`) or
/// re-includes (`false`).
#[derive(Debug)]
struct GitPattern {
    re: Regex,
    include: bool,
}

/// A bad pattern (`GitIgnorePatternError`, or a regular expression Python would not compile).
type PatternError = String;

/// `GitIgnoreSpecPattern.pattern_to_regex`: None for a comment, a blank line, `/`, or a range
/// Git discards.
fn git_pattern(line: &str) -> Result<Option<GitPattern>, PatternError> {
    let mut p = line;
    if !p.ends_with("\\ ") {
        p = p.trim_end_matches(super::py_space);
    }
    if p.is_empty() || p.starts_with('#') || p == "/" {
        return Ok(None);
    }
    let include = !p.starts_with('!');
    if !include {
        p = &p[1..];
    }
    let mut segs: Vec<String> = p.split('/').map(str::to_string).collect();
    let is_dir = segs.last().is_some_and(String::is_empty);
    // __normalize_segments
    if segs[0].is_empty() {
        segs.remove(0);
    } else if (segs.len() == 1 || (segs.len() == 2 && segs[1].is_empty())) && segs[0] != "**" {
        segs.insert(0, "**".into());
    }
    if segs.is_empty() {
        return Err(format!("invalid pattern {line:?}: it matches nothing"));
    }
    if segs.last().is_some_and(String::is_empty) {
        *segs.last_mut().expect("non-empty") = "**".into();
    }
    let mut i = segs.len() - 1;
    while i > 0 {
        if segs[i - 1] == "**" && segs[i] == "**" {
            segs.remove(i);
        }
        i -= 1;
    }
    const DIR_MARK_CG: &str = "(?P<ps_d>/)";
    const DIR_MARK_OPT: &str = "(?:(?P<ps_d>/)|$)";
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let regex = match s.as_slice() {
        ["**"] => (if is_dir { DIR_MARK_CG } else { "." }).to_string(),
        ["**", "*"] => ".".to_string(),
        ["**", "*", "**"] => (if is_dir { DIR_MARK_CG } else { "/" }).to_string(),
        _ => {
            let mut out = String::new();
            let mut need_slash = false;
            let end = s.len() - 1;
            for (i, seg) in s.iter().enumerate() {
                if *seg == "**" {
                    if i == 0 {
                        out.push_str("^(?:.+/)?");
                    } else if i < end {
                        out.push_str("(?:/.+)?");
                        need_slash = true;
                    } else {
                        out.push_str(if is_dir { DIR_MARK_CG } else { "/" });
                    }
                } else {
                    if i == 0 {
                        out.push('^');
                    }
                    if need_slash {
                        out.push('/');
                    }
                    if *seg == "*" {
                        out.push_str("[^/]+");
                    } else {
                        match segment_glob(seg) {
                            Ok(Some(r)) => out.push_str(&r),
                            Ok(None) => return Ok(None),
                            Err(e) => return Err(format!("invalid pattern {line:?}: {e}")),
                        }
                    }
                    if i == end {
                        out.push_str(DIR_MARK_OPT);
                    }
                    need_slash = true;
                }
            }
            out
        }
    };
    // Python's re.match anchors at the start; `.` stops at a newline in both.
    let re = Regex::new(&format!("^(?:{regex})")).map_err(|e| format!("invalid pattern {line:?}: {e}"))?;
    Ok(Some(GitPattern { re, include }))
}

/// `_translate_segment_glob(pattern, "raise")`: Ok(None) for an unclosed range (Git discards the
/// pattern).
fn segment_glob(pattern: &str) -> Result<Option<String>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let (mut i, end) = (0, chars.len());
    let mut escape = false;
    let mut out = String::new();
    while i < end {
        let c = chars[i];
        i += 1;
        if escape {
            escape = false;
            out.push_str(&regex::escape(&c.to_string()));
        } else if c == '\\' {
            escape = true;
        } else if c == '*' {
            out.push_str("[^/]*");
        } else if c == '?' {
            out.push_str("[^/]");
        } else if c == '[' {
            let mut j = i;
            if j < end && (chars[j] == '!' || chars[j] == '^') {
                j += 1;
            }
            if j < end && chars[j] == ']' {
                j += 1;
            }
            while j < end && chars[j] != ']' {
                j += 1;
            }
            if j >= end {
                return Ok(None);
            }
            j += 1;
            let mut expr = String::from("[");
            if chars[i] == '!' || chars[i] == '^' {
                expr.push('^');
                i += 1;
            }
            // The class body as Python's re reads it: every character literal but `-` ranges
            // (Rust's regex would read `[`, `&&`, `~~` and `--` as set operations).
            let body: Vec<char> = chars[i..j - 1].to_vec();
            for (k, b) in body.iter().enumerate() {
                let range = *b == '-' && k > 0 && k + 1 < body.len();
                if range {
                    expr.push('-');
                } else if *b == '\\' {
                    expr.push_str("\\\\");
                } else if b.is_ascii_punctuation() {
                    expr.push('\\');
                    expr.push(*b);
                } else {
                    expr.push(*b);
                }
            }
            expr.push(']');
            out.push_str(&expr);
            i = j;
        } else {
            out.push_str(&regex::escape(&c.to_string()));
        }
    }
    if escape {
        return Err(format!("escape character found with no next character to escape: {pattern:?}"));
    }
    Ok(Some(out))
}

/// `GitIgnoreSpec.check_file(...).include`, as pathspec's simple backend decides it.
fn check(spec: &[GitPattern], file: &str) -> Option<bool> {
    let file = file.strip_prefix('/').or_else(|| file.strip_prefix("./")).unwrap_or(file);
    let (mut out, mut out_priority) = (None, 0);
    for p in spec {
        let Some(caps) = p.re.captures(file) else { continue };
        let dir_mark = caps.name("ps_d").is_some_and(|m| !m.as_str().is_empty());
        let priority = if dir_mark { 1 } else { 2 };
        if (p.include && dir_mark) || priority >= out_priority {
            out = Some(p.include);
            out_priority = priority;
        }
    }
    out
}

/// Python's `str.splitlines()`.
fn splitlines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if matches!(c, '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            out.push(&s[start..i]);
            let mut next = i + c.len_utf8();
            if c == '\r'
                && let Some((_, '\n')) = it.peek()
            {
                it.next();
                next += 1;
            }
            start = next;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// `TaskFileFilter`: which task inputs the `.harborignore` files under `tests/` and `solution/`
/// exclude.
#[derive(Debug)]
pub(super) struct FileFilter {
    task_dir: PathBuf,
    scopes: Vec<GitPattern>,
    specs: HashMap<PathBuf, std::rc::Rc<Vec<GitPattern>>>,
}

impl FileFilter {
    pub(super) fn new(task_dir: &Path) -> FileFilter {
        let scopes = ["/tests/", "/solution/", "/steps/*/tests/", "/steps/*/solution/"]
            .iter()
            .filter_map(|l| git_pattern(l).ok().flatten())
            .collect();
        FileFilter { task_dir: task_dir.to_path_buf(), scopes, specs: HashMap::new() }
    }

    fn in_scope(&self, rel: &str) -> bool {
        check(&self.scopes, rel) == Some(true)
    }

    fn spec_for(&mut self, dir: &Path) -> Res<std::rc::Rc<Vec<GitPattern>>> {
        if let Some(s) = self.specs.get(dir) {
            return Ok(s.clone());
        }
        let path = dir.join(IGNORE_FILENAME);
        validate_input_tree(&path, &self.task_dir, None)?;
        let mut spec = Vec::new();
        if path.exists() {
            let at = rel(&self.task_dir, &path);
            let text = read_text(&path).map_err(|e| (HarborErrorKind::Io, at.clone(), format!("cannot be read: {e}")))?;
            for line in splitlines(&text) {
                match git_pattern(line) {
                    Ok(Some(p)) => spec.push(p),
                    Ok(None) => {}
                    Err(e) => return Err((HarborErrorKind::Config, at, format!("{e}; fix or remove the line"))),
                }
            }
        }
        let spec = std::rc::Rc::new(spec);
        self.specs.insert(dir.to_path_buf(), spec.clone());
        Ok(spec)
    }

    fn posix(&self, p: &Path, base: &Path) -> String {
        let r = p.strip_prefix(base).unwrap_or(p).to_string_lossy().into_owned();
        if r.is_empty() { ".".to_string() } else { r }
    }

    /// `TaskFileFilter._matches`.
    fn matches(&mut self, path: &Path) -> Res<bool> {
        let Ok(relative) = path.strip_prefix(&self.task_dir).map(Path::to_path_buf) else { return Ok(false) };
        if relative.file_name().is_some_and(|n| n == IGNORE_FILENAME) {
            return Ok(true);
        }
        let suffix = if path.is_dir() { "/" } else { "" };
        if !self.in_scope(&format!("{}{suffix}", self.posix(path, &self.task_dir))) {
            return Ok(false);
        }
        let mut specs: Vec<(PathBuf, std::rc::Rc<Vec<GitPattern>>)> = Vec::new();
        let mut candidate = self.task_dir.clone();
        for part in relative.components() {
            if self.in_scope(&format!("{}/", self.posix(&candidate, &self.task_dir))) {
                let spec = self.spec_for(&candidate)?;
                specs.push((candidate.clone(), spec));
            }
            candidate.push(part);
            let suffix = if candidate != path || path.is_dir() { "/" } else { "" };
            if !self.in_scope(&format!("{}{suffix}", self.posix(&candidate, &self.task_dir))) {
                continue;
            }
            let mut excluded = false;
            for (dir, spec) in &specs {
                if let Some(include) = check(spec, &format!("{}{suffix}", self.posix(&candidate, dir))) {
                    excluded = include;
                }
            }
            if excluded {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `TaskFileFilter.is_excluded`: the path, or the task-internal file a link names.
    pub(super) fn is_excluded(&mut self, path: &Path) -> Res<bool> {
        if !path.starts_with(&self.task_dir) {
            return Ok(false);
        }
        if self.matches(path)? {
            return Ok(true);
        }
        let resolved = resolve(path);
        Ok(resolved != path && resolved.starts_with(&self.task_dir) && self.matches(&resolved)?)
    }

    /// `TaskFileFilter.require_included`.
    pub(super) fn require_included(&mut self, path: &Path) -> Res<()> {
        if self.is_excluded(path)? {
            let at = rel(&self.task_dir, path);
            return Err((HarborErrorKind::Missing, at, format!("is required but excluded by {IGNORE_FILENAME}; remove the pattern that excludes it")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_translate_as_pathspec_translates_them() {
        let m = |pat: &str, file: &str| check(&[git_pattern(pat).expect("valid").expect("a pattern")], file);
        assert_eq!(m("*.bak", "a/b.bak"), Some(true));
        assert_eq!(m("/tests/", "tests/x"), Some(true));
        assert_eq!(m("/tests/", "tests"), None);
        assert_eq!(m("!keep.txt", "keep.txt"), Some(false));
        assert_eq!(m("data/**/x", "data/a/b/x"), Some(true));
        assert_eq!(m("[ab].txt", "b.txt"), Some(true));
        assert!(git_pattern("[ab.txt").expect("discarded").is_none());
        assert!(git_pattern("a\\").is_err());
        assert_eq!(splitlines("a\r\nb\rc\u{2028}d\n"), ["a", "b", "c", "d"]);
    }
}
