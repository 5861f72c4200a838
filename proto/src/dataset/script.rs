//! What grading runs for a task: each family's eval script, made as its reference makes it.
//!
//! SWE-bench 4.x (`harness/test_spec/{python,utils,javascript}.py`): conda's `testbed` activated,
//! the spec's `eval_commands`, the informational `git status/show/diff`, the spec's `install`,
//! the test files reset to the base commit, the test patch applied from a heredoc, the test
//! command between the `>>>>> Start/End Test Output` markers, the test files reset again.
//! SWE-bench 5.x: the row's `eval_script` with the test command's exit code recorded after the
//! end marker. SWE-rebench V1: 4.x's script from `install_config`. SWE-Gym: its 2.x fork's script
//! (no markers). The scripts are byte-identical to the reference's (the tests compare them);
//! the one departure is [`ScriptOptions::conda`]: an image without conda gets the same script
//! without the two lines that activate it.
//!
//! One file, long on purpose: every family's script builder next to the others, because they
//! share pieces (the test-file reset, the heredoc apply, conda's lines) and are held
//! byte-identical to their references together.

use serde_json::Value;

use super::patch::{changed_paths, modified_files, test_directives};
use super::specs::{self, Spec, spec_list, spec_str};
use super::{EvalType, Family, Rules};
use crate::task::Task;

/// SWE-bench's heredoc delimiter for the test patch.
const HEREDOC: &str = "EOF_114329324912";
/// The markers SWE-bench's grader slices the log by.
pub const START_TEST_OUTPUT: &str = ">>>>> Start Test Output";
/// See [`START_TEST_OUTPUT`].
pub const END_TEST_OUTPUT: &str = ">>>>> End Test Output";
/// The 5.x eval script's exit-code line prefix.
pub const TEST_EXIT_CODE: &str = ">>>>> Test Exit Code";

/// What the image offers the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptOptions {
    /// The image has conda at `/opt/miniconda3` (SWE-bench's images do; agentmill's own don't).
    pub conda: bool,
}

impl Default for ScriptOptions {
    fn default() -> Self {
        ScriptOptions { conda: true }
    }
}

/// How the model's patch goes into the grading sandbox (each harness tries its own list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyChain {
    /// 4.x (and the forks): `git apply --verbose`, `git apply --verbose --reject`,
    /// `patch --batch --fuzz=5 -p1 -i`.
    Swebench4,
    /// 5.x: `git apply --verbose`, `--3way`, `--reject`, `patch --batch --forward --fuzz=5 -p1 -i`,
    /// the tree reset between tries, and a patch already in place accepted.
    Swebench5,
    /// agentmill's own: `git apply --verbose`, `--3way`, `patch --batch --fuzz=5 -p1 -i`.
    Agentmill,
    /// The eval script applies it (SWE-rebench V2), from the file named by
    /// `$AGENTMILL_MODEL_PATCH`, the test patch from `$AGENTMILL_TEST_PATCH`.
    InScript,
    /// R2E-Gym's runtime: `git apply --whitespace=fix`.
    R2eGym,
}

impl ApplyChain {
    /// The commands, in order (each takes the patch file as its last argument).
    pub fn commands(self) -> &'static [&'static str] {
        match self {
            ApplyChain::Swebench4 => &["git apply --verbose", "git apply --verbose --reject", "patch --batch --fuzz=5 -p1 -i"],
            ApplyChain::Swebench5 => {
                &["git apply --verbose", "git apply --verbose --3way", "git apply --verbose --reject", "patch --batch --forward --fuzz=5 -p1 -i"]
            }
            ApplyChain::Agentmill => &["git apply --verbose", "git apply --verbose --3way", "patch --batch --fuzz=5 -p1 -i"],
            ApplyChain::InScript => &[],
            ApplyChain::R2eGym => &["git apply --whitespace=fix"],
        }
    }

    /// Whether the tree is reset between tries and an already-applied patch accepted (5.x).
    pub fn resets_between_tries(self) -> bool {
        matches!(self, ApplyChain::Swebench5)
    }
}

/// Grading, planned: what runs and how its log is read.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPlan {
    /// The family the plan follows.
    pub family: Family,
    /// The eval script (`bash` runs it from the workdir); `None` for agentmill's own rows,
    /// whose test command the worker builds.
    pub script: Option<String>,
    /// Whose rules read the log.
    pub rules: Rules,
    /// The log parser's name (SWE-bench's names; `agentmill-pytest` for agentmill's own rows).
    pub parser: String,
    /// How listed tests become successes and failures.
    pub eval_type: EvalType,
    /// How the model's patch is applied.
    pub apply: ApplyChain,
    /// Shell lines run in the grading sandbox before the model's patch goes in (SWE-smith
    /// checks out the instance's branch, then its parent); any failing is a task problem.
    pub setup: Vec<String>,
    /// Restore the files the model's patch touches before applying it (SWE-smith).
    pub reset_patch_files: bool,
    /// The test files restored after the model's patch went in, so its edits to them do not
    /// count (SWE-smith; the SWE-bench families reset them in their eval script).
    pub revert_tests: RevertTests,
    /// The harness's own limit on the eval script, when it has one (SWE-smith's profiles).
    pub timeout_s: Option<u64>,
}

