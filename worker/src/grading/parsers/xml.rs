//! An XML reader with expat's acceptance, for the parsers that read a report with
//! `xml.etree.ElementTree` (`ET.fromstring`, `ET.parse`): doctest's `-r=xml` report in SWE-bench,
//! JUnit XML in SWE-smith's Gradle parser, JUnit, R and doctest reports in SWE-rebench V2.
//!
//! ElementTree parses with expat 2.5 (the reference's pyexpat) in namespace mode and raises
//! `ParseError` on anything expat rejects; a parser then either raises too or skips the
//! document, so what is rejected decides what a log grades as. This reader accepts and rejects
//! what expat does (the XML declaration, names by expat's own tables, character and entity
//! references, namespace rules, comments, PIs, CDATA, an internal DTD subset's general entities)
//! and keeps what the parsers read: each element's tag and attributes as ElementTree names them
//! (`{uri}local` in a namespace), its parent and its subtree.
//!
//! Not modelled: the bodies of `ELEMENT`/`ATTLIST`/`NOTATION` declarations in an internal DTD
//! subset (skipped, not checked; an `ATTLIST` default is not applied), and markup inside an
//! internal entity's replacement text (read as text). JUnit and doctest reports carry no DTD; a
//! parser for which a DTD would matter refuses one ([`Dtd::Refuse`]).
//!
//! One idea at some length: expat's acceptance is the point and it lives in the grammar's
//! details (name tables, references, namespaces, the DTD subset), which are read and checked as
//! one reader.

use std::collections::{HashMap, HashSet};

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// What the reader does with a document type declaration before the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dtd {
    /// Reads it as expat does (the internal subset's general entities are used).
    Read,
    /// Stops at it with [`Error::Doctype`]: for a parser whose reference would apply a DTD's
    /// attribute defaults or external entities, which this reader does not.
    Refuse,
}

/// Why a document is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Error {
    /// expat rejects it (`xml.etree.ElementTree.ParseError` in the reference): why.
    Malformed(String),
    /// It has a document type declaration, and the caller asked for [`Dtd::Refuse`].
    Doctype,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Malformed(reason) => f.write_str(reason),
            Error::Doctype => f.write_str("a document type declaration (<!DOCTYPE)"),
        }
    }
}

impl From<String> for Error {
    fn from(reason: String) -> Self {
        Error::Malformed(reason)
    }
}

impl From<&str> for Error {
    fn from(reason: &str) -> Self {
        Error::Malformed(reason.to_string())
    }
}

/// One element, in document (pre-)order.
#[derive(Debug)]
struct Element {
    tag: String,
    attrs: Vec<(String, String)>,
    parent: Option<usize>,
    /// One past the index of its last descendant.
    end: usize,
}

/// A parsed document: element 0 is the root.
#[derive(Debug)]
pub(super) struct Document {
    elements: Vec<Element>,
}

impl Document {
    /// How many elements it has (the root is element 0; elements are in document order).
    pub(super) fn len(&self) -> usize {
        self.elements.len()
    }

    /// Element `e`'s tag as ElementTree names it (`{uri}local` in a namespace).
    pub(super) fn tag(&self, e: usize) -> &str {
        self.elements.get(e).map_or("", |el| el.tag.as_str())
    }

    /// One past the index of element `e`'s last descendant.
    pub(super) fn end(&self, e: usize) -> usize {
        self.elements.get(e).map_or(0, |el| el.end)
    }

    /// `element.get(name)`.
    pub(super) fn get(&self, e: usize, name: &str) -> Option<&str> {
        self.elements.get(e)?.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// `element.findall(".//tag")`: the descendants called `tag`, in document order.
    pub(super) fn descendants<'a>(&'a self, e: usize, tag: &'a str) -> impl Iterator<Item = usize> + 'a {
        let end = self.elements.get(e).map_or(0, |el| el.end);
        (e + 1..end).filter(move |&i| self.elements.get(i).is_some_and(|el| el.tag == tag))
    }

    /// `element.findall("tag")`: the children called `tag`.
    pub(super) fn children<'a>(&'a self, e: usize, tag: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.descendants(e, tag).filter(move |&i| self.elements.get(i).is_some_and(|el| el.parent == Some(e)))
    }

