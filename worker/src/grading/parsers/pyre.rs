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
//! Which Unicode tables `\w` and `\d` get is a [`Classes`] value. The SWE-bench Python, C, Go,
//! Rust, PHP and Java ports and the SWE-smith ports use Python 3.11's ([`Classes::PYTHON_311`]);
//! the SWE-bench JavaScript and Ruby ports and R2E-Gym's read both with the crate's own tables
//! ([`Classes::REGEX_CRATE`]), and SWE-rebench V2's reads `\d` as Python 3.11 and `\w` with the
//! crate's ([`Classes::REGEX_CRATE_WORD`]). The three differ only on characters Unicode assigned
//! after 14.0 (a Kawi digit, U+11F50, is `\d` to the crate and not to Python 3.11); they are kept
//! as the ports were written, which is not yet how the references read those characters.

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
/// Python's `\w` (`str.isalnum()` or `_`) on the `regex` crate's Unicode tables: letters,
/// numbers, underscore (no combining marks).
const CRATE_W: &str = r"[\p{L}\p{N}_]";
/// Python's `\W` on the `regex` crate's Unicode tables.
const CRATE_NW: &str = r"[^\p{L}\p{N}_]";

/// Whose Unicode tables a class is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tables {
    /// Python 3.11's (Unicode 14.0), as the references read it.
    Python311,
    /// The `regex` crate's own (a later Unicode; `\d` stays the crate's `\d`).
    RegexCrate,
}

/// The tables `\w`/`\W` and `\d`/`\D` are read with (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Classes {
    /// For `\w` and `\W`.
    pub(super) word: Tables,
    /// For `\d` and `\D`.
    pub(super) digit: Tables,
}

impl Classes {
    /// Python 3.11's classes throughout.
    pub(super) const PYTHON_311: Classes = Classes { word: Tables::Python311, digit: Tables::Python311 };
    /// The `regex` crate's tables for `\w` and `\d` (the SWE-bench JavaScript and Ruby ports,
    /// R2E-Gym's).
    pub(super) const REGEX_CRATE: Classes = Classes { word: Tables::RegexCrate, digit: Tables::RegexCrate };
    /// Python 3.11's `\d`, the `regex` crate's `\w` (SWE-rebench V2's port).
    pub(super) const REGEX_CRATE_WORD: Classes = Classes { word: Tables::RegexCrate, digit: Tables::Python311 };
}

/// A Python `re` pattern in `regex` syntax: `\s \S \w \W \d \D` get Python's classes under
/// `classes` (nested classes work inside `[...]` too), `\Z` is `\z`, a needless escape of
/// punctuation (`\_`, `\:`, `\"`) becomes the character, any other escape of a letter or digit
/// (`\A`, `\n`, `\x1b`) stays; `\b` and `\B` panic (write them by hand).
pub(super) fn translate(pattern: &str, classes: Classes) -> String {
    let python_word = classes.word == Tables::Python311;
    let python_digit = classes.digit == Tables::Python311;
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
            Some('w') => out.push_str(if python_word { PY_W } else { CRATE_W }),
            Some('W') => out.push_str(if python_word { PY_NW } else { CRATE_NW }),
            Some('d') if python_digit => out.push_str(PY_D),
            Some('D') if python_digit => out.push_str(PY_ND),
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
pub(super) fn compile(pattern: &str, classes: Classes) -> Regex {
    regex::RegexBuilder::new(&translate(pattern, classes))
        .size_limit(64 << 20)
        .build()
        .unwrap_or_else(|e| panic!("the constant pattern {pattern:?} compiles: {e}"))
}

/// Compiles a constant Python pattern with Python 3.11's classes.
pub(super) fn py_regex(pattern: &str) -> Regex {
    compile(pattern, Classes::PYTHON_311)
}

/// A lazily compiled constant Python pattern: `py_re!(NAME, r"pattern")` compiles it with the
/// [`Classes`] the using module names `CLASSES`.
macro_rules! py_re {
    ($name:ident, $pattern:expr) => {
        static $name: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| $crate::grading::parsers::pyre::compile($pattern, CLASSES));
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
        let re = compile(r"^a\sb\S\w$", Classes::REGEX_CRATE);
        assert!(re.is_match("a\x1cb-x"));
        assert!(!re.is_match("a\x1cb-\u{301}"));
        assert_eq!(translate(r"x86\_64\:", Classes::REGEX_CRATE), "x86_64:");
        assert_eq!(translate(r"\A\d\Z", Classes::PYTHON_311), format!(r"\A{PY_D}\z"));
    }

    #[test]
    fn the_class_tables_differ_only_past_unicode_14() {
        let kawi_digit = "\u{11f50}";
        assert!(!compile(r"\A\d\Z", Classes::PYTHON_311).is_match(kawi_digit));
        assert!(!compile(r"\A\d\Z", Classes::REGEX_CRATE_WORD).is_match(kawi_digit));
        assert!(compile(r"\A\d\Z", Classes::REGEX_CRATE).is_match(kawi_digit));
        for c in ["7", "٣", "a", "é", "_", "\u{301}", "-"] {
            let word = |classes| compile(r"\A\w\Z", classes).is_match(c);
            assert_eq!(word(Classes::PYTHON_311), word(Classes::REGEX_CRATE), "{c:?}");
        }
    }

    #[test]
    fn ignore_case_spells_out_pythons_letters() {
        let re = compile(&ignore_case(r"kiss\s[xy]"), Classes::PYTHON_311);
        assert!(re.is_match("\u{212a}\u{130}\u{17f}S x"));
        assert!(!re.is_match("kiss z"));
    }
}