/// Which test files a harness restores after the model's patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RevertTests {
    /// None.
    #[default]
    None,
    /// These files.
    Files(Vec<String>),
    /// The `*_test.go` files that define these top-level functions (SWE-smith's Go profile
    /// scans the repository for them).
    GoFunctions(Vec<String>),
}

impl EvalPlan {
    /// The fields only some families set, empty.
    fn base() -> EvalPlan {
        EvalPlan {
            family: Family::Agentmill,
            script: None,
            rules: Rules::Agentmill,
            parser: String::new(),
            eval_type: EvalType::PassAndFail,
            apply: ApplyChain::Agentmill,
            setup: Vec::new(),
            reset_patch_files: false,
            revert_tests: RevertTests::None,
            timeout_s: None,
        }
    }
}

/// The parser agentmill's own rows are read with: the listed pytest ids, matched whole.
pub const AGENTMILL_PARSER: &str = "agentmill-pytest";

/// Plans the grading of `task` as its family's harness grades it.
pub fn eval_plan(task: &Task, opts: &ScriptOptions) -> Result<EvalPlan, String> {
    match task.family {
        Family::Agentmill => Ok(EvalPlan {
            family: Family::Agentmill,
            script: task.eval_script.clone(),
            rules: Rules::Agentmill,
            parser: task.log_parser.clone().unwrap_or_else(|| AGENTMILL_PARSER.to_string()),
            eval_type: task.eval_type.unwrap_or_default(),
            apply: ApplyChain::Agentmill,
            ..EvalPlan::base()
        }),
        Family::Swebench => swebench4(task, opts),
        Family::Swebench5 => swebench5(task),
        Family::SweRebench => swe_rebench(task, opts),
        Family::SweGym => swe_gym(task, opts),
        Family::SweSmith => swe_smith(task),
        Family::SweRebenchV2 => swe_rebench_v2(task),
        Family::R2eGym => r2e_gym(task),
        Family::OpenSwe => open_swe(task),
        Family::Harbor => Err(format!(
            "{} is a Harbor task: its tests/test.sh writes a reward file that grades it (dataset::harbor::read_rewards), not a test log: the worker's Harbor episode runs its verifier (there is no eval script to show)",
            task.instance_id
        )),
    }
}

fn swebench4(task: &Task, opts: &ScriptOptions) -> Result<EvalPlan, String> {
    let tables = specs::swebench();
    let own;
    let (spec, ext) = match tables.spec(&task.repo, &task.version) {
        Some(spec) => (spec, tables.repo_ext.get(&task.repo).map(String::as_str).unwrap_or("py")),
        None if !tables.specs.contains_key(&task.repo) && task.eval_script.is_none() => {
            own = own_spec(task)?;
            (&own.0, own.1)
        }
        None => return Err(unknown_version(tables, &task.repo, &task.version)),
    };
    let parser = match &task.log_parser {
        Some(p) => p.clone(),
        None => tables.repo_parser.get(&task.repo).cloned().ok_or_else(|| format!("SWE-bench names no log parser for {}; give the row a log_parser", task.repo))?,
    };
    let script = match &task.eval_script {
        Some(s) => s.clone(),
        None => {
            let lines = match ext {
                "py" => eval_lines_py(task, spec, &test_cmd_of(spec)?, &tables.non_test_exts, opts, Directives::Swebench)?,
                "js" => eval_lines_js(task, spec)?,
                _ => eval_lines_common(task, spec)?,
            };
            script_text("set -uxo pipefail", &lines)
        }
    };
    let fail_only = tables.fail_only_repos.contains(&task.repo);
    Ok(EvalPlan {
        family: Family::Swebench,
        script: Some(script),
        rules: Rules::Swebench4,
        parser,
        eval_type: task.eval_type.unwrap_or(if fail_only { EvalType::FailOnly } else { EvalType::PassAndFail }),
        apply: ApplyChain::Swebench4,
        ..EvalPlan::base()
    })
}

/// The spec of a repository SWE-bench's table does not know (agentmill's multilingual tasks):
/// the row's `test_cmd` in the spec's place, the extension from its `language` in
/// `MAP_REPO_TO_EXT`'s. The eval script is then made exactly as for the table's repositories of
/// that language (a `test_cmd` the row wrote as a list holds its commands one per line, so they
/// stand in the script as the table's lists do, such as Java's one `mvn test -Dtest=…` per test).
fn own_spec(task: &Task) -> Result<(Spec, &'static str), String> {
    let fix = "a SWE-bench row whose repo is not in SWE-bench's spec table carries its own test_cmd, log_parser and language (or an eval_script)";
    let test_cmd = task.test_cmd.as_deref().ok_or_else(|| format!("{} is not in SWE-bench's spec table and the row has no test_cmd; {fix}", task.repo))?;
    let language = task.extra.get("language").and_then(Value::as_str).ok_or_else(|| format!("{} is not in SWE-bench's spec table and the row names no language; {fix}", task.repo))?;
    let ext = super::language_ext(language).ok_or_else(|| format!("language {language:?} is not one SWE-bench's harness knows; use one of {}", super::LANGUAGES.join(", ")))?;
    let mut spec = Spec::new();
    spec.insert("test_cmd".into(), Value::String(test_cmd.to_string()));
    Ok((spec, ext))
}