    /// `element.find("tag")`: the first child called `tag`.
    pub(super) fn find(&self, e: usize, tag: &str) -> Option<usize> {
        self.children(e, tag).next()
    }
}

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

/// Reads `doc`, or says why expat would reject it (or, with [`Dtd::Refuse`], that it has a DTD).
pub(super) fn parse(doc: &str, dtd: Dtd) -> Result<Document, Error> {
    let mut r = Reader { s: doc, pos: 0, entities: HashMap::new() };
    r.eat("\u{feff}");
    if r.rest().starts_with("<?xml") && r.rest()[5..].starts_with(|c: char| is_space(c) || c == '?') {
        r.pos += 5;
        r.xml_declaration()?;
    }
    let mut elements: Vec<Element> = Vec::new();
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut bindings: Vec<(Option<&str>, String)> = Vec::new();
    let mut root_seen = false;
    let mut doctype_seen = false;
    loop {
        if open.is_empty() {
            r.skip_space();
            if r.at_end() {
                return if root_seen { Ok(Document { elements }) } else { Err("no element found".into()) };
            }
            if r.eat("<!--") {
                r.comment()?;
            } else if r.eat("<?") {
                r.processing_instruction()?;
            } else if !root_seen && !doctype_seen && r.eat("<!DOCTYPE") {
                if dtd == Dtd::Refuse {
                    return Err(Error::Doctype);
                }
                doctype_seen = true;
                r.doctype()?;
            } else if !root_seen && r.rest().starts_with('<') && !r.rest().starts_with("<!") {
                r.eat("<");
                root_seen = true;
                r.start_tag(&mut elements, &mut open, &mut bindings)?;
            } else if root_seen {
                return Err("junk after document element".into());
            } else {
                return Err("syntax error / not well-formed (invalid token)".into());
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
                        return Err("not well-formed (invalid token) in an end tag".into());
                    }
                    let Some(top) = open.pop() else { return Err("end tag outside any element".into()) };
                    if top.raw != name.raw {
                        return Err(format!("mismatched tag: </{}> closes <{}>", name.raw, top.raw).into());
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
                    return Err("not well-formed (invalid token): markup declaration in content".into());
                } else {
                    r.eat("<");
                    r.start_tag(&mut elements, &mut open, &mut bindings)?;
                }
            }
            Some('&') => {
                r.eat("&");
                r.content_reference(0)?;
            }
            Some(']') if r.rest().starts_with("]]>") => return Err("not well-formed (invalid token): `]]>` in content".into()),
            Some(c) => {
                if !is_char(c) {
                    return Err(format!("not well-formed (invalid token): character {c:?}").into());
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

/// A pseudo-attribute value character of the XML declaration.
fn is_decl_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
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
    /// General entities declared in the internal subset: their literal values.
    entities: HashMap<String, String>,
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
            Some(c) if in_table(NAME_START, c) => {
                self.bump();
            }
            _ => return Err("not well-formed (invalid token): a name expected".into()),
        }
        while self.peek().is_some_and(|c| in_table(NAME_CHAR, c)) {
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
                return Err("not well-formed (invalid token): a second `:` in a name".into());
            }
            return Ok(QName { raw: self.s.get(start..self.pos).unwrap_or_default(), prefix: Some(first), local });
        }
        Ok(QName { raw: first, prefix: None, local: first })
    }

    /// After `<?xml` at the start: `version` (required), `encoding`, `standalone`, in that
    /// order, each after white space; values of `[A-Za-z0-9._-]` (an encoding starts with a
    /// letter; `standalone` is `yes` or `no`).
    fn xml_declaration(&mut self) -> Result<(), String> {
        let bad = || "XML declaration not well-formed".to_string();
        let mut seen_version = false;
        let mut stage = 0;
        loop {
            let spaced = self.skip_space();
            if self.eat("?>") {
                return if seen_version { Ok(()) } else { Err(bad()) };
            }
            if !spaced {
                return Err(bad());
            }
            let name_start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                self.bump();
            }
            let name = &self.s[name_start..self.pos];
            let this = match name {
                "version" => 1,
                "encoding" => 2,
                "standalone" => 3,
                _ => return Err(bad()),
            };
            if this <= stage || (this > 1 && !seen_version) {
                return Err(bad());
            }
            stage = this;
            seen_version = true;
            self.skip_space();
            if !self.eat("=") {
                return Err(bad());
            }
            self.skip_space();
            let quote = match self.bump() {
                Some(q @ ('"' | '\'')) => q,
                _ => return Err(bad()),
            };
            let value_start = self.pos;
            loop {
                match self.bump() {
                    Some(c) if c == quote => break,
                    Some(c) if is_decl_char(c) => {}
                    _ => return Err(bad()),
                }
            }
            let value = &self.s[value_start..self.pos - 1];
            let ok = match this {
                2 => value.starts_with(|c: char| c.is_ascii_alphabetic()),
                3 => value == "yes" || value == "no",
                _ => true,
            };
            if !ok {
                return Err(bad());
            }
        }
    }

    /// After `<!--`.
    fn comment(&mut self) -> Result<(), String> {
        loop {
            if self.eat("--") {
                return if self.eat(">") { Ok(()) } else { Err("not well-formed (invalid token): `--` in a comment".into()) };
            }
            match self.bump() {
                None => return Err("unclosed token: comment".into()),
                Some(c) if !is_char(c) => return Err("not well-formed (invalid token) in a comment".into()),
                Some(_) => {}
            }
        }
    }

    /// After `<?`.
    fn processing_instruction(&mut self) -> Result<(), String> {
        let target = self.ncname()?;
        if target.eq_ignore_ascii_case("xml") {
            return Err("XML or text declaration not at start of entity".into());
        }
        if self.eat("?>") {
            return Ok(());
        }
        if !self.skip_space() {
            return Err("not well-formed (invalid token) in a processing instruction".into());
        }
        loop {
            if self.eat("?>") {
                return Ok(());
            }
            match self.bump() {
                None => return Err("unclosed token: processing instruction".into()),
                Some(c) if !is_char(c) => return Err("not well-formed (invalid token) in a processing instruction".into()),
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
                Some(c) if !is_char(c) => return Err("not well-formed (invalid token) in a CDATA section".into()),
                Some(_) => {}
            }
        }
    }

    /// A quoted literal (a system or public id, an entity value), its text.
    fn quoted(&mut self) -> Result<&'a str, String> {
        let quote = match self.bump() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err("syntax error: a quoted literal expected".into()),
        };
        let start = self.pos;
        loop {
            match self.bump() {
                None => return Err("unclosed token: literal".into()),
                Some(c) if c == quote => return Ok(self.s.get(start..self.pos - 1).unwrap_or_default()),
                Some(c) if !is_char(c) => return Err("not well-formed (invalid token) in a literal".into()),
                Some(_) => {}
            }
        }
    }

    /// `SYSTEM "…"` or `PUBLIC "…" "…"`, if there.
    fn external_id(&mut self) -> Result<bool, String> {
        if self.eat("SYSTEM") {
            if !self.skip_space() {
                return Err("syntax error after SYSTEM".into());
            }
            self.quoted()?;
            return Ok(true);
        }
        if self.eat("PUBLIC") {
            if !self.skip_space() {
                return Err("syntax error after PUBLIC".into());
            }
            self.quoted()?;
            if !self.skip_space() {
                return Err("syntax error after a public id".into());
            }
            self.quoted()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// After `<!DOCTYPE`: the name, an external id, an internal subset whose general
    /// entities with literal values are kept; other declarations are skipped.
    fn doctype(&mut self) -> Result<(), String> {
        if !self.skip_space() {
            return Err("not well-formed (invalid token) after <!DOCTYPE".into());
        }
        self.qname()?;
        let spaced = self.skip_space();
        if spaced && self.external_id()? {
            self.skip_space();
        }
        if self.eat("[") {
            self.internal_subset()?;
            self.skip_space();
        }
        if self.eat(">") { Ok(()) } else { Err("syntax error in the document type declaration".into()) }
    }

    /// The internal subset, up to and including its `]`.
    fn internal_subset(&mut self) -> Result<(), String> {
        loop {
            self.skip_space();
            if self.eat("]") {
                return Ok(());
            }
            if self.eat("<!--") {
                self.comment()?;
            } else if self.eat("<?") {
                self.processing_instruction()?;
            } else if self.eat("<!ENTITY") {
                if !self.skip_space() {
                    return Err("syntax error in an entity declaration".into());
                }
                let parameter = self.eat("%");
                if parameter && !self.skip_space() {
                    return Err("syntax error in an entity declaration".into());
                }
                let name = self.ncname()?.to_string();
                if !self.skip_space() {
                    return Err("syntax error in an entity declaration".into());
                }
                if matches!(self.peek(), Some('"' | '\'')) {
                    let value = self.quoted()?;
                    let value = resolve_char_refs(value)?;
                    if !parameter {
                        self.entities.entry(name).or_insert(value);
                    }
                } else if !self.external_id()? {
                    return Err("syntax error in an entity declaration".into());
                } else if self.skip_space() && !parameter && self.eat("NDATA") {
                    if !self.skip_space() {
                        return Err("syntax error in an entity declaration".into());
                    }
                    self.ncname()?;
                }
                self.skip_space();
                if !self.eat(">") {
                    return Err("syntax error in an entity declaration".into());
                }
            } else if ["<!ELEMENT", "<!ATTLIST", "<!NOTATION"].iter().any(|k| self.rest().starts_with(k)) {
                // The declaration's body is skipped, not checked (see the module doc).
                self.eat("<!");
                while self.peek().is_some_and(|c| c.is_ascii_uppercase()) {
                    self.bump();
                }
                if !self.skip_space() {
                    return Err("syntax error in a markup declaration".into());
                }
                self.skip_markup_tail()?;
            } else if self.eat("%") {
                self.ncname()?;
                if !self.eat(";") {
                    return Err("syntax error: parameter entity reference".into());
                }
            } else {
                return Err("syntax error in the internal subset".into());
            }
        }
    }

    /// The rest of a markup declaration, quoted literals included, through its `>`.
    fn skip_markup_tail(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                None => return Err("unclosed token: markup declaration".into()),
                Some('"' | '\'') => {
                    self.quoted()?;
                }
                Some('>') => {
                    self.bump();
                    return Ok(());
                }
                Some(c) if !is_char(c) => return Err("not well-formed (invalid token) in a declaration".into()),
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    /// After `&`: the name or number of a reference, through its `;`.
    fn reference(&mut self) -> Result<Ref, String> {
        if self.eat("#x") {
            return self.number(16).map(Ref::Char);
        }
        if self.eat("#") {
            return self.number(10).map(Ref::Char);
        }
        let name = self.ncname()?;
        if !self.eat(";") {
            return Err("not well-formed (invalid token): unterminated reference".into());
        }
        Ok(match name {
            "amp" => Ref::Char('&'),
            "lt" => Ref::Char('<'),
            "gt" => Ref::Char('>'),
            "apos" => Ref::Char('\''),
            "quot" => Ref::Char('"'),
            _ => match self.entities.get(name) {
                Some(v) => Ref::Text(name.to_string(), v.clone()),
                None => return Err(format!("undefined entity &{name};")),
            },
        })
    }

    /// A reference in content; an internal entity's text is checked as content.
    fn content_reference(&mut self, depth: usize) -> Result<(), String> {
        if let Ref::Text(name, text) = self.reference()? {
            check_entity_text(&self.entities, &name, &text, false, depth)?;
        }
        Ok(())
    }

    /// Digits of a character reference, then `;`.
    fn number(&mut self, radix: u32) -> Result<char, String> {
        let mut value: u32 = 0;
        let mut digits = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(radix)) {
            self.bump();
            digits += 1;
            value = value.saturating_mul(radix).saturating_add(d);
        }
        if digits == 0 || !self.eat(";") {
            return Err("not well-formed (invalid token): character reference".into());
        }
        char::from_u32(value).filter(|&c| is_char(c)).ok_or_else(|| "reference to invalid character number".to_string())
    }

    /// An attribute value after its opening quote, normalised as expat does.
    fn attribute_value(&mut self, quote: char) -> Result<String, String> {
        let mut value = String::new();
        loop {
            match self.bump() {
                None => return Err("unclosed token: attribute value".into()),
                Some(c) if c == quote => return Ok(value),
                Some('<') => return Err("not well-formed (invalid token): `<` in an attribute value".into()),
                Some('&') => match self.reference()? {
                    Ref::Char(c) => value.push(c),
                    Ref::Text(name, text) => {
                        check_entity_text(&self.entities, &name, &text, true, 0)?;
                        value.push_str(&expand_attribute_text(&self.entities, &text, 0));
                    }
                },
                Some('\r') => {
                    self.eat("\n");
                    value.push(' ');
                }
                Some('\n' | '\t') => value.push(' '),
                Some(c) if !is_char(c) => return Err("not well-formed (invalid token) in an attribute value".into()),
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
                    return Err("not well-formed (invalid token): `/` not followed by `>`".into());
                }
                Some(_) if spaced => {
                    let attribute = self.qname()?;
                    self.skip_space();
                    if !self.eat("=") {
                        return Err("not well-formed (invalid token): attribute without a value".into());
                    }
                    self.skip_space();
                    let quote = match self.bump() {
                        Some(q @ ('"' | '\'')) => q,
                        _ => return Err("not well-formed (invalid token): unquoted attribute value".into()),
                    };
                    let value = self.attribute_value(quote)?;
                    if !seen.insert(attribute.raw) {
                        return Err(format!("duplicate attribute {}", attribute.raw));
                    }
                    attributes.push((attribute, value));
                }
                None => return Err("unclosed token: start tag".into()),
                _ => return Err("not well-formed (invalid token) in a start tag".into()),
            }
        };

        let mark = bindings.len();
        for (attribute, uri) in &attributes {
            let declared = match (attribute.prefix, attribute.local) {
                (None, "xmlns") => None,
                (Some("xmlns"), prefix) => Some(prefix),
                _ => continue,
            };
            if declared.is_some() && uri.is_empty() {
                return Err("must not undeclare prefix".into());
            }
            if declared == Some("xmlns") {
                return Err("reserved prefix (xmlns) must not be declared or undeclared".into());
            }
            if (declared == Some("xml")) != (uri == XML_NS) || uri == XMLNS_NS {
                return Err("reserved prefix or namespace".into());
            }
            if uri.contains('}') {
                return Err("syntax error: `}` in a namespace name".into());
            }
            bindings.push((declared, uri.clone()));
        }

        let tag = match name.prefix {
            Some(prefix) => {
                let uri = resolve(bindings, Some(prefix)).ok_or_else(|| "unbound prefix".to_string())?;
                format!("{{{uri}}}{}", name.local)
            }
            None => match resolve(bindings, None) {
                Some(uri) if !uri.is_empty() => format!("{{{uri}}}{}", name.local),
                _ => name.local.to_string(),
            },
        };
        let mut attrs: Vec<(String, String)> = Vec::new();
        let mut expanded: HashSet<(String, &str)> = HashSet::new();
        for (attribute, value) in attributes {
            match (attribute.prefix, attribute.local) {
                (None, "xmlns") | (Some("xmlns"), _) => {}
                (Some(prefix), local) => {
                    let uri = resolve(bindings, Some(prefix)).ok_or_else(|| "unbound prefix".to_string())?.to_string();
                    if !expanded.insert((uri.clone(), local)) {
                        return Err("duplicate attribute".into());
                    }
                    attrs.push((format!("{{{uri}}}{local}"), value));
                }
                (None, local) => attrs.push((local.to_string(), value)),
            }
        }

        let index = elements.len();
        elements.push(Element { tag, attrs, parent: open.last().map(|o| o.index), end: 0 });
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

/// What a reference stands for.
enum Ref {
    Char(char),
    /// An internal entity: its name and replacement text.
    Text(String, String),
}

/// An entity value's character references resolved (at declaration, as XML says).
fn resolve_char_refs(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut r = Reader { s: value, pos: 0, entities: HashMap::new() };
    while let Some(c) = r.bump() {
        if c == '&' && r.rest().starts_with('#') {
            match r.reference()? {
                Ref::Char(ch) => out.push(ch),
                Ref::Text(..) => {}
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// An entity's replacement text checked where it is used: its references defined, no `<` in
/// an attribute value, no recursion.
fn check_entity_text(entities: &HashMap<String, String>, name: &str, text: &str, in_attribute: bool, depth: usize) -> Result<(), String> {
    if depth > 32 {
        return Err(format!("recursive entity reference &{name};"));
    }
    if in_attribute && text.contains('<') {
        return Err("not well-formed (invalid token): `<` in an attribute value".into());
    }
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        let after = &rest[at + 1..];
        let end = after.find(';').ok_or_else(|| "not well-formed (invalid token) in an entity".to_string())?;
        let inner = &after[..end];
        if !inner.starts_with('#') && !matches!(inner, "amp" | "lt" | "gt" | "apos" | "quot") {
            let nested = entities.get(inner).ok_or_else(|| format!("undefined entity &{inner};"))?;
            check_entity_text(entities, inner, nested, in_attribute, depth + 1)?;
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// An entity's replacement text in an attribute value: nested references expanded, white
/// space characters as spaces.
fn expand_attribute_text(entities: &HashMap<String, String>, text: &str, depth: usize) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.extend(rest[..at].chars().map(|c| if matches!(c, '\t' | '\n' | '\r') { ' ' } else { c }));
        let after = &rest[at + 1..];
        let Some(end) = after.find(';') else { break };
        let inner = &after[..end];
        match inner {
            "amp" => out.push('&'),
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "apos" => out.push('\''),
            "quot" => out.push('"'),
            _ => {
                if let (Some(v), true) = (entities.get(inner), depth < 32) {
                    out.push_str(&expand_attribute_text(entities, v, depth + 1));
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.extend(rest.chars().map(|c| if matches!(c, '\t' | '\n' | '\r') { ' ' } else { c }));
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dtd_is_read_or_refused() {
        let doc = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e \"x\">]><r a=\"&e;\"><c/></r>";
        let tree = parse(doc, Dtd::Read).expect("expat reads it");
        assert_eq!(tree.get(0, "a"), Some("x"));
        assert_eq!(tree.find(0, "c"), Some(1));
        assert_eq!(parse(doc, Dtd::Refuse).err(), Some(Error::Doctype));
        assert!(matches!(parse("<r>&e;</r>", Dtd::Refuse), Err(Error::Malformed(_))));
    }

    #[test]
    fn namespaced_names_are_elementtrees() {
        let tree = parse("<r xmlns:p=\"u\"><p:c p:n=\"1\" n=\"2\"/><c xmlns=\"v\"/></r>", Dtd::Read).expect("well-formed");
        assert_eq!((tree.len(), tree.tag(1), tree.tag(2), tree.end(0)), (3, "{u}c", "{v}c", 3));
        assert_eq!((tree.get(1, "n"), tree.get(1, "{u}n")), (Some("2"), Some("1")));
        assert_eq!(tree.descendants(0, "c").count(), 0);
    }
}
