//! C and C++ log parsers: `swebench.harness.log_parsers.c` (the same in 4.x and 5.x).
//!
//! `parse_log_doctest` reads doctest's `-r=xml` report with `xml.etree.ElementTree`, that is with
//! expat in namespace mode, and raises on anything expat rejects. [`xml`] is a strict reader that
//! accepts and rejects what expat 2.5 (the reference's pyexpat) does for a document that starts
//! at `<doctest` (so it has no prolog, no DTD and therefore only the five predefined entities),
//! namespace rules included, and keeps what the parser reads: tags, `name` and `success`.

use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use regex::Regex;

use super::python::py_regex;
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap, pystr};

/// The parser names this module serves, in the 5.x registry's order.
pub(super) const NAMES: &[&str] = &["parse_log_redis", "parse_log_jq", "parse_log_doctest", "parse_log_micropython_test", "parse_log_googletest"];

/// The parser called `name`, if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    Some(match name {
        "parse_log_redis" => parse_log_redis,
        "parse_log_jq" => parse_log_jq,
        "parse_log_doctest" => parse_log_doctest,
        "parse_log_micropython_test" => parse_log_micropython_test,
        "parse_log_googletest" => parse_log_googletest,
        _ => return None,
    })
}

/// The text of capture group `i` (empty when it did not take part).
fn group<'t>(caps: &regex::Captures<'t>, i: usize) -> &'t str {
    caps.get(i).map_or("", |m| m.as_str())
}

/// Redis/Valkey's Tcl test suite: `[ok]: name (12 ms)`, `[err]: name in file`, `[skip]: …`,
/// `[ignore]: …`.
fn parse_log_redis(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A\[(ok|err|skip|ignore)\]:{s}(.+?)(?:{s}\(({d}+{s}*m?s)\))?\z"));
    static IN_FILE: LazyLock<Regex> = LazyLock::new(|| py_regex(r"{s}+in{s}+{S}+\z"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let name = group(&caps, 2);
        match group(&caps, 1) {
            "ok" => {
                map.insert(name.to_string(), TestStatus::Passed);
            }
            "err" => {
                // The reference strips the file a failed test names.
                map.insert(IN_FILE.replace_all(name, "").into_owned(), TestStatus::Failed);
            }
            "skip" | "ignore" => {
                map.insert(name.to_string(), TestStatus::Skipped);
            }
            _ => {}
        }
    }
    Ok(map)
}

/// jq's `make check` (automake test driver): `PASS: tests/name`, `FAIL: tests/name`.
fn parse_log_jq(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A{s}*(PASS|FAIL):{s}(.+)\z"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = if group(&caps, 1) == "PASS" { TestStatus::Passed } else { TestStatus::Failed };
        map.insert(group(&caps, 2).to_string(), status);
    }
    Ok(map)
}

/// doctest's XML reporter (`-s -r=xml`): every `SubCase` of every `TestCase`, recorded as
/// `testcase > subcase`, passed when all its `Expression`s have `success="true"`.
fn parse_log_doctest(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    const START: &str = "<doctest";
    const END: &str = "</doctest>";
    let mut map = StatusMap::new();
    let Some(start) = log.find(START) else { return Ok(map) };
    // Without a closing tag the reference parses a slice that cannot be a document (it computes
    // the end as -1 + len("</doctest>")) and raises.
    let Some(end) = log[start..].find(END) else {
        return Err(ParseError { parser: "parse_log_doctest", reason: "`<doctest` without a later `</doctest>`: the reference's XML parse raises (no element found)".to_string() });
    };
    let document = &log[start..start + end + END.len()];
    let elements = xml::parse(document).map_err(|reason| ParseError {
        parser: "parse_log_doctest",
        reason: format!("the doctest XML is not well-formed where expat is strict: {reason} (the reference raises ParseError)"),
    })?;

    // Failing expressions before each element, so a subtree's count is one subtraction.
    let mut failing_before = Vec::with_capacity(elements.len() + 1);
    failing_before.push(0usize);
    for e in &elements {
        let failing = e.kind == xml::Kind::Expression && e.success.as_deref() != Some("true");
        failing_before.push(failing_before.last().copied().unwrap_or(0) + usize::from(failing));
    }
    let subcases: Vec<usize> = elements.iter().enumerate().filter(|(_, e)| e.kind == xml::Kind::SubCase).map(|(i, _)| i).collect();
    // `root.findall(".//TestCase")`: every descendant of the root (index 0), in document order.
    for (tc, testcase) in elements.iter().enumerate().skip(1) {
        if testcase.kind != xml::Kind::TestCase {
            continue;
        }
        let testcase_name = testcase.name.as_deref().unwrap_or("None");
        let first = subcases.partition_point(|&i| i <= tc);
        for &sc in subcases.get(first..).unwrap_or_default().iter().take_while(|&&i| i < testcase.end) {
            let Some(subcase) = elements.get(sc) else { continue };
            let failing = failing_before.get(subcase.end).copied().unwrap_or(0).saturating_sub(failing_before.get(sc + 1).copied().unwrap_or(0));
            let status = if failing == 0 { TestStatus::Passed } else { TestStatus::Failed };
            map.insert(format!("{testcase_name} > {}", subcase.name.as_deref().unwrap_or("None")), status);
        }
    }
    Ok(map)
}