fn swebench5(task: &Task) -> Result<EvalPlan, String> {
    let given = task.eval_script.as_deref().ok_or("a SWE-bench 5.x row needs its eval_script")?;
    let parser = task.log_parser.clone().ok_or("a SWE-bench 5.x row needs its log_parser")?;
    if task.extra.get("image_assets").is_some_and(|v| !v.is_null() && v != "" && v != "{}" && v.as_object().is_none_or(|o| !o.is_empty())) {
        return Err("the row has image_assets, which the 5.x harness downloads before the tests; a worker's sandbox has no network to fetch them: put the assets in the image".into());
    }
    // `parse_eval_script`: the shebang and `set -uxo pipefail` lines dropped; then
    // `record_test_exit_code`.
    let lines: Vec<String> = given.trim_matches(py_space).split('\n').filter(|l| *l != "#!/bin/bash" && *l != "set -uxo pipefail").map(str::to_string).collect();
    let lines = record_test_exit_code(lines);
    Ok(EvalPlan {
        family: Family::Swebench5,
        script: Some(script_text("set -uxo pipefail", &lines)),
        rules: Rules::Swebench5,
        parser,
        eval_type: task.eval_type.unwrap_or_default(),
        apply: ApplyChain::Swebench5,
        ..EvalPlan::base()
    })
}

/// OpenSWE: the row's `eval_script` run as it is (it applies the test patch from its own heredoc
/// and prints `OPENSWE_EXIT_CODE=<rc>`), after the model's patch applied as SWE-bench 5.x's
/// harness applies it (OpenSWE's harness is a fork of it); the exit-code line grades.
fn open_swe(task: &Task) -> Result<EvalPlan, String> {
    let script = task.eval_script.clone().ok_or("an OpenSWE row needs its eval_script")?;
    Ok(EvalPlan {
        family: Family::OpenSwe,
        script: Some(script),
        rules: Rules::OpenSwe,
        parser: String::new(),
        eval_type: EvalType::PassAndFail,
        apply: ApplyChain::Swebench5,
        ..EvalPlan::base()
    })
}

/// Python's `str.strip()` set (the script is stripped before it is split).
fn py_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f' | ' ' | '\u{85}' | '\u{a0}') || (c as u32 >= 0x1680 && c.is_whitespace())
}

/// 5.x's `record_test_exit_code`: `SWEBENCH_TEST_EXIT_CODE=$?` before the end marker's line and
/// its echo after it.
fn record_test_exit_code(lines: Vec<String>) -> Vec<String> {
    let Some(i) = lines.iter().position(|l| l.contains(END_TEST_OUTPUT)) else { return lines };
    let mut out = Vec::with_capacity(lines.len() + 2);
    out.extend_from_slice(&lines[..i]);
    out.push("SWEBENCH_TEST_EXIT_CODE=$?".to_string());
    out.push(lines[i].clone());
    out.push(format!("echo \"{TEST_EXIT_CODE}: $SWEBENCH_TEST_EXIT_CODE\""));
    out.extend_from_slice(&lines[i + 1..]);
    out
}

fn swe_rebench(task: &Task, opts: &ScriptOptions) -> Result<EvalPlan, String> {
    let spec = rebench_install_config(task)?;
    let parser = match &task.log_parser {
        Some(p) => p.clone(),
        None => match spec_str(&spec, "log_parser") {
            // The fork's MAP_REPO_TO_PARSER holds the parser names and the repositories.
            Some(p) if p.starts_with("parse_log_") => p.to_string(),
            Some(repo) => specs::swebench().repo_parser.get(repo).cloned().ok_or_else(|| format!("install_config.log_parser {repo:?} names no parser agentmill knows"))?,
            None => return Err("install_config.log_parser is missing; SWE-rebench rows name their parser there".into()),
        },
    };
    let test_cmd = test_cmd_of(&spec)?;
    let ext = specs::swebench().repo_ext.get(&task.repo).map(String::as_str).unwrap_or("py");
    let lines = match ext {
        "py" => eval_lines_py(task, &spec, &test_cmd, &specs::swebench().non_test_exts, opts, Directives::Rebench)?,
        "js" => eval_lines_js(task, &spec)?,
        _ => eval_lines_common(task, &spec)?,
    };
    Ok(EvalPlan {
        family: Family::SweRebench,
        script: Some(task.eval_script.clone().unwrap_or_else(|| script_text("set -uxo pipefail", &lines))),
        rules: Rules::SweRebench,
        parser,
        eval_type: task.eval_type.unwrap_or_default(),
        apply: ApplyChain::Swebench4,
        ..EvalPlan::base()
    })
}

