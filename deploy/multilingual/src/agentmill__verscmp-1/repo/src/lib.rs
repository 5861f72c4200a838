//! Semantic versions: parsing ([`Version::parse`]) and SemVer 2.0.0 precedence (`Ord`).

mod compare;
mod parse;
mod version;

pub use parse::ParseError;
pub use version::{Identifier, Version};
