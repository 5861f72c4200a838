//! The dataset families agentmill reads rows of, and how each family's own harness runs and
//! grades them.
//!
//! A row is taken as it is and its [`Family`] recognised from its shape (or named with a
//! `family` field): SWE-bench 4.x rows (eval script from the spec tables), SWE-bench 5.x rows
//! (carrying `eval_script`, `log_parser`, `eval_type`), SWE-rebench V1 (`install_config`) and V2
//! (`install_config.test_cmd` lists, workdir `/<repo>`), SWE-Gym, SWE-smith (`patch` is the bug)
//! and R2E-Gym (`expected_output_json`). Rows of none of them are agentmill's own.
//!
//! [`eval_plan`] says what grading runs for a task and whose rules read the log: the script,
//! the parser's name, the evaluation type, how the model's patch goes in. The parsers and the
//! rules themselves live with the worker (`agentmill_worker::grading`), which runs the plan.
//! `../shared/DATASETS.md` in the development tree maps every family; where a line of it and the
//! reference code disagree, the reference wins, and the tests hold agentmill to it.
//!
//! The parts: this file recognises the family; `script.rs` makes each family's eval script as
//! its reference makes it ([`eval_plan`]); [`specs`] holds the reference harnesses' per-repository
//! tables, generated into `proto/data/`; [`patch`] what the harnesses read out of a patch;
//! [`harbor`] Harbor task directories, read as the `harbor` package reads them.

pub mod harbor;
pub mod patch;
mod script;
pub mod specs;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use script::{AGENTMILL_PARSER, ApplyChain, END_TEST_OUTPUT, EvalPlan, PATCH_APPLY_FAILED, RevertTests, START_TEST_OUTPUT, ScriptOptions, TEST_EXIT_CODE, eval_plan, r2e_setup};

/// Quotes a word for a POSIX shell (plain words stay as they are).
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | ':' | '=' | ',' | '+' | '@'));
    if plain { s.to_string() } else { format!("'{}'", s.replace('\'', "'\\''")) }
}