/// SWE-smith (`harness/utils.py::run_patch_in_container`, `profiles/*.py`): the instance's
/// branch and its parent (the tests back), the patch's files restored and the patch applied,
/// the listed tests' files restored, then the profile's test command between the markers.
fn swe_smith(task: &Task) -> Result<EvalPlan, String> {
    let tables = specs::swesmith();
    let key = specs::swesmith_key(&task.repo, &task.instance_id);
    let profile = tables.resolve(&key).ok_or_else(|| format!("SWE-smith has no profile {key:?} ({}); check the row's repo", tables.header.generated_from))?;
    let parser = match &task.log_parser {
        Some(p) => p.clone(),
        None => format!("swesmith:{}", profile.parser.as_deref().ok_or_else(|| format!("SWE-smith's {} profile {key} has no log parser", profile.language))?),
    };
    let files = |ids: &[String]| -> Vec<String> {
        let mut v: Vec<String> = ids.iter().map(|id| id.split("::").next().unwrap_or(id).to_string()).collect();
        v.sort();
        v.dedup();
        v
    };
    // `get_test_files`: per list, then F2P's and P2P's together.
    let (f2p_files, p2p_files): (Vec<String>, Vec<String>) = match profile.get_test_files.as_deref() {
        Some("PythonProfile") => (files(&task.fail_to_pass), files(&task.pass_to_pass)),
        Some("MidoA0158ff9") => {
            let strip = |v: Vec<String>| -> Vec<String> {
                let mut v: Vec<String> = v.into_iter().map(|f| f.strip_prefix("../dev/").map(str::to_string).unwrap_or(f)).collect();
                v.sort();
                v.dedup();
                v
            };
            (strip(files(&task.fail_to_pass)), strip(files(&task.pass_to_pass)))
        }
        Some("PythonSlugify872b3750") => (vec!["test.py".into()], vec!["test.py".into()]),
        Some("TornadoD5ac65c1") => {
            let module = |ids: &[String]| -> Vec<String> {
                let mut v: Vec<String> = ids
                    .iter()
                    .filter_map(|id| {
                        // re.search(r"\s\((.*)\)", id)
                        static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
                        let re = RE.get_or_init(|| regex::Regex::new(r"\s\((.*)\)").expect("static regex"));
                        let inner = re.captures(id)?.get(1)?.as_str().to_string();
                        let parts: Vec<&str> = inner.split('.').collect();
                        Some(format!("{}.py", parts[..parts.len().saturating_sub(1)].join("/")))
                    })
                    .collect();
                v.sort();
                v.dedup();
                v
            };
            (module(&task.fail_to_pass), module(&task.pass_to_pass))
        }
        _ => (Vec::new(), Vec::new()),
    };
    let test_cmd = profile.test_cmd.clone().unwrap_or_default();
    let command = match profile.get_test_cmd.as_deref() {
        Some("Babel2ea3fc8f") => {
            let bug = task.extra.get("bug_patch").and_then(Value::as_str).unwrap_or_default();
            if bug.is_empty() {
                test_cmd
            } else {
                let paths = super::patch::patch_paths(bug).map_err(|e| format!("patch does not parse as a patch: {e}"))?;
                let pkgs: Vec<String> = paths.iter().filter_map(|p| {
                    let parts: Vec<&str> = p.split('/').collect();
                    (parts.len() >= 2 && parts[0] == "packages").then(|| format!("packages/{}", parts[1]))
                }).collect();
                format!("{test_cmd} {}", pkgs.join(" "))
            }
        }
        Some("MypyE93f06ce") => test_cmd,
        _ => {
            let prefix = task.instance_id.rsplit_once('.').map(|(k, _)| k).unwrap_or(&task.instance_id);
            if prefix != key {
                return Err(format!("instance_id {} is not an instance of SWE-smith's profile {key} (its id must start with {key}.)", task.instance_id));
            }
            if profile.min_testing == Some(true) {
                let mut all = f2p_files.clone();
                all.extend(p2p_files.iter().cloned());
                if all.is_empty() { test_cmd } else { format!("{test_cmd} {}", all.join(" ")) }
            } else {
                test_cmd
            }
        }
    };
    let revert = match profile.get_test_files.as_deref() {
        Some("GoProfile") => RevertTests::GoFunctions(task.fail_to_pass.iter().chain(&task.pass_to_pass).cloned().collect()),
        _ => {
            let mut all = f2p_files;
            all.extend(p2p_files);
            if all.is_empty() { RevertTests::None } else { RevertTests::Files(all) }
        }
    };
    let id = crate::dataset::shell_word(&task.instance_id);
    Ok(EvalPlan {
        family: Family::SweSmith,
        script: Some(script_text("set -uxo pipefail", &["cd /testbed".to_string(), format!(": '{START_TEST_OUTPUT}'"), command, format!(": '{END_TEST_OUTPUT}'")])),
        rules: Rules::SweSmith,
        parser,
        eval_type: task.eval_type.unwrap_or_default(),
        apply: ApplyChain::Swebench4,
        setup: vec![format!("git checkout {id}"), "git checkout HEAD~1".into()],
        reset_patch_files: true,
        revert_tests: revert,
        timeout_s: profile.timeout,
    })
}

