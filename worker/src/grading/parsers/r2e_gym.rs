//! r2e_gym log parsers (placeholder until implemented: knows no parser yet).

use super::ParseFn;

/// The parser names this module serves (without the module's prefix).
pub(super) const NAMES: &[&str] = &[];

/// The parser called `name` (without the prefix), if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    let _ = name;
    None
}