/// MicroPython's `run-tests.py`: `pass  basics/x.py`, `FAIL  …`, `skip  …`.
fn parse_log_micropython_test(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A(pass|FAIL|skip){s}+(.+)\z"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = match group(&caps, 1) {
            "pass" => TestStatus::Passed,
            "FAIL" => TestStatus::Failed,
            _ => TestStatus::Skipped,
        };
        map.insert(group(&caps, 2).to_string(), status);
    }
    Ok(map)
}

/// GoogleTest: `[       OK ] Suite.Test (0 ms)`, `[  FAILED  ] Suite.Test (1 ms)`.
fn parse_log_googletest(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A.*\[{s}*(OK|FAILED){s}*\]{s}(.*){s}\(.*\)\z"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = if group(&caps, 1) == "OK" { TestStatus::Passed } else { TestStatus::Failed };
        map.insert(group(&caps, 2).to_string(), status);
    }
    Ok(map)
}

/// A strict XML reader with expat's (namespace-mode) acceptance, for `parse_log_doctest`.
mod xml {
    use std::collections::HashSet;

    /// What `parse_log_doctest` looks for, by un-namespaced tag.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Kind {
        TestCase,
        SubCase,
        Expression,
        Other,
    }

    /// One element, in document (pre-)order.
    #[derive(Debug)]
    pub(super) struct Element {
        pub(super) kind: Kind,
        /// The un-prefixed `name` attribute.
        pub(super) name: Option<String>,
        /// The un-prefixed `success` attribute.
        pub(super) success: Option<String>,
        /// One past the index of its last descendant.
        pub(super) end: usize,
    }

    const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
    const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

    /// An element whose end tag is still to come.
    struct Open<'a> {
        raw: &'a str,
        index: usize,
        bindings: usize,
    }

    /// A qualified name as written: `prefix:local` or `local`.
    #[derive(Clone, Copy)]
    struct QName<'a> {
        raw: &'a str,
        prefix: Option<&'a str>,
        local: &'a str,
    }

    /// Reads `doc` into its elements, or says why expat would reject it.
    pub(super) fn parse(doc: &str) -> Result<Vec<Element>, String> {
        let mut r = Reader { s: doc, pos: 0 };
        let mut elements: Vec<Element> = Vec::new();
        let mut open: Vec<Open<'_>> = Vec::new();
        // In-scope namespace declarations, innermost last (`None`: the default namespace).
        let mut bindings: Vec<(Option<&str>, String)> = Vec::new();
        let mut root_seen = false;
        loop {
            if open.is_empty() {
                // Outside the root element: white space, comments and PIs; one element.
                r.skip_space();
                if r.at_end() {
                    return if root_seen { Ok(elements) } else { Err("no element found".into()) };
                }
                if r.eat("<!--") {
                    r.comment()?;
                } else if r.eat("<?") {
                    r.processing_instruction()?;
                } else if !root_seen && r.eat("<") {
                    root_seen = true;
                    r.start_tag(&mut elements, &mut open, &mut bindings)?;
                } else {
                    return Err(format!("junk after document element at byte {}", r.pos));
                }
                continue;
            }
            match r.peek() {
                None => return Err("no element found (unclosed element)".into()),
                Some('<') => {
                    if r.eat("</") {
                        let name = r.qname()?;
                        r.skip_space();
                        if !r.eat(">") {
                            return Err(format!("invalid end tag at byte {}", r.pos));
                        }
                        let Some(top) = open.pop() else { return Err("end tag outside any element".into()) };
                        if top.raw != name.raw {
                            return Err(format!("mismatched tag: </{}> closes <{}>", name.raw, top.raw));
                        }
                        bindings.truncate(top.bindings);
                        let count = elements.len();
                        if let Some(e) = elements.get_mut(top.index) {
                            e.end = count;
                        }
                    } else if r.eat("<!--") {
                        r.comment()?;
                    } else if r.eat("<?") {
                        r.processing_instruction()?;
                    } else if r.eat("<![CDATA[") {
                        r.cdata()?;
                    } else if r.eat("<!") {
                        return Err(format!("invalid markup declaration at byte {}", r.pos));
                    } else {
                        r.eat("<");
                        r.start_tag(&mut elements, &mut open, &mut bindings)?;
                    }
                }
                Some('&') => {
                    r.eat("&");
                    r.reference()?;
                }
                Some(']') if r.rest().starts_with("]]>") => return Err(format!("`]]>` in content at byte {}", r.pos)),
                Some(c) => {
                    if !is_char(c) {
                        return Err(format!("invalid character {c:?} at byte {}", r.pos));
                    }
                    r.bump();
                }
            }
        }
    }

    /// XML 1.0's `Char`.
    fn is_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
    }

    /// XML's `S`.
    fn is_space(c: char) -> bool {
        matches!(c, ' ' | '\t' | '\r' | '\n')
    }

    fn in_table(table: &[(u32, u32)], c: char) -> bool {
        let c = u32::from(c);
        let i = table.partition_point(|&(_, hi)| hi < c);
        table.get(i).is_some_and(|&(lo, _)| lo <= c)
    }

    fn is_name_start(c: char) -> bool {
        in_table(NAME_START, c)
    }

    fn is_name_char(c: char) -> bool {
        in_table(NAME_CHAR, c)
    }

    /// Resolves a prefix in scope (`xml` is always bound).
    fn resolve<'b>(bindings: &'b [(Option<&str>, String)], prefix: Option<&str>) -> Option<&'b str> {
        if prefix == Some("xml") {
            return Some(XML_NS);
        }
        bindings.iter().rev().find(|(p, _)| *p == prefix).map(|(_, uri)| uri.as_str())
    }

    struct Reader<'a> {
        s: &'a str,
        pos: usize,
    }

    impl<'a> Reader<'a> {
        fn rest(&self) -> &'a str {
            self.s.get(self.pos..).unwrap_or_default()
        }

        fn at_end(&self) -> bool {
            self.pos >= self.s.len()
        }

        fn peek(&self) -> Option<char> {
            self.rest().chars().next()
        }

        fn bump(&mut self) -> Option<char> {
            let c = self.peek()?;
            self.pos += c.len_utf8();
            Some(c)
        }

        fn eat(&mut self, literal: &str) -> bool {
            if self.rest().starts_with(literal) {
                self.pos += literal.len();
                true
            } else {
                false
            }
        }

        /// Skips `S`; whether there was any.
        fn skip_space(&mut self) -> bool {
            let start = self.pos;
            while self.peek().is_some_and(is_space) {
                self.bump();
            }
            self.pos > start
        }

        /// An `NCName` (a name without `:`).
        fn ncname(&mut self) -> Result<&'a str, String> {
            let start = self.pos;
            match self.peek() {
                Some(c) if is_name_start(c) => {
                    self.bump();
                }
                other => return Err(format!("a name cannot start with {other:?} (byte {start})")),
            }
            while self.peek().is_some_and(is_name_char) {
                self.bump();
            }
            Ok(self.s.get(start..self.pos).unwrap_or_default())
        }

        /// A `QName`: at most one `:`, a name start after it.
        fn qname(&mut self) -> Result<QName<'a>, String> {
            let start = self.pos;
            let first = self.ncname()?;
            if self.eat(":") {
                let local = self.ncname()?;
                if self.peek() == Some(':') {
                    return Err(format!("a second `:` in a name (byte {})", self.pos));
                }
                return Ok(QName { raw: self.s.get(start..self.pos).unwrap_or_default(), prefix: Some(first), local });
            }
            Ok(QName { raw: first, prefix: None, local: first })
        }

        /// After `<!--`.
        fn comment(&mut self) -> Result<(), String> {
            loop {
                if self.eat("--") {
                    return if self.eat(">") { Ok(()) } else { Err(format!("`--` inside a comment (byte {})", self.pos)) };
                }
                match self.bump() {
                    None => return Err("unclosed comment".into()),
                    Some(c) if !is_char(c) => return Err(format!("invalid character {c:?} in a comment")),
                    Some(_) => {}
                }
            }
        }

        /// After `<?`.
        fn processing_instruction(&mut self) -> Result<(), String> {
            let target = self.ncname()?;
            if target.eq_ignore_ascii_case("xml") {
                return Err("an XML declaration (or a `<?xml` PI) not at the start".into());
            }
            if self.eat("?>") {
                return Ok(());
            }
            if !self.skip_space() {
                return Err(format!("invalid processing instruction (byte {})", self.pos));
            }
            loop {
                if self.eat("?>") {
                    return Ok(());
                }
                match self.bump() {
                    None => return Err("unclosed processing instruction".into()),
                    Some(c) if !is_char(c) => return Err(format!("invalid character {c:?} in a processing instruction")),
                    Some(_) => {}
                }
            }
        }

        /// After `<![CDATA[`.
        fn cdata(&mut self) -> Result<(), String> {
            loop {
                if self.eat("]]>") {
                    return Ok(());
                }
                match self.bump() {
                    None => return Err("unclosed CDATA section".into()),
                    Some(c) if !is_char(c) => return Err(format!("invalid character {c:?} in a CDATA section")),
                    Some(_) => {}
                }
            }
        }

        /// After `&`: a character or predefined entity reference.
        fn reference(&mut self) -> Result<char, String> {
            let start = self.pos;
            let code = if self.eat("#x") {
                self.number(16)?
            } else if self.eat("#") {
                self.number(10)?
            } else {
                let name = self.ncname()?;
                if !self.eat(";") {
                    return Err(format!("unterminated entity reference (byte {start})"));
                }
                return match name {
                    "amp" => Ok('&'),
                    "lt" => Ok('<'),
                    "gt" => Ok('>'),
                    "apos" => Ok('\''),
                    "quot" => Ok('"'),
                    _ => Err(format!("undefined entity &{name};")),
                };
            };
            char::from_u32(code).filter(|&c| is_char(c)).ok_or_else(|| format!("reference to invalid character number {code} (byte {start})"))
        }

        /// Digits of a character reference, then `;`; out-of-range values saturate (and fail).
        fn number(&mut self, radix: u32) -> Result<u32, String> {
            let mut value: u32 = 0;
            let mut digits = 0;
            while let Some(d) = self.peek().and_then(|c| c.to_digit(radix)) {
                self.bump();
                digits += 1;
                value = value.saturating_mul(radix).saturating_add(d);
            }
            if digits == 0 || !self.eat(";") {
                return Err(format!("invalid character reference (byte {})", self.pos));
            }
            Ok(value)
        }

        /// An attribute value after its opening quote, normalised as expat does.
        fn attribute_value(&mut self, quote: char) -> Result<String, String> {
            let mut value = String::new();
            loop {
                match self.bump() {
                    None => return Err("unclosed attribute value".into()),
                    Some(c) if c == quote => return Ok(value),
                    Some('<') => return Err(format!("`<` in an attribute value (byte {})", self.pos)),
                    Some('&') => value.push(self.reference()?),
                    Some('\r') => {
                        self.eat("\n");
                        value.push(' ');
                    }
                    Some('\n' | '\t') => value.push(' '),
                    Some(c) if !is_char(c) => return Err(format!("invalid character {c:?} in an attribute value")),
                    Some(c) => value.push(c),
                }
            }
        }

        /// After `<`: a start tag (or an empty-element tag), its namespaces checked and bound.
        fn start_tag(&mut self, elements: &mut Vec<Element>, open: &mut Vec<Open<'a>>, bindings: &mut Vec<(Option<&'a str>, String)>) -> Result<(), String> {
            let name = self.qname()?;
            let mut attributes: Vec<(QName<'a>, String)> = Vec::new();
            let mut seen: HashSet<&str> = HashSet::new();
            let empty = loop {
                let spaced = self.skip_space();
                match self.peek() {
                    Some('>') => {
                        self.bump();
                        break false;
                    }
                    Some('/') => {
                        self.bump();
                        if self.eat(">") {
                            break true;
                        }
                        return Err(format!("`/` not followed by `>` (byte {})", self.pos));
                    }
                    Some(_) if spaced => {
                        let attribute = self.qname()?;
                        self.skip_space();
                        if !self.eat("=") {
                            return Err(format!("attribute {} without a value", attribute.raw));
                        }
                        self.skip_space();
                        let quote = match self.bump() {
                            Some(q @ ('"' | '\'')) => q,
                            _ => return Err(format!("unquoted value for attribute {}", attribute.raw)),
                        };
                        let value = self.attribute_value(quote)?;
                        if !seen.insert(attribute.raw) {
                            return Err(format!("duplicate attribute {}", attribute.raw));
                        }
                        attributes.push((attribute, value));
                    }
                    _ => return Err(format!("invalid start tag (byte {})", self.pos)),
                }
            };

            // Namespace declarations first: they hold for the whole tag.
            let mark = bindings.len();
            for (attribute, uri) in &attributes {
                let declared = match (attribute.prefix, attribute.local) {
                    (None, "xmlns") => None,
                    (Some("xmlns"), prefix) => Some(prefix),
                    _ => continue,
                };
                if declared.is_some() && uri.is_empty() {
                    return Err(format!("{} must not undeclare a prefix", attribute.raw));
                }
                if declared == Some("xmlns") {
                    return Err("the prefix xmlns must not be declared".into());
                }
                if (declared == Some("xml")) != (uri == XML_NS) || uri == XMLNS_NS {
                    return Err(format!("{} binds a reserved prefix or namespace", attribute.raw));
                }
                if uri.contains('}') {
                    return Err(format!("namespace name {uri:?} holds the separator `}}` (syntax error)"));
                }
                bindings.push((declared, uri.clone()));
            }

            let namespaced = match name.prefix {
                Some(prefix) => {
                    resolve(bindings, Some(prefix)).ok_or_else(|| format!("unbound prefix in <{}>", name.raw))?;
                    true
                }
                None => resolve(bindings, None).is_some_and(|uri| !uri.is_empty()),
            };
            let mut element = Element {
                kind: match (namespaced, name.local) {
                    (false, "TestCase") => Kind::TestCase,
                    (false, "SubCase") => Kind::SubCase,
                    (false, "Expression") => Kind::Expression,
                    _ => Kind::Other,
                },
                name: None,
                success: None,
                end: 0,
            };
            let mut expanded: HashSet<(&str, &str)> = HashSet::new();
            for (attribute, value) in attributes {
                match (attribute.prefix, attribute.local) {
                    (None, "xmlns") | (Some("xmlns"), _) => {}
                    (Some(prefix), local) => {
                        let uri = resolve(bindings, Some(prefix)).ok_or_else(|| format!("unbound prefix in attribute {}", attribute.raw))?;
                        if !expanded.insert((uri, local)) {
                            return Err(format!("duplicate attribute {{{uri}}}{local}"));
                        }
                    }
                    (None, "name") => element.name = Some(value),
                    (None, "success") => element.success = Some(value),
                    (None, _) => {}
                }
            }

            let index = elements.len();
            elements.push(element);
            if empty {
                let count = elements.len();
                if let Some(e) = elements.get_mut(index) {
                    e.end = count;
                }
                bindings.truncate(mark);
            } else {
                open.push(Open { raw: name.raw, index, bindings: mark });
            }
            Ok(())
        }
    }

    /// expat 2.5's name-start characters (namespace mode: no `:`), from pyexpat itself.
    const NAME_START: &[(u32, u32)] = &[
        (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x131), (0x134, 0x13E),
        (0x141, 0x148), (0x14A, 0x17E), (0x180, 0x1C3), (0x1CD, 0x1F0), (0x1F4, 0x1F5), (0x1FA, 0x217),
        (0x250, 0x2A8), (0x2BB, 0x2C1), (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1),
        (0x3A3, 0x3CE), (0x3D0, 0x3D6), (0x3DA, 0x3DA), (0x3DC, 0x3DC), (0x3DE, 0x3DE), (0x3E0, 0x3E0),
        (0x3E2, 0x3F3), (0x401, 0x40C), (0x40E, 0x44F), (0x451, 0x45C), (0x45E, 0x481), (0x490, 0x4C4),
        (0x4C7, 0x4C8), (0x4CB, 0x4CC), (0x4D0, 0x4EB), (0x4EE, 0x4F5), (0x4F8, 0x4F9), (0x531, 0x556),
        (0x559, 0x559), (0x561, 0x586), (0x5D0, 0x5EA), (0x5F0, 0x5F2), (0x621, 0x63A), (0x641, 0x64A),
        (0x671, 0x6B7), (0x6BA, 0x6BE), (0x6C0, 0x6CE), (0x6D0, 0x6D3), (0x6D5, 0x6D5), (0x6E5, 0x6E6),
        (0x905, 0x939), (0x93D, 0x93D), (0x958, 0x961), (0x985, 0x98C), (0x98F, 0x990), (0x993, 0x9A8),
        (0x9AA, 0x9B0), (0x9B2, 0x9B2), (0x9B6, 0x9B9), (0x9DC, 0x9DD), (0x9DF, 0x9E1), (0x9F0, 0x9F1),
        (0xA05, 0xA0A), (0xA0F, 0xA10), (0xA13, 0xA28), (0xA2A, 0xA30), (0xA32, 0xA33), (0xA35, 0xA36),
        (0xA38, 0xA39), (0xA59, 0xA5C), (0xA5E, 0xA5E), (0xA72, 0xA74), (0xA85, 0xA8B), (0xA8D, 0xA8D),
        (0xA8F, 0xA91), (0xA93, 0xAA8), (0xAAA, 0xAB0), (0xAB2, 0xAB3), (0xAB5, 0xAB9), (0xABD, 0xABD),
        (0xAE0, 0xAE0), (0xB05, 0xB0C), (0xB0F, 0xB10), (0xB13, 0xB28), (0xB2A, 0xB30), (0xB32, 0xB33),
        (0xB36, 0xB39), (0xB3D, 0xB3D), (0xB5C, 0xB5D), (0xB5F, 0xB61), (0xB85, 0xB8A), (0xB8E, 0xB90),
        (0xB92, 0xB95), (0xB99, 0xB9A), (0xB9C, 0xB9C), (0xB9E, 0xB9F), (0xBA3, 0xBA4), (0xBA8, 0xBAA),
        (0xBAE, 0xBB5), (0xBB7, 0xBB9), (0xC05, 0xC0C), (0xC0E, 0xC10), (0xC12, 0xC28), (0xC2A, 0xC33),
        (0xC35, 0xC39), (0xC60, 0xC61), (0xC85, 0xC8C), (0xC8E, 0xC90), (0xC92, 0xCA8), (0xCAA, 0xCB3),
        (0xCB5, 0xCB9), (0xCDE, 0xCDE), (0xCE0, 0xCE1), (0xD05, 0xD0C), (0xD0E, 0xD10), (0xD12, 0xD28),
        (0xD2A, 0xD39), (0xD60, 0xD61), (0xE01, 0xE2E), (0xE30, 0xE30), (0xE32, 0xE33), (0xE40, 0xE45),
        (0xE81, 0xE82), (0xE84, 0xE84), (0xE87, 0xE88), (0xE8A, 0xE8A), (0xE8D, 0xE8D), (0xE94, 0xE97),
        (0xE99, 0xE9F), (0xEA1, 0xEA3), (0xEA5, 0xEA5), (0xEA7, 0xEA7), (0xEAA, 0xEAB), (0xEAD, 0xEAE),
        (0xEB0, 0xEB0), (0xEB2, 0xEB3), (0xEBD, 0xEBD), (0xEC0, 0xEC4), (0xF40, 0xF47), (0xF49, 0xF69),
        (0x10A0, 0x10C5), (0x10D0, 0x10F6), (0x1100, 0x1100), (0x1102, 0x1103), (0x1105, 0x1107),
        (0x1109, 0x1109), (0x110B, 0x110C), (0x110E, 0x1112), (0x113C, 0x113C), (0x113E, 0x113E),
        (0x1140, 0x1140), (0x114C, 0x114C), (0x114E, 0x114E), (0x1150, 0x1150), (0x1154, 0x1155),
        (0x1159, 0x1159), (0x115F, 0x1161), (0x1163, 0x1163), (0x1165, 0x1165), (0x1167, 0x1167),
        (0x1169, 0x1169), (0x116D, 0x116E), (0x1172, 0x1173), (0x1175, 0x1175), (0x119E, 0x119E),
        (0x11A8, 0x11A8), (0x11AB, 0x11AB), (0x11AE, 0x11AF), (0x11B7, 0x11B8), (0x11BA, 0x11BA),
        (0x11BC, 0x11C2), (0x11EB, 0x11EB), (0x11F0, 0x11F0), (0x11F9, 0x11F9), (0x1E00, 0x1E9B),
        (0x1EA0, 0x1EF9), (0x1F00, 0x1F15), (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D),
        (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D),
        (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC),
        (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC),
        (0x2126, 0x2126), (0x212A, 0x212B), (0x212E, 0x212E), (0x2180, 0x2182), (0x3007, 0x3007),
        (0x3021, 0x3029), (0x3041, 0x3094), (0x30A1, 0x30FA), (0x3105, 0x312C), (0x4E00, 0x9FA5),
        (0xAC00, 0xD7A3),
    ];

    /// expat 2.5's name characters (namespace mode: no `:`), from pyexpat itself.
    const NAME_CHAR: &[(u32, u32)] = &[
        (0x2D, 0x2E), (0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A), (0xB7, 0xB7), (0xC0, 0xD6),
        (0xD8, 0xF6), (0xF8, 0x131), (0x134, 0x13E), (0x141, 0x148), (0x14A, 0x17E), (0x180, 0x1C3),
        (0x1CD, 0x1F0), (0x1F4, 0x1F5), (0x1FA, 0x217), (0x250, 0x2A8), (0x2BB, 0x2C1), (0x2D0, 0x2D1),
        (0x300, 0x345), (0x360, 0x361), (0x386, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3CE),
        (0x3D0, 0x3D6), (0x3DA, 0x3DA), (0x3DC, 0x3DC), (0x3DE, 0x3DE), (0x3E0, 0x3E0), (0x3E2, 0x3F3),
        (0x401, 0x40C), (0x40E, 0x44F), (0x451, 0x45C), (0x45E, 0x481), (0x483, 0x486), (0x490, 0x4C4),
        (0x4C7, 0x4C8), (0x4CB, 0x4CC), (0x4D0, 0x4EB), (0x4EE, 0x4F5), (0x4F8, 0x4F9), (0x531, 0x556),
        (0x559, 0x559), (0x561, 0x586), (0x591, 0x5A1), (0x5A3, 0x5B9), (0x5BB, 0x5BD), (0x5BF, 0x5BF),
        (0x5C1, 0x5C2), (0x5C4, 0x5C4), (0x5D0, 0x5EA), (0x5F0, 0x5F2), (0x621, 0x63A), (0x640, 0x652),
        (0x660, 0x669), (0x670, 0x6B7), (0x6BA, 0x6BE), (0x6C0, 0x6CE), (0x6D0, 0x6D3), (0x6D5, 0x6E8),
        (0x6EA, 0x6ED), (0x6F0, 0x6F9), (0x901, 0x903), (0x905, 0x939), (0x93C, 0x94D), (0x951, 0x954),
        (0x958, 0x963), (0x966, 0x96F), (0x981, 0x983), (0x985, 0x98C), (0x98F, 0x990), (0x993, 0x9A8),
        (0x9AA, 0x9B0), (0x9B2, 0x9B2), (0x9B6, 0x9B9), (0x9BC, 0x9BC), (0x9BE, 0x9C4), (0x9C7, 0x9C8),
        (0x9CB, 0x9CD), (0x9D7, 0x9D7), (0x9DC, 0x9DD), (0x9DF, 0x9E3), (0x9E6, 0x9F1), (0xA02, 0xA02),
        (0xA05, 0xA0A), (0xA0F, 0xA10), (0xA13, 0xA28), (0xA2A, 0xA30), (0xA32, 0xA33), (0xA35, 0xA36),
        (0xA38, 0xA39), (0xA3C, 0xA3C), (0xA3E, 0xA42), (0xA47, 0xA48), (0xA4B, 0xA4D), (0xA59, 0xA5C),
        (0xA5E, 0xA5E), (0xA66, 0xA74), (0xA81, 0xA83), (0xA85, 0xA8B), (0xA8D, 0xA8D), (0xA8F, 0xA91),
        (0xA93, 0xAA8), (0xAAA, 0xAB0), (0xAB2, 0xAB3), (0xAB5, 0xAB9), (0xABC, 0xAC5), (0xAC7, 0xAC9),
        (0xACB, 0xACD), (0xAE0, 0xAE0), (0xAE6, 0xAEF), (0xB01, 0xB03), (0xB05, 0xB0C), (0xB0F, 0xB10),
        (0xB13, 0xB28), (0xB2A, 0xB30), (0xB32, 0xB33), (0xB36, 0xB39), (0xB3C, 0xB43), (0xB47, 0xB48),
        (0xB4B, 0xB4D), (0xB56, 0xB57), (0xB5C, 0xB5D), (0xB5F, 0xB61), (0xB66, 0xB6F), (0xB82, 0xB83),
        (0xB85, 0xB8A), (0xB8E, 0xB90), (0xB92, 0xB95), (0xB99, 0xB9A), (0xB9C, 0xB9C), (0xB9E, 0xB9F),
        (0xBA3, 0xBA4), (0xBA8, 0xBAA), (0xBAE, 0xBB5), (0xBB7, 0xBB9), (0xBBE, 0xBC2), (0xBC6, 0xBC8),
        (0xBCA, 0xBCD), (0xBD7, 0xBD7), (0xBE7, 0xBEF), (0xC01, 0xC03), (0xC05, 0xC0C), (0xC0E, 0xC10),
        (0xC12, 0xC28), (0xC2A, 0xC33), (0xC35, 0xC39), (0xC3E, 0xC44), (0xC46, 0xC48), (0xC4A, 0xC4D),
        (0xC55, 0xC56), (0xC60, 0xC61), (0xC66, 0xC6F), (0xC82, 0xC83), (0xC85, 0xC8C), (0xC8E, 0xC90),
        (0xC92, 0xCA8), (0xCAA, 0xCB3), (0xCB5, 0xCB9), (0xCBE, 0xCC4), (0xCC6, 0xCC8), (0xCCA, 0xCCD),
        (0xCD5, 0xCD6), (0xCDE, 0xCDE), (0xCE0, 0xCE1), (0xCE6, 0xCEF), (0xD02, 0xD03), (0xD05, 0xD0C),
        (0xD0E, 0xD10), (0xD12, 0xD28), (0xD2A, 0xD39), (0xD3E, 0xD43), (0xD46, 0xD48), (0xD4A, 0xD4D),
        (0xD57, 0xD57), (0xD60, 0xD61), (0xD66, 0xD6F), (0xE01, 0xE2E), (0xE30, 0xE3A), (0xE40, 0xE4E),
        (0xE50, 0xE59), (0xE81, 0xE82), (0xE84, 0xE84), (0xE87, 0xE88), (0xE8A, 0xE8A), (0xE8D, 0xE8D),
        (0xE94, 0xE97), (0xE99, 0xE9F), (0xEA1, 0xEA3), (0xEA5, 0xEA5), (0xEA7, 0xEA7), (0xEAA, 0xEAB),
        (0xEAD, 0xEAE), (0xEB0, 0xEB9), (0xEBB, 0xEBD), (0xEC0, 0xEC4), (0xEC6, 0xEC6), (0xEC8, 0xECD),
        (0xED0, 0xED9), (0xF18, 0xF19), (0xF20, 0xF29), (0xF35, 0xF35), (0xF37, 0xF37), (0xF39, 0xF39),
        (0xF3E, 0xF47), (0xF49, 0xF69), (0xF71, 0xF84), (0xF86, 0xF8B), (0xF90, 0xF95), (0xF97, 0xF97),
        (0xF99, 0xFAD), (0xFB1, 0xFB7), (0xFB9, 0xFB9), (0x10A0, 0x10C5), (0x10D0, 0x10F6), (0x1100, 0x1100),
        (0x1102, 0x1103), (0x1105, 0x1107), (0x1109, 0x1109), (0x110B, 0x110C), (0x110E, 0x1112),
        (0x113C, 0x113C), (0x113E, 0x113E), (0x1140, 0x1140), (0x114C, 0x114C), (0x114E, 0x114E),
        (0x1150, 0x1150), (0x1154, 0x1155), (0x1159, 0x1159), (0x115F, 0x1161), (0x1163, 0x1163),
        (0x1165, 0x1165), (0x1167, 0x1167), (0x1169, 0x1169), (0x116D, 0x116E), (0x1172, 0x1173),
        (0x1175, 0x1175), (0x119E, 0x119E), (0x11A8, 0x11A8), (0x11AB, 0x11AB), (0x11AE, 0x11AF),
        (0x11B7, 0x11B8), (0x11BA, 0x11BA), (0x11BC, 0x11C2), (0x11EB, 0x11EB), (0x11F0, 0x11F0),
        (0x11F9, 0x11F9), (0x1E00, 0x1E9B), (0x1EA0, 0x1EF9), (0x1F00, 0x1F15), (0x1F18, 0x1F1D),
        (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B),
        (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE),
        (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC),
        (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x20D0, 0x20DC), (0x20E1, 0x20E1), (0x2126, 0x2126),
        (0x212A, 0x212B), (0x212E, 0x212E), (0x2180, 0x2182), (0x3005, 0x3005), (0x3007, 0x3007),
        (0x3021, 0x302F), (0x3031, 0x3035), (0x3041, 0x3094), (0x3099, 0x309A), (0x309D, 0x309E),
        (0x30A1, 0x30FA), (0x30FC, 0x30FE), (0x3105, 0x312C), (0x4E00, 0x9FA5), (0xAC00, 0xD7A3),
    ];
}