/// The repositories R2E-Gym's `parse_log_fn` knows (all read by its `parse_log_pytest`).
const R2E_REPOS: [&str; 11] = ["sympy", "pandas", "pillow", "scrapy", "pyramid", "tornado", "datalad", "aiohttp", "coveragepy", "numpy", "orange3"];

/// The marker a non-SWE-bench script prints when the model's patch does not apply (the runs
/// the reference would count as the model's are not graded by agentmill: the patch came from
/// `git diff` in the same image).
pub const PATCH_APPLY_FAILED: &str = ">>>>> Patch Apply Failed";

/// SWE-rebench V2 (`scripts/eval.py`): in the workdir, `set -e`, `git reset --hard HEAD`, the
/// model's patch and the test patch applied with `git apply -v --3way --recount
/// --ignore-space-change --whitespace=nowarn`, then every `test_cmd` line; stdout then stderr.
/// Resolved exactly when the PASSED set equals FAIL_TO_PASS ∪ PASS_TO_PASS.
fn swe_rebench_v2(task: &Task) -> Result<EvalPlan, String> {
    let Some(Value::Object(ic)) = task.extra.get("install_config") else {
        return Err("install_config is missing; SWE-rebench V2 rows carry test_cmd and log_parser there".into());
    };
    let test_cmds: Vec<String> = match ic.get("test_cmd") {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    if test_cmds.is_empty() {
        return Err("install_config.test_cmd is empty; SWE-rebench V2 rows list their test commands there".into());
    }
    let parser = match (&task.log_parser, ic.get("log_parser").and_then(Value::as_str)) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => format!("swe-rebench-v2:{p}"),
        (None, None) => return Err("install_config.log_parser is missing".into()),
    };
    let apply = |path: &str| format!("git apply -v --3way --recount --ignore-space-change --whitespace=nowarn {path}");
    let mut lines = vec![
        "set -e".to_string(),
        "git reset --hard HEAD".to_string(),
        format!("{} || {{ echo '{PATCH_APPLY_FAILED}'; exit 1; }}", apply("\"$AGENTMILL_MODEL_PATCH\"")),
    ];
    lines.push(apply("\"$AGENTMILL_TEST_PATCH\""));
    lines.extend(test_cmds);
    Ok(EvalPlan {
        family: Family::SweRebenchV2,
        script: Some(lines.join("\n") + "\n"),
        rules: Rules::SweRebenchV2,
        parser,
        eval_type: EvalType::PassAndFail,
        apply: ApplyChain::InScript,
        ..EvalPlan::base()
    })
}

/// R2E-Gym (`agenthub/runtime/docker.py`): `bash /root/run_tests.sh` (300 s) after the
/// environment's setup, the log without colour codes and carriage returns, read by its
/// `parse_log_pytest`; reward 1 exactly when that map equals `expected_output_json`.
fn r2e_gym(task: &Task) -> Result<EvalPlan, String> {
    let repo_name = task.extra.get("repo_name").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| task.repo.rsplit('/').next().unwrap_or_default().to_string());
    let parser = match &task.log_parser {
        Some(p) => p.clone(),
        None if R2E_REPOS.contains(&repo_name.as_str()) => "r2e-gym:parse_log_pytest".to_string(),
        None => return Err(format!("R2E-Gym has no parser for repository {repo_name:?} (it knows {}); give the row a log_parser", R2E_REPOS.join(", "))),
    };
    if task.image.contains("swebench") {
        return Err("an R2E-Gym row on a SWE-bench image is graded by SWE-bench's harness in R2E-Gym; submit it as the SWE-bench row it is".into());
    }
    Ok(EvalPlan {
        family: Family::R2eGym,
        script: Some("export PATH=/root/.venv/bin:/root/.local/bin:/root/.cargo/bin:$PATH\ntimeout 300 bash /root/run_tests.sh\n".to_string()),
        rules: Rules::R2eGym,
        parser,
        eval_type: EvalType::PassAndFail,
        apply: ApplyChain::R2eGym,
        setup: r2e_setup(),
        ..EvalPlan::base()
    })
}

/// R2E-Gym's `setup_env`: the repository's `.venv` on the path, bytecode removed, the tests and
/// their runner moved to `/root` (the tests linked back into the repository). Each step's
/// failure is ignored, as R2E-Gym ignores it. The last line is agentmill's: the link and the
/// environment are excluded from the repository's status so that a submission never adds them.
pub fn r2e_setup() -> Vec<String> {
    [
        "ln -s /testbed/.venv /root/.venv",
        "ln -s /testbed/.venv/bin/python /root/.local/bin/python",
        "ln -s /testbed/.venv/bin/python /root/.local/bin/python3",
        "find /testbed/.venv/bin -type f -executable -exec ln -sf {} /root/.local/bin/ \\;",
        "find /testbed -name '*.pyc' -delete",
        "find /testbed -name '__pycache__' -exec rm -rf {} +",
        "find /r2e_tests -name '*.pyc' -delete",
        "find /r2e_tests -name '__pycache__' -exec rm -rf {} +",
        "mv /testbed/run_tests.sh /root/run_tests.sh",
        "mv /testbed/r2e_tests /root/r2e_tests",
        "mv /r2e_tests /root/r2e_tests",
        "ln -s /root/r2e_tests /testbed/r2e_tests",
        // agentmill's own addition: the submitted patch is every change in the repository
        // (`git add -A`), which must not take in the tests' link or the environment.
        "printf '/r2e_tests\\n/.venv\\n/run_tests.sh\\n' >> /testbed/.git/info/exclude",
    ]
    .iter()
    .map(|l| format!("{l} 2>/dev/null || true"))
    .collect()
}

