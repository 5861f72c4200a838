//! Python's `str` whitespace rules, which the reference parsers lean on: `split()` and `strip()`
//! treat `\x1c`–`\x1f` as whitespace where Rust's `char::is_whitespace` does not, and the ids a
//! dataset lists were cut by Python's rules.

/// `str.isspace()` for one character.
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f' | ' ' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// `s.split()`: runs of whitespace separate fields; no empty fields.
pub(crate) fn split(s: &str) -> Vec<&str> {
    s.split(is_space).filter(|p| !p.is_empty()).collect()
}

/// `s.strip()`.
pub(crate) fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `s.lstrip()`.
pub(crate) fn lstrip(s: &str) -> &str {
    s.trim_start_matches(is_space)
}

/// `s.rstrip()`.
pub(crate) fn rstrip(s: &str) -> &str {
    s.trim_end_matches(is_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_the_separator_controls() {
        assert_eq!(split(" a\x1fb  c\u{a0}d "), ["a", "b", "c", "d"]);
        assert_eq!(strip("\x1c x \x1d"), "x");
    }
}
