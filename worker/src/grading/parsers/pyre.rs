//! Python's `re` on the `regex` crate: every reference parser's regular expressions are Python
//! `re` patterns, and the ports write them as the reference writes them and [`translate`] them.
//!
//! The two engines read the same pattern differently in a few places, which decide what a
//! parser matches, so they are mirrored here once for every port:
//! * `\s`/`\S`: Python's whitespace is `str.isspace()`, which adds the separators
//!   `\x1c`–`\x1f` to Unicode White_Space ([`PY_S`], [`PY_NS`]).
//! * `\d`/`\D` and `\w`/`\W`: Python 3.11 (the references' interpreter) reads them with its
//!   Unicode 14.0 tables, `\w` being `str.isalnum()` or `_` (letters and numbers, no combining
//!   marks) ([`PY_D`], [`PY_ND`], [`PY_W`], [`PY_NW`]); `worker/tests/parsers_python.rs` checks
//!   `\d` and `\s` against the reference's interpreter, every code point through the parsers.
//!   The `regex` crate's own tables are a later Unicode.
//! * `\Z` is the crate's `\z`; a needless escape of punctuation (`\_`, `\:`, `\"`) is the
//!   character; `\b`/`\B` panic: Python's word characters are not the crate's, so a port spells a
//!   word boundary out by hand where it is used.
//! * `re.IGNORECASE` also matches `ı İ` for `i`, `K` for `k` and `ſ` for `s` ([`ignore_case`]).
//!
//! Flags go in the pattern (`(?m)`, `(?s)`); `re.match` is a leading `^` or `\A`; `re.fullmatch`
//! also a trailing `\Z`. Python's `$` without `re.MULTILINE` also matches before a final `"\n"`:
//! a port that uses it either runs the pattern on text without a newline, where it is the crate's
//! `$`, or says how it copes.
//!
//! Every port reads `\w` and `\d` with Python 3.11's Unicode 14.0 tables, as the references do
//! (the `regex` crate's are a later Unicode: a Kawi digit, U+11F50, is `\d` to it and not to
//! Python 3.11).

use regex::Regex;

/// Python's `\s` (`str.isspace()`), as a `regex` class.
pub(super) const PY_S: &str = r"[\s\x1c-\x1f]";
/// Python's `\S`.
pub(super) const PY_NS: &str = r"[^\s\x1c-\x1f]";
/// Python 3.11's `\d` (Unicode 14.0 decimal digits).
pub(super) const PY_D: &str = r"[\d&&\p{Age=14.0}]";
/// Python 3.11's `\D`.
pub(super) const PY_ND: &str = r"[^\d&&\p{Age=14.0}]";
/// Python 3.11's `\w` (`str.isalnum()` or `_`, Unicode 14.0).
pub(super) const PY_W: &str = r"[\p{L}\p{N}_&&\p{Age=14.0}]";
/// Python 3.11's `\W`.
pub(super) const PY_NW: &str = r"[^\p{L}\p{N}_&&\p{Age=14.0}]";
/// A Python `re` pattern in `regex` syntax: `\s \S \w \W \d \D` get Python 3.11's classes
/// (nested classes work inside `[...]` too), `\Z` is `\z`, a needless escape of
/// punctuation (`\_`, `\:`, `\"`) becomes the character, any other escape of a letter or digit
/// (`\A`, `\n`, `\x1b`) stays; `\b` and `\B` panic (write them by hand).
pub(super) fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push_str(PY_S),
            Some('S') => out.push_str(PY_NS),
            Some('w') => out.push_str(PY_W),
            Some('W') => out.push_str(PY_NW),
            Some('d') => out.push_str(PY_D),
            Some('D') => out.push_str(PY_ND),
            Some('Z') => out.push_str(r"\z"),
            Some(e @ ('b' | 'B')) => panic!("\\{e} in {pattern:?}: Python's word boundary is not the regex crate's; write it by hand"),
            Some(e) if e.is_ascii_alphanumeric() => {
                out.push('\\');
                out.push(e);
            }
            Some(e) => out.push_str(&regex::escape(e.encode_utf8(&mut [0; 4]))),
            None => out.push('\\'),
        }
    }
    out
}

/// Compiles a constant Python pattern (see [`translate`]); panics where it does not compile.
pub(super) fn compile(pattern: &str) -> Regex {
    regex::RegexBuilder::new(&translate(pattern))
        .size_limit(64 << 20)
        .build()
        .unwrap_or_else(|e| panic!("the constant pattern {pattern:?} compiles: {e}"))
}

/// Compiles a constant Python pattern (the name the ports use; see [`compile`]).
pub(super) fn py_regex(pattern: &str) -> Regex {
    compile(pattern)
}

/// A lazily compiled constant Python pattern: `py_re!(NAME, r"pattern")`.
macro_rules! py_re {
    ($name:ident, $pattern:expr) => {
        static $name: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| $crate::grading::parsers::pyre::compile($pattern));
    };
}
pub(super) use py_re;

/// The characters Python's `re.IGNORECASE` matches for an ASCII letter (Python 3.11: simple case
/// folding plus its own equivalences, which add `ı İ` to `i`, `K` to `k` and `ſ` to `s`).
fn letter_variants(c: char) -> String {
    let lower = c.to_ascii_lowercase();
    let extra = match lower {
        'i' => "\u{130}\u{131}",
        'k' => "\u{212a}",
        's' => "\u{17f}",
        _ => "",
    };
    format!("{lower}{}{extra}", lower.to_ascii_uppercase())
}

/// A pattern compiled with `re.IGNORECASE`, as a case-sensitive pattern: every ASCII letter
/// outside an escape becomes the class of what Python matches for it. (A letter range in a class,
/// `[a-z]`, would not come out right; no pattern that needs this has one.)
pub(super) fn ignore_case(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 4);
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            c if c.is_ascii_alphabetic() && in_class => out.push_str(&letter_variants(c)),
            c if c.is_ascii_alphabetic() => {
                out.push('[');
                out.push_str(&letter_variants(c));
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// The text of capture group `i`, `""` where it did not take part (`m.group(i) or ""`).
pub(super) fn group<'t>(caps: &regex::Captures<'t>, i: usize) -> &'t str {
    caps.get(i).map_or("", |m| m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_gives_python_classes() {
        let re = compile(r"^a\sb\S\w$");
        assert!(re.is_match("a\x1cb-x"));
        assert!(!re.is_match("a\x1cb-\u{301}"));
        assert_eq!(translate(r"x86\_64\:"), "x86_64:");
        assert_eq!(translate(r"\A\d\Z"), format!(r"\A{PY_D}\z"));
    }

    #[test]
    fn classes_are_python_311s_not_a_later_unicodes() {
        // A Kawi digit (Unicode 15) is `\d` to the regex crate, not to Python 3.11.
        assert!(!compile(r"\A\d\Z").is_match("\u{11f50}"));
        for (c, word) in [("7", true), ("٣", true), ("a", true), ("é", true), ("_", true), ("\u{301}", false), ("-", false)] {
            assert_eq!(compile(r"\A\w\Z").is_match(c), word, "{c:?}");
        }
    }

    #[test]
    fn ignore_case_spells_out_pythons_letters() {
        let re = compile(&ignore_case(r"kiss\s[xy]"));
        assert!(re.is_match("\u{212a}\u{130}\u{17f}S x"));
        assert!(!re.is_match("kiss z"));
    }
}