/// SWE-rebench's `_clean_install_config`: nulls dropped, `pre_install` defaulted, `install` and
/// `test_cmd` run under `LANG=C.UTF-8 LC_ALL=C.UTF-8`.
fn rebench_install_config(task: &Task) -> Result<Spec, String> {
    let Some(Value::Object(ic)) = task.extra.get("install_config") else {
        return Err("install_config is missing; SWE-rebench rows carry their spec there".into());
    };
    let mut spec: Spec = ic.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
    if spec.get("pre_install").is_none_or(|v| v.as_array().is_none_or(Vec::is_empty) && v.as_str().is_none_or(str::is_empty)) {
        spec.insert("pre_install".into(), Value::Array(Vec::new()));
    }
    if let Some(Value::String(install)) = spec.get("install") {
        let prefixed = format!("LANG=C.UTF-8 LC_ALL=C.UTF-8 {install}");
        spec.insert("install".into(), Value::String(prefixed));
    }
    let test_cmd = spec_str(&spec, "test_cmd").ok_or("install_config.test_cmd is missing or not a string")?.to_string();
    spec.insert("test_cmd".into(), Value::String(format!("LANG=C.UTF-8 LC_ALL=C.UTF-8 {test_cmd}")));
    Ok(spec)
}

fn swe_gym(task: &Task, opts: &ScriptOptions) -> Result<EvalPlan, String> {
    let tables = specs::swe_gym();
    let repo = task.repo.to_ascii_lowercase();
    let spec = tables.spec(&repo, &task.version).ok_or_else(|| unknown_version(tables, &repo, &task.version))?;
    let parser = match &task.log_parser {
        Some(p) => p.clone(),
        None => tables.repo_parser.get(&repo).cloned().ok_or_else(|| format!("SWE-Gym's harness names no log parser for {repo}; give the row a log_parser"))?,
    };
    let test_cmd = spec_str(spec, "test_cmd").ok_or_else(|| format!("SWE-Gym's spec for {repo} {} has no test_cmd", task.version))?;
    // `make_test_command`: mypy selects its cases with -k from the test patch's `[case X]` lines.
    let test_command = if task.repo == "python/mypy" {
        let cases: Vec<&str> = task.test_patch.match_indices("[case ").filter_map(|(i, _)| task.test_patch[i + 6..].split(']').next()).filter(|c| !c.is_empty()).collect();
        format!("{test_cmd} \"{}\"", cases.join(" or "))
    } else {
        let mut parts = vec![test_cmd.to_string()];
        parts.extend(test_directives(&task.repo, &task.test_patch, &tables.non_test_exts));
        parts.join(" ")
    };
    // Its fork reads the reset list with `--- a/(.*)` (new files are not listed).
    let test_files: Vec<&str> = task.test_patch.split('\n').filter_map(|l| l.split_once("--- a/").map(|(_, f)| f)).collect();
    let reset = format!("git checkout {} {}", task.base_commit, test_files.join(" "));
    let mut lines = Vec::new();
    conda_lines(&mut lines, opts);
    lines.push("cd /testbed".into());
    lines.extend(spec_list(spec, "eval_commands"));
    lines.extend(["git config --global --add safe.directory /testbed".into(), "cd /testbed".into(), "git status".into(), "git show".into(), format!("git diff {}", task.base_commit)]);
    conda_lines(&mut lines, opts);
    if let Some(install) = spec_str(spec, "install") {
        lines.push(install.to_string());
    }
    lines.extend([reset.clone(), heredoc_apply("git apply -v -", &task.test_patch), test_command, reset]);
    Ok(EvalPlan {
        family: Family::SweGym,
        script: Some(task.eval_script.clone().unwrap_or_else(|| script_text("set -xo pipefail", &lines))),
        rules: Rules::SweGym,
        parser,
        eval_type: task.eval_type.unwrap_or_default(),
        apply: ApplyChain::Swebench4,
        ..EvalPlan::base()
    })
}

fn unknown_version(tables: &specs::SpecTables, repo: &str, version: &str) -> String {
    let known = tables.versions(repo);
    if known.is_empty() {
        format!("{repo} is not in {}'s spec table; give the row an eval_script or test_cmd", tables.generated_from)
    } else {
        format!("version {version:?} of {repo} is not in {}'s spec table (it knows {}); fix the row's version or give it an eval_script", tables.generated_from, known.join(", "))
    }
}

