use std::fmt;
use std::str::FromStr;

use crate::version::{Identifier, Version};

/// Why a string is not a semantic version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The text that was parsed.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a semantic version: {}", self.input, self.reason)
    }
}

impl std::error::Error for ParseError {}

impl Version {
    /// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
    pub fn parse(input: &str) -> Result<Version, ParseError> {
        let fail = |reason: String| ParseError { input: input.to_string(), reason };
        let (rest, build) = match input.split_once('+') {
            Some((rest, build)) => (rest, split_parts(build).map_err(|r| fail(format!("build metadata: {r}")))?),
            None => (input, Vec::new()),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, split_parts(pre).map_err(|r| fail(format!("pre-release: {r}")))?),
            None => (rest, Vec::new()),
        };
        let numbers: Vec<&str> = core.split('.').collect();
        if numbers.len() != 3 {
            return Err(fail(format!("expected MAJOR.MINOR.PATCH, found {} part(s)", numbers.len())));
        }
        let mut parsed = [0u64; 3];
        for (slot, text) in parsed.iter_mut().zip(&numbers) {
            *slot = number(text).ok_or_else(|| fail(format!("{text:?} is not a number without leading zeros")))?;
        }
        let pre = pre.into_iter().map(|p| number(&p).map(Identifier::Numeric).unwrap_or(Identifier::AlphaNumeric(p))).collect::<Vec<_>>();
        for id in &pre {
            if let Identifier::AlphaNumeric(s) = id {
                if s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(fail(format!("pre-release identifier {s:?} has a leading zero")));
                }
            }
        }
        Ok(Version { major: parsed[0], minor: parsed[1], patch: parsed[2], pre, build })
    }
}

impl FromStr for Version {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Version, ParseError> {
        Version::parse(s)
    }
}

/// A non-negative decimal without a leading zero.
fn number(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

/// Dot-separated identifiers of `[0-9A-Za-z-]`, none empty.
fn split_parts(text: &str) -> Result<Vec<String>, String> {
    text.split('.')
        .map(|p| {
            if p.is_empty() {
                Err("empty identifier".to_string())
            } else if !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                Err(format!("{p:?} has characters other than [0-9A-Za-z-]"))
            } else {
                Ok(p.to_string())
            }
        })
        .collect()
}