/// Which dataset a row comes from, and so whose harness runs and grades it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Family {
    /// agentmill's own rows: `test_cmd`, or pytest on exactly the listed ids.
    #[default]
    #[serde(rename = "agentmill")]
    Agentmill,
    /// SWE-bench 4.x rows: the eval script is made from the per-repository spec table.
    #[serde(rename = "swe-bench")]
    Swebench,
    /// SWE-bench 5.x rows: they carry `eval_script`, `log_parser` and `eval_type`.
    #[serde(rename = "swe-bench-5")]
    Swebench5,
    /// SWE-rebench (V1): a SWE-bench row whose `install_config` replaces the spec table.
    #[serde(rename = "swe-rebench")]
    SweRebench,
    /// SWE-rebench V2: `image_name`, workdir `/<repo>`, `install_config.test_cmd` as a list.
    #[serde(rename = "swe-rebench-v2")]
    SweRebenchV2,
    /// SWE-Gym: SWE-bench rows graded by SWE-Gym's fork of the 2.x harness.
    #[serde(rename = "swe-gym")]
    SweGym,
    /// SWE-smith: `patch` introduces the bug; the buggy state is the instance's branch.
    #[serde(rename = "swe-smith")]
    SweSmith,
    /// R2E-Gym: the reward is the parsed log equal to `expected_output_json`.
    #[serde(rename = "r2e-gym")]
    R2eGym,
    /// Harbor task directories ([`harbor`]): the verifier's reward file, not a test log, grades.
    #[serde(rename = "harbor")]
    Harbor,
    /// OpenSWE rows: a `Dockerfile` (built with the repository at `base_commit` as its context)
    /// or an `image_name`, and an `eval_script` that prints `OPENSWE_EXIT_CODE=<rc>`; resolved
    /// exactly when the log holds the line `OPENSWE_EXIT_CODE=0` (no per-test lists).
    #[serde(rename = "openswe")]
    OpenSwe,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 10] = [
        Family::Agentmill,
        Family::Swebench,
        Family::Swebench5,
        Family::SweRebench,
        Family::SweRebenchV2,
        Family::SweGym,
        Family::SweSmith,
        Family::R2eGym,
        Family::Harbor,
        Family::OpenSwe,
    ];

    /// The name rows and records use.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Agentmill => "agentmill",
            Family::Swebench => "swe-bench",
            Family::Swebench5 => "swe-bench-5",
            Family::SweRebench => "swe-rebench",
            Family::SweRebenchV2 => "swe-rebench-v2",
            Family::SweGym => "swe-gym",
            Family::SweSmith => "swe-smith",
            Family::R2eGym => "r2e-gym",
            Family::Harbor => "harbor",
            Family::OpenSwe => "openswe",
        }
    }

    /// Reads a family name (case and `_`/`-` insensitive).
    pub fn parse(s: &str) -> Option<Family> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        let norm = match norm.as_str() {
            "swebench" => "swe-bench",
            "swebench-5" | "swebench5" | "swe-bench5" => "swe-bench-5",
            "swerebench" => "swe-rebench",
            "swerebench-v2" => "swe-rebench-v2",
            "swegym" => "swe-gym",
            "swesmith" => "swe-smith",
            "r2egym" | "r2e" => "r2e-gym",
            "open-swe" => "openswe",
            other => other,
        };
        Family::ALL.into_iter().find(|f| f.as_str() == norm)
    }

    /// Whether the family's rows must list both `FAIL_TO_PASS` and `PASS_TO_PASS`.
    pub fn requires_test_lists(self) -> bool {
        !matches!(self, Family::Agentmill | Family::R2eGym | Family::Harbor | Family::OpenSwe)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run's per-test statuses become a verdict (SWE-bench's `EvalType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvalType {
    /// A listed test succeeds when it passed; a missing one failed.
    #[default]
    PassAndFail,
    /// A listed test fails only when the log says FAILED; a missing one succeeded.
    FailOnly,
}

impl EvalType {
    /// The dataset's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EvalType::PassAndFail => "pass_and_fail",
            EvalType::FailOnly => "fail_only",
        }
    }

    /// Reads the dataset's spelling.
    pub fn parse(s: &str) -> Option<EvalType> {
        match s {
            "pass_and_fail" => Some(EvalType::PassAndFail),
            "fail_only" => Some(EvalType::FailOnly),
            _ => None,
        }
    }
}

/// Whose rules turn a log into a report: which reference, at which generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Rules {
    /// agentmill's own rows: the listed ids read from pytest's log; SWE-bench's resolution.
    #[serde(rename = "agentmill")]
    Agentmill,
    /// SWE-bench 2.x (logs without the test-output markers): the whole log is parsed, a log
    /// without "applied patch" is not graded; SKIPPED and XFAIL count for neither list.
    #[serde(rename = "swe-bench-2")]
    Swebench2,
    /// SWE-bench 4.x: the log between the markers (the whole log when that holds no result);
    /// SKIPPED counts for neither list.
    #[serde(rename = "swe-bench-4")]
    Swebench4,
    /// SWE-bench 5.x: as 4.x, plus the test command's exit code cross-check, the evidence that a
    /// suite ran, truncated parametrised ids matched by prefix, SKIPPED fails F2P but keeps P2P.
    #[serde(rename = "swe-bench-5")]
    Swebench5,
    /// SWE-rebench V1 (its fork of 4.x): only the log between the markers.
    #[serde(rename = "swe-rebench")]
    SweRebench,
    /// SWE-rebench V2: resolved when the PASSED set is exactly FAIL_TO_PASS ∪ PASS_TO_PASS.
    #[serde(rename = "swe-rebench-v2")]
    SweRebenchV2,
    /// SWE-Gym (its fork of 2.x): the whole log; XFAIL passes, SKIPPED counts for neither.
    #[serde(rename = "swe-gym")]
    SweGym,
    /// SWE-smith: the log between the markers, 4.x's rules.
    #[serde(rename = "swe-smith")]
    SweSmith,
    /// R2E-Gym: the parsed log must equal `expected_output_json`, key for key.
    #[serde(rename = "r2e-gym")]
    R2eGym,
    /// OpenSWE (its swe-bench fork): not graded without an `OPENSWE_EXIT_CODE=` in the log;
    /// resolved exactly when a line is `OPENSWE_EXIT_CODE=0`.
    #[serde(rename = "openswe")]
    OpenSwe,
}

impl Rules {
    /// The name records and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Rules::Agentmill => "agentmill",
            Rules::Swebench2 => "swe-bench-2",
            Rules::Swebench4 => "swe-bench-4",
            Rules::Swebench5 => "swe-bench-5",
            Rules::SweRebench => "swe-rebench",
            Rules::SweRebenchV2 => "swe-rebench-v2",
            Rules::SweGym => "swe-gym",
            Rules::SweSmith => "swe-smith",
            Rules::R2eGym => "r2e-gym",
            Rules::OpenSwe => "openswe",
        }
    }

    /// Reads a rules name.
    pub fn parse(s: &str) -> Option<Rules> {
        [
            Rules::Agentmill,
            Rules::Swebench2,
            Rules::Swebench4,
            Rules::Swebench5,
            Rules::SweRebench,
            Rules::SweRebenchV2,
            Rules::SweGym,
            Rules::SweSmith,
            Rules::R2eGym,
            Rules::OpenSwe,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// Recognises a row's family from its fields (after an explicit `family` field, which the caller
/// reads first). `repo` and `version` are the row's.
pub fn detect(row: &Map<String, Value>, repo: &str, version: &str) -> Family {
    let has = |k: &str| row.get(k).is_some_and(|v| !v.is_null());
    if matches!(row.get("harbor"), Some(Value::Object(_))) {
        return Family::Harbor;
    }
    if has("expected_output_json") {
        return Family::R2eGym;
    }
    if let Some(Value::Object(ic)) = row.get("install_config") {
        let v2 = matches!(ic.get("test_cmd"), Some(Value::Array(_))) || (has("image_name") && has("language") && !has("version"));
        return if v2 { Family::SweRebenchV2 } else { Family::SweRebench };
    }
    if has("eval_script") && has("log_parser") {
        return Family::Swebench5;
    }
    if has("eval_script") && (has("Dockerfile") || has("dockerfile")) {
        return Family::OpenSwe;
    }
    let instance_id = row.get("instance_id").and_then(Value::as_str).unwrap_or_default();
    if repo.starts_with("swesmith/") || is_swesmith_id(instance_id) {
        return Family::SweSmith;
    }
    if specs::swebench().specs.contains_key(repo) {
        return Family::Swebench;
    }
    if specs::swe_gym().specs.contains_key(&repo.to_ascii_lowercase()) {
        return Family::SweGym;
    }
    let _ = version;
    Family::Agentmill
}

/// `owner__repo.1a2b3c4d.kind__hash`: SWE-smith's instance ids name the mirror's commit.
fn is_swesmith_id(id: &str) -> bool {
    let mut parts = id.splitn(3, '.');
    let (Some(head), Some(commit), Some(_rest)) = (parts.next(), parts.next(), parts.next()) else { return false };
    head.contains("__") && commit.len() == 8 && commit.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The languages a row of a repository SWE-bench's table does not know may name (its
/// `language` field), as SWE-bench's `MAP_REPO_TO_EXT` extensions and their common names.
pub const LANGUAGES: [&str; 8] = ["py", "js", "go", "java", "rs", "rb", "php", "c"];

/// The SWE-bench extension (`MAP_REPO_TO_EXT`'s values: which eval script a 4.x row gets) of a
/// row's `language`: an extension itself or the language's name (`go`, `rust`, `javascript`…).
pub fn language_ext(language: &str) -> Option<&'static str> {
    Some(match language.trim().to_ascii_lowercase().as_str() {
        "py" | "python" => "py",
        "js" | "javascript" | "ts" | "typescript" | "node" | "nodejs" => "js",
        "go" | "golang" => "go",
        "java" => "java",
        "rs" | "rust" => "rs",
        "rb" | "ruby" => "rb",
        "php" => "php",
        "c" | "cpp" | "c++" => "c",
        _ => return None,
    })
}

/// The image a family's harness would use for a row that names none.
pub fn default_image(family: Family, instance_id: &str, repo: &str) -> String {
    match family {
        Family::SweRebench => swebench_image("swerebench", instance_id),
        Family::SweGym => format!("docker.io/xingyaoww/sweb.eval.x86_64.{}", instance_id.replace("__", "_s_")).to_lowercase(),
        Family::SweSmith => {
            // The profile's image, else swebench/swesmith.x86_64.<owner>_1776_<repo>.<commit8>.
            let key = specs::swesmith_key(repo, instance_id);
            specs::swesmith().resolve(&key).and_then(|p| p.image_name).unwrap_or_else(|| format!("swebench/swesmith.x86_64.{}", key.replace("__", "_1776_")).to_lowercase())
        }
        // A Harbor task names its image in `harbor.docker_image`, or has it built from its
        // Dockerfile (tagged when it is built).
        Family::Harbor => String::new(),
        // An OpenSWE row without `image_name` has its image built from its `Dockerfile`.
        Family::OpenSwe => String::new(),
        _ => swebench_image("swebench", instance_id),
    }
}

/// SWE-bench's remote image name: `<namespace>/sweb.eval.x86_64.<id>:latest`, lower-cased, `__`
/// written `_1776_`.
pub fn swebench_image(namespace: &str, instance_id: &str) -> String {
    format!("{namespace}/sweb.eval.x86_64.{}:latest", instance_id.to_lowercase()).replace("__", "_1776_")
}

/// The workdir a family's images keep the repository in, when the row names none.
pub fn default_workdir(family: Family, repo: &str) -> String {
    match family {
        Family::SweRebenchV2 => format!("/{}", repo.rsplit('/').next().unwrap_or(repo)),
        // A Harbor task without `[environment].workdir` runs in its image's WORKDIR
        // (`harbor.workdir` is then None); "/" stands in until the image says.
        Family::Harbor => "/".to_string(),
        _ => crate::task::DEFAULT_WORKDIR.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn families_are_recognised_by_their_fields() {
        let r = |v: Value| {
            let m = row(v);
            let repo = m.get("repo").and_then(Value::as_str).unwrap_or_default().to_string();
            detect(&m, &repo, "")
        };
        assert_eq!(r(json!({"repo": "django/django", "version": "3.0"})), Family::Swebench);
        assert_eq!(r(json!({"repo": "x/y", "eval_script": "e", "log_parser": "parse_log_pytest"})), Family::Swebench5);
        assert_eq!(r(json!({"repo": "x/y", "install_config": {"test_cmd": "pytest -rA"}})), Family::SweRebench);
        assert_eq!(r(json!({"repo": "x/y", "install_config": {"test_cmd": ["go test ./..."]}})), Family::SweRebenchV2);
        assert_eq!(r(json!({"repo": "python/mypy"})), Family::SweGym);
        assert_eq!(r(json!({"instance_id": "tkrajina__gpxpy.09fc46b3.func_pm_ctrl_invert_if__5d48ok1a", "repo": "swesmith/tkrajina__gpxpy.09fc46b3"})), Family::SweSmith);
        assert_eq!(r(json!({"repo": "x/y", "expected_output_json": "{}"})), Family::R2eGym);
        assert_eq!(r(json!({"repo": "agentmill/calc"})), Family::Agentmill);
        assert_eq!(r(json!({"repo": "x/y", "eval_script": "e", "Dockerfile": "FROM x"})), Family::OpenSwe);
        assert_eq!(r(json!({"repo": "x/y", "eval_script": "e", "dockerfile": "FROM x", "log_parser": "parse_log_pytest"})), Family::Swebench5);
    }

    #[test]
    fn languages_map_to_swebench_extensions() {
        for (language, ext) in [("go", "go"), ("Rust", "rs"), ("rs", "rs"), ("javascript", "js"), ("TypeScript", "js"), ("java", "java"), ("ruby", "rb"), ("c++", "c"), ("python", "py")] {
            assert_eq!(language_ext(language), Some(ext), "{language}");
        }
        assert_eq!(language_ext("cobol"), None);
        assert!(LANGUAGES.iter().all(|l| language_ext(l) == Some(*l)), "every extension names itself");
    }

    #[test]
    fn images_follow_each_familys_rule() {
        assert_eq!(default_image(Family::Swebench, "django__django-11099", ""), "swebench/sweb.eval.x86_64.django_1776_django-11099:latest");
        assert_eq!(default_image(Family::SweRebench, "Foo__Bar-1", ""), "swerebench/sweb.eval.x86_64.foo_1776_bar-1:latest");
        assert_eq!(default_image(Family::SweGym, "getmoto__moto-5752", ""), "docker.io/xingyaoww/sweb.eval.x86_64.getmoto_s_moto-5752");
        assert_eq!(
            default_image(Family::SweSmith, "tkrajina__gpxpy.09fc46b3.func_pm__x", "swesmith/tkrajina__gpxpy.09fc46b3"),
            "swebench/swesmith.x86_64.tkrajina_1776_gpxpy.09fc46b3"
        );
        assert_eq!(default_workdir(Family::SweRebenchV2, "Unidata/netcdf-c"), "/netcdf-c");
        assert_eq!(Family::parse("SWE_Gym"), Some(Family::SweGym));
    }
}