fn test_cmd_of(spec: &Spec) -> Result<String, String> {
    match spec.get("test_cmd") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(a)) => Ok(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")),
        _ => Err("the spec has no test_cmd".into()),
    }
}

/// Which reading of the test patch gives the test directives.
#[derive(Clone, Copy)]
enum Directives {
    /// SWE-bench's `diff --git` regex.
    Swebench,
    /// SWE-rebench's `unidiff` paths of files that are not deleted.
    Rebench,
}

fn conda_lines(lines: &mut Vec<String>, opts: &ScriptOptions) {
    if opts.conda {
        lines.push("source /opt/miniconda3/bin/activate".into());
        lines.push("conda activate testbed".into());
    }
}

fn heredoc_apply(cmd: &str, test_patch: &str) -> String {
    format!("{cmd} <<'{HEREDOC}'\n{test_patch}\n{HEREDOC}")
}

fn script_text(set_line: &str, lines: &[String]) -> String {
    let mut s = format!("#!/bin/bash\n{set_line}\n");
    s.push_str(&lines.join("\n"));
    s.push('\n');
    s
}

/// `make_eval_script_list_py`.
fn eval_lines_py(task: &Task, spec: &Spec, test_cmd: &str, non_test_exts: &[String], opts: &ScriptOptions, how: Directives) -> Result<Vec<String>, String> {
    let base = &task.base_commit;
    let test_files = modified_files(&task.test_patch).map_err(|e| format!("test_patch does not parse as a patch: {e}"))?;
    let reset = format!("git checkout {base} {}", test_files.join(" "));
    let directives = match how {
        Directives::Swebench => test_directives(&task.repo, &task.test_patch, non_test_exts),
        Directives::Rebench => rebench_directives(task, non_test_exts)?,
    };
    let mut command = vec![test_cmd.to_string()];
    command.extend(directives);
    let mut lines = Vec::new();
    conda_lines(&mut lines, opts);
    lines.push("cd /testbed".into());
    lines.extend(spec_list(spec, "eval_commands"));
    lines.extend([
        "git config --global --add safe.directory /testbed".into(),
        "cd /testbed".into(),
        "git status".into(),
        "git show".into(),
        format!("git -c core.fileMode=false diff {base}"),
    ]);
    conda_lines(&mut lines, opts);
    if let Some(install) = spec.get("install") {
        match install {
            Value::String(s) => lines.push(s.clone()),
            other => lines.push(python_str(other)),
        }
    }
    lines.extend([reset.clone(), heredoc_apply("git apply -v -", &task.test_patch), format!(": '{START_TEST_OUTPUT}'"), command.join(" "), format!(": '{END_TEST_OUTPUT}'"), reset]);
    Ok(lines)
}

/// SWE-rebench's `get_test_directives`.
fn rebench_directives(task: &Task, non_test_exts: &[String]) -> Result<Vec<String>, String> {
    match task.repo.as_str() {
        "swe-bench/humaneval" | "swe-bench/humanevalfix-python" => return Ok(vec!["test.py".into()]),
        "swe-bench/humanevalfix-go" | "swe-bench/humanevalfix-java" => return Ok(Vec::new()),
        "swe-bench/humanevalfix-js" => return Ok(vec!["test.js".into()]),
        "nebius/nebo" => return Ok(vec![String::new()]),
        _ => {}
    }
    let files = changed_paths(&task.test_patch).map_err(|e| format!("test_patch does not parse as a patch: {e}"))?;
    let directives = files.into_iter().filter(|d| !non_test_exts.iter().any(|e| d.ends_with(e.as_str())));
    Ok(if task.repo == "django/django" {
        directives
            .map(|d| {
                let d = d.strip_suffix(".py").unwrap_or(&d);
                let d = d.strip_prefix("tests/").unwrap_or(d);
                d.replace('/', ".")
            })
            .collect()
    } else {
        directives.collect()
    })
}

/// `make_eval_script_list_common` (Go, Rust, Java, PHP, Ruby, C, and JavaScript's base).
fn eval_lines_common(task: &Task, spec: &Spec) -> Result<Vec<String>, String> {
    let test_files = modified_files(&task.test_patch).map_err(|e| format!("test_patch does not parse as a patch: {e}"))?;
    let reset = if test_files.is_empty() { "echo \"No test files to reset\"".to_string() } else { format!("git checkout {} {}", task.base_commit, test_files.join(" ")) };
    let test_cmds = spec_list(spec, "test_cmd");
    let mut lines = vec!["cd /testbed".to_string(), "git config --global --add safe.directory /testbed".into(), "cd /testbed".into(), reset.clone()];
    lines.push(heredoc_apply("git apply --verbose --reject -", &task.test_patch));
    lines.extend(spec_list(spec, "build"));
    lines.push(format!(": '{START_TEST_OUTPUT}'"));
    lines.extend(test_cmds);
    lines.push(format!(": '{END_TEST_OUTPUT}'"));
    lines.push(reset);
    Ok(lines)
}

