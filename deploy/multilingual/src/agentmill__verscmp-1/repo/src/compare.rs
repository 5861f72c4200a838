use std::cmp::Ordering;

use crate::version::{Identifier, Version};

impl Ord for Version {
    /// SemVer 2.0.0 precedence: major, minor and patch numerically; a pre-release before its
    /// release; pre-releases identifier by identifier; build metadata ignored.
    fn cmp(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Identifier by identifier; when one list is a prefix of the other, the shorter comes first.
fn compare_pre(a: &[Identifier], b: &[Identifier]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = compare_identifier(x, y);
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

fn compare_identifier(a: &Identifier, b: &Identifier) -> Ordering {
    a.to_string().cmp(&b.to_string())
}
