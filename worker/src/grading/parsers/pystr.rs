//! Python's `str` rules, which the reference parsers lean on: `split()` and `strip()` treat
//! `\x1c`–`\x1f` as whitespace where Rust's `char::is_whitespace` does not, `splitlines()` ends
//! lines at more than `\n`, and `isdigit()` / `int()` read any script's digits by Python 3.11's
//! Unicode 14.0 tables. The ids a dataset lists were cut by Python's rules.

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

/// `str.splitlines()`: `\n`, `\r`, `\r\n`, `\v`, `\f`, `\x1c`–`\x1e`, `\x85`, U+2028, U+2029 end a
/// line; no empty last line.
pub(crate) fn splitlines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            out.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' && it.peek().is_some_and(|&(_, n)| n == '\n') {
                it.next();
                end += 1;
            }
            start = end;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// `len(s) - len(s.lstrip())`, in characters.
pub(crate) fn indent_of(s: &str) -> usize {
    s.chars().count() - lstrip(s).chars().count()
}

/// The code points of the Unicode 14.0 decimal digits zero (each starts a run of ten).
const ND_ZEROS: &[u32] = &[
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090,
    0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50,
    0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730,
    0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140,
    0x1E2F0, 0x1E950, 0x1FBF0,
];

/// `str.isdigit()` characters that are not decimal digits (superscripts, circled digits, …):
/// `int()` refuses them.
const DIGIT_NOT_DECIMAL: &[(u32, u32)] = &[
    (0xB2, 0xB3),
    (0xB9, 0xB9),
    (0x1369, 0x1371),
    (0x19DA, 0x19DA),
    (0x2070, 0x2070),
    (0x2074, 0x2079),
    (0x2080, 0x2089),
    (0x2460, 0x2468),
    (0x2474, 0x247C),
    (0x2488, 0x2490),
    (0x24EA, 0x24EA),
    (0x24F5, 0x24FD),
    (0x24FF, 0x24FF),
    (0x2776, 0x277E),
    (0x2780, 0x2788),
    (0x278A, 0x2792),
    (0x10A40, 0x10A43),
    (0x10E60, 0x10E68),
    (0x11052, 0x1105A),
    (0x1F100, 0x1F10A),
];

/// A decimal digit's value (Python's `unicodedata.decimal`).
pub(crate) fn decimal_value(c: char) -> Option<u32> {
    let cp = u32::from(c);
    let i = ND_ZEROS.partition_point(|&z| z <= cp);
    let zero = *ND_ZEROS.get(i.checked_sub(1)?)?;
    (cp - zero < 10).then_some(cp - zero)
}

/// `str.isdigit()`.
pub(crate) fn isdigit(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            let cp = u32::from(c);
            decimal_value(c).is_some() || DIGIT_NOT_DECIMAL.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_the_separator_controls() {
        assert_eq!(split(" a\x1fb  c\u{a0}d "), ["a", "b", "c", "d"]);
        assert_eq!(strip("\x1c x \x1d"), "x");
    }

    #[test]
    fn python_lines_and_digits() {
        assert_eq!(splitlines("a\r\nb\rc\x1cd\u{2028}e\n"), ["a", "b", "c", "d", "e"]);
        assert_eq!(splitlines("\n"), [""]);
        assert!(splitlines("").is_empty());
        assert!(isdigit("²٣"));
        assert!(!isdigit("") && !isdigit("½"));
        assert_eq!(decimal_value('٣'), Some(3));
        assert_eq!(decimal_value('\u{1d7f9}'), Some(3));
        assert_eq!(decimal_value('²'), None);
        assert_eq!(indent_of("\u{a0} x "), 2);
    }
}