/// `make_eval_script_list_js`: the common script, image downloads after the reset, and
/// wp-calypso's own test commands.
fn eval_lines_js(task: &Task, spec: &Spec) -> Result<Vec<String>, String> {
    let mut lines = eval_lines_common(task, spec)?;
    let downloads = image_download_commands(task)?;
    let at = 4.min(lines.len());
    lines.splice(at..at, downloads);
    if task.repo == "Automattic/wp-calypso" {
        let cmds = calypso_test_commands(task)?;
        let start = lines.iter().position(|l| *l == format!(": '{START_TEST_OUTPUT}'")).ok_or("no start marker")?;
        let end = lines.iter().position(|l| *l == format!(": '{END_TEST_OUTPUT}'")).ok_or("no end marker")?;
        lines.splice(start + 1..end, cmds);
    }
    Ok(lines)
}

/// 4.x's `get_download_img_commands` for `image_assets.test_patch`.
fn image_download_commands(task: &Task) -> Result<Vec<String>, String> {
    let assets = match task.extra.get("image_assets") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).map_err(|e| format!("image_assets is not JSON: {e}"))?,
        Some(v) => v.clone(),
    };
    let mut cmds = Vec::new();
    for item in assets.get("test_patch").and_then(Value::as_array).into_iter().flatten() {
        let path = item.get("path").and_then(Value::as_str).ok_or("image_assets.test_patch[].path is missing")?;
        let url = item.get("url").and_then(Value::as_str).ok_or("image_assets.test_patch[].url is missing")?;
        let folder = match path.rfind('/') {
            Some(0) => "/",
            Some(i) => &path[..i],
            None => ".",
        };
        cmds.push(format!("mkdir -p {folder}"));
        cmds.push(format!("curl -o {path} {url}"));
        cmds.push(format!("chmod 777 {path}"));
    }
    Ok(cmds)
}

/// 4.x's `get_test_cmds_calypso`.
fn calypso_test_commands(task: &Task) -> Result<Vec<String>, String> {
    const V10: [&str; 6] = ["10.10.0", "10.12.0", "10.13.0", "10.14.0", "10.15.2", "10.16.3"];
    const V8: [&str; 10] = ["6.11.5", "8.9.1", "8.9.3", "8.9.4", "8.11.0", "8.11.2", "10.4.1", "10.5.0", "10.6.0", "10.9.0"];
    let paths = super::patch::patch_paths(&task.test_patch).map_err(|e| format!("test_patch does not parse as a patch: {e}"))?;
    let mut cmds = Vec::new();
    for mut path in paths {
        if is_jest_snapshot(&path) {
            let parts: Vec<&str> = path.split('/').collect();
            path = parts[..parts.len().saturating_sub(2)].join("/");
        }
        if path.starts_with("client") || path.starts_with("packages") {
            let pkg = path.split('/').next().unwrap_or_default();
            if V10.contains(&task.version.as_str()) {
                cmds.push(format!("./node_modules/.bin/jest --verbose -c=test/{pkg}/jest.config.js '{path}'"));
            } else if V8.contains(&task.version.as_str()) {
                cmds.push(format!("./node_modules/.bin/jest --verbose -c=test/{pkg}/jest.config.json '{path}'"));
            } else {
                cmds.push(format!("npm run test-{pkg} --verbose '{path}'"));
            }
        } else if path.starts_with("test/e2e") {
            cmds.extend(["cd test/e2e".to_string(), format!("NODE_CONFIG_ENV=test npm run test {path}"), "cd ../..".to_string()]);
        }
    }
    Ok(cmds)
}

/// `re.search(r"__snapshots__/(.*).js.snap$", path)`.
fn is_jest_snapshot(path: &str) -> bool {
    path.find("__snapshots__/").is_some_and(|i| {
        let rest = &path[i + "__snapshots__/".len()..];
        rest.len() >= ".js.snap".len() && {
            // `.` in `.js.snap` matches any character.
            let tail = &rest.as_bytes()[rest.len() - 8..];
            tail[1..3] == *b"js" && tail[4..] == *b"snap"
        }
    })
}

/// How Python's f-string would write a non-string spec value (lists print as lists).
fn python_str(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("[{}]", a.iter().map(|x| match x {
            Value::String(s) => format!("'{s}'"),
            other => python_str(other),
        }).collect::<Vec<_>>().join(", ")),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_is_recorded_around_the_end_marker() {
        let lines = vec!["a".to_string(), format!(": '{END_TEST_OUTPUT}'"), "b".to_string()];
        let out = record_test_exit_code(lines);
        assert_eq!(out, ["a", "SWEBENCH_TEST_EXIT_CODE=$?", ": '>>>>> End Test Output'", "echo \">>>>> Test Exit Code: $SWEBENCH_TEST_EXIT_CODE\"", "b"]);
    }

    #[test]
    fn snapshots_are_recognised_as_jest_does() {
        assert!(is_jest_snapshot("client/a/__snapshots__/x.js.snap"));
        assert!(!is_jest_snapshot("client/a/x.js"));
    }
}
