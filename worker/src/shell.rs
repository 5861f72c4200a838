//! Building shell command lines safely.

/// Quotes a string for a POSIX shell: plain words stay as they are, anything else is wrapped in
/// single quotes with embedded single quotes escaped.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | ':' | '=' | ',' | '+' | '@'));
    if plain { s.to_string() } else { format!("'{}'", s.replace('\'', "'\\''")) }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("tests/t.py::test_a"), "tests/t.py::test_a");
        assert_eq!(quote("t.py::test_p[a b]"), "'t.py::test_p[a b]'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }
}
