//! The per-repository tables of the reference harnesses, as data generated from them.
//!
//! `proto/data/swebench-specs.json` is SWE-bench 4.x's `MAP_REPO_VERSION_TO_SPECS` (how each
//! repository and version installs and tests), `MAP_REPO_TO_EXT`, `MAP_REPO_TO_PARSER`,
//! `FAIL_ONLY_REPOS` and `NON_TEST_EXTS`, written by `tests/reference/gen_swebench_specs.py` from the
//! installed package; `worker/tests/eval_scripts.rs` (`the_embedded_spec_tables_are_the_packages`)
//! regenerates it and fails on any drift.
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

/// SWE-smith's repository profiles (`proto/data/swesmith-profiles.json`, generated from the
/// `swesmith` package by `tests/reference/gen_swesmith_profiles.py`; a worker test fails on
/// drift). A profile is keyed by the mirror's name `<owner>__<repo>.<commit8>`.
#[derive(Debug, Deserialize)]
pub struct SwesmithProfiles {
    /// Per-language defaults and the description of each rule.
    pub header: SwesmithHeader,
    /// Profile key → what differs from its language's defaults.
    pub profiles: BTreeMap<String, SwesmithProfile>,
}

/// The profile table's header.
#[derive(Debug, Deserialize)]
pub struct SwesmithHeader {
    /// Which package wrote the file.
    pub generated_from: String,
    /// Language → its defaults.
    pub defaults: BTreeMap<String, SwesmithProfile>,
}

/// One profile (or a language's defaults): every field but the language optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SwesmithProfile {
    /// `python`, `go`, `rust`, …
    #[serde(default)]
    pub language: String,
    /// The profile's image.
    #[serde(default)]
    pub image_name: Option<String>,
    /// The test command.
    #[serde(default)]
    pub test_cmd: Option<String>,
    /// Seconds the whole eval script may take.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Whether only the listed tests' files run.
    #[serde(default)]
    pub min_testing: Option<bool>,
    /// The class whose `log_parser` reads the log (agentmill's parser `swesmith:<class>`).
    #[serde(default)]
    pub parser: Option<String>,
    /// The class whose `get_test_files` decides which test files are reverted.
    #[serde(default)]
    pub get_test_files: Option<String>,
    /// The class whose `get_test_cmd` makes the test command.
    #[serde(default)]
    pub get_test_cmd: Option<String>,
}

impl SwesmithProfiles {
    /// The profile `key` with its language's defaults filled in.
    pub fn resolve(&self, key: &str) -> Option<SwesmithProfile> {
        let p = self.profiles.get(key)?;
        let d = self.header.defaults.get(&p.language).cloned().unwrap_or_default();
        Some(SwesmithProfile {
            language: p.language.clone(),
            image_name: p.image_name.clone().or(d.image_name),
            test_cmd: p.test_cmd.clone().or(d.test_cmd),
            timeout: p.timeout.or(d.timeout),
            min_testing: p.min_testing.or(d.min_testing),
            parser: p.parser.clone().or(d.parser),
            get_test_files: p.get_test_files.clone().or(d.get_test_files),
            get_test_cmd: p.get_test_cmd.clone().or(d.get_test_cmd),
        })
    }
}

/// SWE-smith's profiles.
pub fn swesmith() -> &'static SwesmithProfiles {
    static TABLES: OnceLock<SwesmithProfiles> = OnceLock::new();
    TABLES.get_or_init(|| {
        #[allow(clippy::expect_used)]
        serde_json::from_str(include_str!("../../data/swesmith-profiles.json")).expect("the embedded SWE-smith profiles parse")
    })
}

/// The profile key of a SWE-smith row: its `repo` without `swesmith/`, else its instance id
/// without the last `.` part (SWE-smith's `Registry.get_from_inst`).
pub fn swesmith_key(repo: &str, instance_id: &str) -> String {
    if repo.is_empty() {
        instance_id.rsplit_once('.').map(|(k, _)| k.to_string()).unwrap_or_else(|| instance_id.to_string())
    } else {
        repo.strip_prefix("swesmith/").unwrap_or(repo).to_string()
    }
}
