//! The per-repository tables of the reference harnesses, as data generated from them.
//!
//! `proto/data/swebench-specs.json` is SWE-bench 4.x's `MAP_REPO_VERSION_TO_SPECS` (how each
//! repository and version installs and tests), `MAP_REPO_TO_EXT`, `MAP_REPO_TO_PARSER`,
//! `FAIL_ONLY_REPOS` and `NON_TEST_EXTS`, written by `tests/reference/gen_swebench_specs.py` from the
//! installed package; `proto/tests/spec_tables.rs` regenerates it and fails on any drift.
//! `proto/data/swe-gym-specs.json` holds the repositories SWE-Gym's fork adds, generated the same
//! way from its checkout.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

/// One repository version's spec: the reference's dict, kept as it is.
pub type Spec = Map<String, Value>;

/// A harness's tables.
#[derive(Debug, Deserialize)]
pub struct SpecTables {
    /// Which package (and script) wrote the file.
    pub generated_from: String,
    /// Extensions whose files in a test patch are not test directives.
    pub non_test_exts: Vec<String>,
    /// Repositories graded `fail_only` (a missing test counts as passed).
    #[serde(default)]
    pub fail_only_repos: BTreeSet<String>,
    /// Repository → language extension (`py`, `js`, `go`, …).
    #[serde(default)]
    pub repo_ext: BTreeMap<String, String>,
    /// Repository → the name of the parser the harness reads its logs with.
    pub repo_parser: BTreeMap<String, String>,
    /// Repository → version → spec.
    pub specs: BTreeMap<String, BTreeMap<String, Spec>>,
}

impl SpecTables {
    /// The spec of `repo` at `version`.
    pub fn spec(&self, repo: &str, version: &str) -> Option<&Spec> {
        self.specs.get(repo)?.get(version)
    }

    /// The versions the table knows for `repo`, for messages.
    pub fn versions(&self, repo: &str) -> Vec<&str> {
        self.specs.get(repo).map(|v| v.keys().map(String::as_str).collect()).unwrap_or_default()
    }
}

/// SWE-bench 4.x's tables.
pub fn swebench() -> &'static SpecTables {
    static TABLES: OnceLock<SpecTables> = OnceLock::new();
    TABLES.get_or_init(|| load(include_str!("../../data/swebench-specs.json")))
}

/// The repositories SWE-Gym's harness adds (keys lower-cased, as its fork keeps them).
pub fn swe_gym() -> &'static SpecTables {
    static TABLES: OnceLock<SpecTables> = OnceLock::new();
    TABLES.get_or_init(|| load(include_str!("../../data/swe-gym-specs.json")))
}

fn load(text: &str) -> SpecTables {
    // The file is part of this crate's source and checked by its tests; a broken one is a build
    // defect, not input.
    #[allow(clippy::expect_used)]
    serde_json::from_str(text).expect("the embedded spec tables parse")
}

/// A spec field that is a string.
pub fn spec_str<'a>(spec: &'a Spec, key: &str) -> Option<&'a str> {
    spec.get(key).and_then(Value::as_str)
}

/// A spec field that is a list of strings (or one string, as a list of one).
pub fn spec_list(spec: &Spec, key: &str) -> Vec<String> {
    match spec.get(key) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}
