//! Harbor task directories, read as the `harbor` package (0.25.0) reads them.
//!
//! A Harbor task is a directory: `task.toml` (the [`TaskConfig`]), `instruction.md` (the problem
//! statement, leading canary lines stripped by [`strip_canary`]), `environment/` (a Dockerfile,
//! or none when `[environment].docker_image` names a prebuilt image), `tests/test.sh` (the
//! verifier, uploaded only after the agent has finished) and `solution/solve.sh` (the oracle).
//! [`read_task`] follows `harbor.models.task.task.Task.__init__`: the config is validated as the
//! package's pydantic models validate it (their defaults, their lax coercions, the legacy keys
//! they migrate, unknown keys ignored), the `tests/` and `solution/` trees must stay inside the
//! task directory, and the instruction and the OS's test script must exist.
//!
//! [`read_rewards`] reads what a verifier wrote (`/logs/verifier/reward.json`, else `reward.txt`)
//! exactly as `harbor.verifier.verifier.Verifier` does, and [`RewardRule`] turns the rewards into
//! a resolution. `proto/tests/harbor.rs` holds both to the package (`tests/reference/harbor_ref.py`).
//!
//! Where agentmill is narrower than the package it refuses with [`HarborErrorKind::Unsupported`]
//! and says so: multi-step tasks (`[[steps]]`).
//! `.harborignore` files (gitignore-style exclusions of test and solution inputs) are read as
//! the package reads them (`ignore`).
//! One known difference is not a choice: an integer past 64 bits anywhere in `task.toml` is
//! refused (TOML's own limit, which toml_edit keeps), where Python reads it.
//!
//! One file, long on purpose: it is one reader following the package (the config models with
//! their pydantic coercions, the task directory, the verifier's rewards, the row agentmill makes
//! of a task), kept together so it reads beside the package; `ignore` and `pack` are the parts
//! that stand alone.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

mod ignore;
mod pack;
pub use pack::{pack_task, subtree_tar, tar_has};
use serde_json::Value as Json;
use toml10::Value as Toml;
use toml10::value::Table;

/// Why a task directory was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HarborErrorKind {
    /// A file could not be read (missing, not UTF-8, a directory).
    Io,
    /// `task.toml` is not valid TOML 1.0.
    Toml,
    /// `task.toml` does not validate against the package's `TaskConfig`.
    Config,
    /// A file the package requires is missing (`instruction.md`, `tests/test.sh`).
    Missing,
    /// An input path leaves the task directory, or directory links form a cycle.
    Escape,
    /// A feature of the format agentmill does not read (multi-step tasks, artifacts, ...).
    Unsupported,
}

/// A refused task directory: what, where (a file or a `task.toml` key) and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Harbor task {task_dir}: {at}: {message}")]
pub struct HarborError {
    /// What kind of refusal.
    pub kind: HarborErrorKind,
    /// The task directory as given.
    pub task_dir: String,
    /// The file (relative to the task) or `task.toml` key at fault.
    pub at: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

type Res<T> = Result<T, (HarborErrorKind, String, String)>;

fn cfg_err<T>(at: &str, message: impl Into<String>) -> Res<T> {
    Err((HarborErrorKind::Config, format!("task.toml: {at}"), message.into()))
}

fn unsupported<T>(at: &str, message: impl Into<String>) -> Res<T> {
    Err((HarborErrorKind::Unsupported, format!("task.toml: {at}"), message.into()))
}

// ---------------------------------------------------------------------------------------------
// The config, field for field as `TaskConfig.model_dump(mode="json")` writes it.

/// `int | float` (`[environment].cpus`): a whole float is collapsed to an int, as the package does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// A whole number.
    Int(i64),
    /// A fractional number.
    Float(f64),
}

impl Number {
    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// `str | int` (`user`): a user name or a UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum User {
    /// A UID.
    Id(i64),
    /// A user name.
    Name(String),
}

/// `NetworkMode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// Full network access (the package's default).
    #[default]
    #[serde(rename = "public")]
    Public,
    /// No network.
    #[serde(rename = "no-network")]
    NoNetwork,
    /// Only `allowed_hosts`.
    #[serde(rename = "allowlist")]
    Allowlist,
}

impl NetworkMode {
    /// The package's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Public => "public",
            NetworkMode::NoNetwork => "no-network",
            NetworkMode::Allowlist => "allowlist",
        }
    }
}

/// `TaskOS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskOs {
    /// Linux containers (`.sh` scripts).
    #[default]
    Linux,
    /// Windows containers (`.bat` scripts).
    Windows,
}

/// `Author`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Author {
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
}

/// `PackageInfo`, the `[task]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageInfo {
    /// `org/name`.
    pub name: String,
    /// Package version.
    pub version: Option<String>,
    /// Description.
    pub description: String,
    /// Authors.
    pub authors: Vec<Author>,
    /// Keywords.
    pub keywords: Vec<String>,
}

/// `HealthcheckConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// Shell command; exit 0 means healthy.
    pub command: String,
    /// Seconds between attempts.
    pub interval_sec: f64,
    /// Seconds one attempt may take.
    pub timeout_sec: f64,
    /// Grace period, seconds.
    pub start_period_sec: f64,
    /// Interval during the grace period, seconds.
    pub start_interval_sec: f64,
    /// Consecutive failures before the check fails.
    pub retries: i64,
}

/// `TpuSpec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TpuSpec {
    /// Accelerator type.
    #[serde(rename = "type")]
    pub kind: String,
    /// `NxM[xK]`.
    pub topology: String,
}

/// `MCPServerConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpServer {
    /// Name.
    pub name: String,
    /// `stdio`, `sse` or `streamable-http`.
    pub transport: String,
    /// URL, for the HTTP transports.
    pub url: Option<String>,
    /// Command, for stdio.
    pub command: Option<String>,
    /// Arguments, for stdio.
    pub args: Vec<String>,
    /// HTTP headers (credentials only as `${VAR}` references); left out of the dump when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// `EnvironmentConfig`, the `[environment]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentConfig {
    /// Network policy of the sandbox.
    pub network_mode: NetworkMode,
    /// Reachable hosts under `allowlist` (normalised as the package does).
    pub allowed_hosts: Option<Vec<String>>,
    /// Image build timeout, seconds (600).
    pub build_timeout_sec: f64,
    /// A prebuilt image; the Dockerfile is then optional.
    pub docker_image: Option<String>,
    /// Target OS.
    pub os: TaskOs,
    /// CPUs.
    pub cpus: Option<Number>,
    /// Memory, MB (legacy `memory = "2G"` migrated).
    pub memory_mb: Option<i64>,
    /// Disk, MB (legacy `storage = "10G"` migrated).
    pub storage_mb: Option<i64>,
    /// GPUs.
    pub gpus: Option<i64>,
    /// Acceptable GPU types.
    pub gpu_types: Option<Vec<String>>,
    /// TPU slice.
    pub tpu: Option<TpuSpec>,
    /// MCP servers offered to the agent.
    pub mcp_servers: Vec<McpServer>,
    /// Environment variables (`${VAR:-default}` resolved from the host at run time).
    pub env: BTreeMap<String, String>,
    /// Skills directory in the environment.
    pub skills_dir: Option<String>,
    /// Readiness check.
    pub healthcheck: Option<Healthcheck>,
    /// Working directory (overrides the image's WORKDIR).
    pub workdir: Option<String>,
    /// Whether `network_mode` was written (the legacy `allow_internet` yields to it).
    #[serde(skip)]
    network_mode_set: bool,
    /// Whether `os` was written.
    #[serde(skip)]
    os_set: bool,
}

/// `VerifierCollectConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectHook {
    /// Shell command.
    pub command: String,
    /// Compose service (`main`).
    pub service: String,
    /// Seconds (60).
    pub timeout_sec: f64,
    /// User.
    pub user: Option<User>,
}

/// `VerifierEnvironmentMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifierEnvironmentMode {
    /// The verifier runs in the agent's container.
    Shared,
    /// The verifier runs in a container of its own.
    Separate,
}

/// `VerifierConfig`, the `[verifier]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifierConfig {
    /// Phase network override.
    pub network_mode: Option<NetworkMode>,
    /// Phase allowlist.
    pub allowed_hosts: Option<Vec<String>>,
    /// Verifier timeout, seconds (600).
    pub timeout_sec: f64,
    /// Environment of the verifier.
    pub env: BTreeMap<String, String>,
    /// User the verifier runs as.
    pub user: Option<User>,
    /// Shared or separate.
    pub environment_mode: Option<VerifierEnvironmentMode>,
    /// The separate verifier's environment.
    pub environment: Option<EnvironmentConfig>,
    /// Collect hooks.
    pub collect: Vec<CollectHook>,
}

/// `AgentConfig`, the `[agent]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// Phase network override.
    pub network_mode: Option<NetworkMode>,
    /// Phase allowlist.
    pub allowed_hosts: Option<Vec<String>>,
    /// Agent timeout, seconds (None: unlimited).
    pub timeout_sec: Option<f64>,
    /// User the agent runs as.
    pub user: Option<User>,
}

/// `SolutionConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SolutionConfig {
    /// Environment of the oracle.
    pub env: BTreeMap<String, String>,
}

/// `TaskConfig`: `task.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskConfig {
    /// `schema_version` (legacy `version` migrated), "1.4" by default.
    pub schema_version: String,
    /// `[task]`.
    pub task: Option<PackageInfo>,
    /// `[metadata]`, free-form.
    pub metadata: serde_json::Map<String, Json>,
    /// `[verifier]`.
    pub verifier: VerifierConfig,
    /// `[agent]`.
    pub agent: AgentConfig,
    /// `[environment]`.
    pub environment: EnvironmentConfig,
    /// `[solution]`.
    pub solution: SolutionConfig,
    /// `source`.
    pub source: Option<String>,
    /// `mean` | `final` (multi-step tasks only).
    pub multi_step_reward_strategy: Option<String>,
    /// `[[steps]]`: only an empty list is read (multi-step tasks are unsupported).
    pub steps: Option<Vec<Json>>,
    /// `artifacts` (paths or tables, as the package dumps them; read, not collected).
    pub artifacts: Vec<Json>,
}

impl TaskConfig {
    /// The config as `TaskConfig.model_dump(mode="json")` writes it.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    /// Validates `task.toml`'s text as the package does (`TaskConfig.model_validate_toml`).
    pub fn from_toml(text: &str) -> Result<TaskConfig, (HarborErrorKind, String, String)> {
        let invalid = |m: &str| (HarborErrorKind::Toml, "task.toml".to_string(), format!("is not valid TOML 1.0: {m}"));
        // tomllib refuses what toml_edit forgives: a byte-order mark, a leap second.
        if text.starts_with('\u{feff}') {
            return Err(invalid("it starts with a byte-order mark; save it as UTF-8 without one"));
        }
        let table: Table = toml10::from_str(text).map_err(|e| invalid(e.message()))?;
        if has_leap_second(&Toml::Table(table.clone())) {
            return Err(invalid("a time has 60 seconds; write 59 at most"));
        }
        parse_task_config(&table)
    }
}

// ---------------------------------------------------------------------------------------------
// pydantic's lax coercions, for the values TOML can hold.

fn has_leap_second(v: &Toml) -> bool {
    match v {
        Toml::Datetime(d) => d.time.is_some_and(|t| t.second > 59),
        Toml::Array(a) => a.iter().any(has_leap_second),
        Toml::Table(t) => t.values().any(has_leap_second),
        _ => false,
    }
}

fn kind_of(v: &Toml) -> &'static str {
    match v {
        Toml::String(_) => "a string",
        Toml::Integer(_) => "an integer",
        Toml::Float(_) => "a float",
        Toml::Boolean(_) => "a boolean",
        Toml::Datetime(_) => "a datetime",
        Toml::Array(_) => "an array",
        Toml::Table(_) => "a table",
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() { key.to_string() } else { format!("{at}.{key}") }
}

fn as_str(v: &Toml, at: &str) -> Res<String> {
    match v {
        Toml::String(s) => Ok(s.clone()),
        other => cfg_err(at, format!("must be a string, not {}; quote it", kind_of(other))),
    }
}

fn as_float(v: &Toml, at: &str) -> Res<f64> {
    match v {
        Toml::Integer(i) => Ok(*i as f64),
        Toml::Float(f) => Ok(*f),
        Toml::Boolean(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Toml::String(s) => match lax_float_str(s) {
            Some(f) => Ok(f),
            None => cfg_err(at, format!("{s:?} is not a number; write a number of seconds")),
        },
        other => cfg_err(at, format!("must be a number, not {}", kind_of(other))),
    }
}

fn as_int(v: &Toml, at: &str) -> Res<i64> {
    match v {
        Toml::Integer(i) => Ok(*i),
        Toml::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
        Toml::Float(f) => cfg_err(at, format!("{f} is not a whole number")),
        Toml::Boolean(b) => Ok(i64::from(*b)),
        Toml::String(s) => match lax_int_str(s) {
            Some(i) => Ok(i),
            None => cfg_err(at, format!("{s:?} is not a whole number")),
        },
        other => cfg_err(at, format!("must be a whole number, not {}", kind_of(other))),
    }
}

/// pydantic-core's underscore rule: none first or last, never two in a row; then dropped.
fn strip_underscores(s: &str) -> Option<String> {
    if s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    Some(s.replace('_', ""))
}

/// pydantic's float from a string: the trimmed string as a float (`inf`, `nan` in any case),
/// else, when it holds `_`, the untrimmed string without its underscores (so `" 1_0"` fails).
fn lax_float_str(s: &str) -> Option<f64> {
    let ok = |t: &str| (!t.is_empty() && t.is_ascii()).then(|| t.parse::<f64>().ok()).flatten();
    ok(s.trim()).or_else(|| if s.contains('_') { ok(&strip_underscores(s)?) } else { None })
}

/// pydantic's int from a string: surrounding whitespace, a sign, `_` between digits, and a
/// fraction of zeros (`"2048.0"`).
fn lax_int_str(s: &str) -> Option<i64> {
    let whole = match s.trim().split_once('.') {
        Some((w, frac)) if strip_underscores(frac)?.bytes().all(|c| c == b'0') => strip_underscores(w)?,
        Some(_) => return None,
        None => strip_underscores(s.trim())?,
    };
    let digits = whole.strip_prefix(['+', '-']).unwrap_or(&whole);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    whole.parse::<i64>().ok()
}

fn as_bool(v: &Toml, at: &str) -> Res<bool> {
    match v {
        Toml::Boolean(b) => Ok(*b),
        Toml::Integer(0) => Ok(false),
        Toml::Integer(1) => Ok(true),
        Toml::Float(f) if *f == 0.0 => Ok(false),
        Toml::Float(f) if *f == 1.0 => Ok(true),
        Toml::String(s) => match s.to_ascii_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Ok(false),
            "1" | "on" | "t" | "true" | "y" | "yes" => Ok(true),
            _ => cfg_err(at, format!("{s:?} is not true or false")),
        },
        other => cfg_err(at, format!("must be true or false, not {}", kind_of(other))),
    }
}

fn as_user(v: &Toml, at: &str) -> Res<User> {
    match v {
        Toml::String(s) => Ok(User::Name(s.clone())),
        other => as_int(other, at).map(User::Id),
    }
}

fn as_cpus(v: &Toml, at: &str) -> Res<Number> {
    let n = match v {
        Toml::Integer(i) => Number::Int(*i),
        Toml::Boolean(b) => Number::Int(i64::from(*b)),
        Toml::Float(f) => Number::Float(*f),
        Toml::String(s) => match lax_int_str(s) {
            Some(i) => Number::Int(i),
            None => Number::Float(as_float(v, at)?),
        },
        other => return cfg_err(at, format!("must be a number, not {}", kind_of(other))),
    };
    match n {
        Number::Float(f) if !f.is_finite() => cfg_err(at, format!("cpus must be a finite number; got {f}")),
        Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Number::Int(f as i64)),
        n => Ok(n),
    }
}

fn as_table<'a>(v: &'a Toml, at: &str) -> Res<&'a Table> {
    match v {
        Toml::Table(t) => Ok(t),
        other => cfg_err(at, format!("must be a table, not {}", kind_of(other))),
    }
}

fn as_str_list(v: &Toml, at: &str) -> Res<Vec<String>> {
    match v {
        Toml::Array(a) => a.iter().enumerate().map(|(i, x)| as_str(x, &format!("{at}[{i}]"))).collect(),
        other => cfg_err(at, format!("must be an array of strings, not {}", kind_of(other))),
    }
}

fn as_str_map(v: &Toml, at: &str) -> Res<BTreeMap<String, String>> {
    as_table(v, at)?.iter().map(|(k, x)| Ok((k.clone(), as_str(x, &join(at, k))?))).collect()
}

fn opt<T>(t: &Table, key: &str, at: &str, f: impl Fn(&Toml, &str) -> Res<T>) -> Res<Option<T>> {
    t.get(key).map(|v| f(v, &join(at, key))).transpose()
}

fn toml_to_json(v: &Toml) -> Json {
    match v {
        Toml::String(s) => Json::String(s.clone()),
        Toml::Integer(i) => Json::from(*i),
        Toml::Float(f) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
        Toml::Boolean(b) => Json::Bool(*b),
        Toml::Datetime(d) => Json::String(iso_datetime(d)),
        Toml::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        Toml::Table(t) => Json::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

/// A TOML date/time as tomllib reads it (microseconds, extra digits cut) and pydantic writes it
/// (`isoformat`, UTC as `Z`).
fn iso_datetime(d: &toml10::value::Datetime) -> String {
    let mut out = String::new();
    if let Some(date) = &d.date {
        out.push_str(&format!("{:04}-{:02}-{:02}", date.year, date.month, date.day));
    }
    if let Some(t) = &d.time {
        if d.date.is_some() {
            out.push('T');
        }
        out.push_str(&format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second));
        let micros = t.nanosecond / 1000;
        if micros != 0 {
            out.push_str(&format!(".{micros:06}"));
        }
    }
    match d.offset {
        None => {}
        Some(toml10::value::Offset::Z) | Some(toml10::value::Offset::Custom { minutes: 0 }) => out.push('Z'),
        Some(toml10::value::Offset::Custom { minutes }) => {
            let sign = if minutes < 0 { '-' } else { '+' };
            let m = minutes.unsigned_abs();
            out.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
        }
    }
    out
}

fn network_mode(v: &Toml, at: &str) -> Res<NetworkMode> {
    match as_str(v, at)?.as_str() {
        "public" => Ok(NetworkMode::Public),
        "no-network" => Ok(NetworkMode::NoNetwork),
        "allowlist" => Ok(NetworkMode::Allowlist),
        other => cfg_err(at, format!("{other:?} is not a network mode; use \"public\", \"no-network\" or \"allowlist\"")),
    }
}

// ---------------------------------------------------------------------------------------------
// The models.

static ORG_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*/[a-zA-Z0-9][a-zA-Z0-9._-]*$").expect("regex"));
static HOST_LABEL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$").expect("regex"));
static SERVICE_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$").expect("regex"));
static TOPOLOGY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[1-9]\d*(x[1-9]\d*)+$").expect("regex"));

/// Python's `re.match(pattern_ending_in_$, s)`: `$` also matches before one final newline.
fn py_dollar_match(re: &Regex, s: &str) -> bool {
    re.is_match(s) || s.strip_suffix('\n').is_some_and(|t| re.is_match(t))
}

fn parse_task_config(root: &Table) -> Res<TaskConfig> {
    // handle_version_rename: the legacy top-level `version` is the schema version.
    let schema_version = match (root.get("schema_version"), root.get("version")) {
        (Some(v), _) => as_str(v, "schema_version")?,
        (None, Some(v)) => as_str(v, "schema_version")?,
        (None, None) => "1.4".to_string(),
    };
    let task = opt(root, "task", "", parse_package)?;
    let metadata = match root.get("metadata") {
        None => serde_json::Map::new(),
        Some(v) => as_table(v, "metadata")?.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect(),
    };
    let mut verifier = match root.get("verifier") {
        None => parse_verifier(&Table::new(), "verifier")?,
        Some(v) => parse_verifier(as_table(v, "verifier")?, "verifier")?,
    };
    let agent = match root.get("agent") {
        None => parse_agent(&Table::new(), "agent")?,
        Some(v) => parse_agent(as_table(v, "agent")?, "agent")?,
    };
    let mut environment = match root.get("environment") {
        None => parse_environment(&Table::new(), "environment")?,
        Some(v) => parse_environment(as_table(v, "environment")?, "environment")?,
    };
    let solution = match root.get("solution") {
        None => SolutionConfig::default(),
        Some(v) => {
            let t = as_table(v, "solution")?;
            SolutionConfig { env: opt(t, "env", "solution", as_str_map)?.unwrap_or_default() }
        }
    };
    let source = opt(root, "source", "", as_str)?;
    let multi_step_reward_strategy = match opt(root, "multi_step_reward_strategy", "", as_str)? {
        None => None,
        Some(s) if s == "mean" || s == "final" => Some(s),
        Some(s) => return cfg_err("multi_step_reward_strategy", format!("{s:?} is not a strategy; use \"mean\" or \"final\"")),
    };
    let steps = match root.get("steps") {
        None => None,
        Some(Toml::Array(a)) if a.is_empty() => Some(Vec::new()),
        Some(Toml::Array(_)) => {
            return unsupported("steps", "multi-step Harbor tasks are not supported by agentmill; split the steps into tasks of their own");
        }
        Some(other) => return cfg_err("steps", format!("must be an array of tables, not {}", kind_of(other))),
    };
    let artifacts = match root.get("artifacts") {
        None => Vec::new(),
        Some(Toml::Array(a)) => a.iter().enumerate().map(|(i, x)| parse_artifact(x, &format!("artifacts[{i}]"))).collect::<Res<_>>()?,
        Some(other) => return cfg_err("artifacts", format!("must be an array, not {}", kind_of(other))),
    };
    // handle_deprecated_environment_allow_internet (then the legacy field is dropped).
    apply_allow_internet(&mut environment, root.get("environment"), "environment")?;
    if let Some(env) = verifier.environment.as_mut() {
        let raw = root.get("verifier").and_then(|v| v.get("environment"));
        apply_allow_internet(env, raw, "verifier.environment")?;
    }
    Ok(TaskConfig {
        schema_version,
        task,
        metadata,
        verifier,
        agent,
        environment,
        solution,
        source,
        multi_step_reward_strategy,
        steps,
        artifacts,
    })
}

/// An `artifacts` entry: a container path, or an `ArtifactConfig` table (validated as the
/// package validates it; agentmill reads but does not collect artifacts).
fn parse_artifact(v: &Toml, at: &str) -> Res<Json> {
    let t = match v {
        Toml::String(s) => {
            check_artifact_source(s, at)?;
            return Ok(Json::String(s.clone()));
        }
        Toml::Table(t) => t,
        other => return cfg_err(at, format!("must be a path or a table, not {}", kind_of(other))),
    };
    let Some(source) = opt(t, "source", at, as_str)? else { return cfg_err(&join(at, "source"), "is missing") };
    check_artifact_source(&source, &join(at, "source"))?;
    let destination = match opt(t, "destination", at, as_str)? {
        None => None,
        Some(d) if d.is_empty() => None,
        Some(d) => {
            let dat = join(at, "destination");
            let parts: Vec<&str> = d.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
            if d.contains('\\') {
                return cfg_err(&dat, format!("{d:?}: artifact destinations use forward slashes"));
            }
            if d.starts_with('/') {
                return cfg_err(&dat, format!("{d:?}: an artifact destination must be a relative path"));
            }
            if parts.is_empty() {
                return cfg_err(&dat, format!("{d:?}: an artifact destination must name a file or directory"));
            }
            if parts.contains(&"..") {
                return cfg_err(&dat, format!("{d:?}: an artifact destination must not contain '..'"));
            }
            if d.trim_end_matches('/') == "manifest.json" {
                return cfg_err(&dat, "'manifest.json' is reserved for the collection manifest; choose another destination");
            }
            Some(d)
        }
    };
    let exclude = opt(t, "exclude", at, as_str_list)?.unwrap_or_default();
    let service = match opt(t, "service", at, as_str)? {
        None => None,
        Some(s) => Some(service_name(&s, &join(at, "service"))?),
    };
    if let Some(svc) = &service
        && svc != "main"
    {
        let b = source.as_bytes();
        let drive = b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'/' || b[2] == b'\\');
        if !source.starts_with('/') && !drive {
            return cfg_err(&join(at, "source"), format!("{source:?} collected from service {svc:?} must be an absolute path"));
        }
    }
    Ok(serde_json::json!({"source": source, "destination": destination, "exclude": exclude, "service": service}))
}

fn check_artifact_source(s: &str, at: &str) -> Res<()> {
    if s.split('/').any(|p| p == "..") {
        return cfg_err(at, format!("{s:?}: an artifact source must not contain '..' components"));
    }
    Ok(())
}

fn apply_allow_internet(env: &mut EnvironmentConfig, raw: Option<&Toml>, at: &str) -> Res<()> {
    let Some(v) = raw.and_then(|r| r.get("allow_internet")) else { return Ok(()) };
    let allow = as_bool(v, &join(at, "allow_internet"))?;
    if env.network_mode_set || env.allowed_hosts.is_some() {
        return Ok(());
    }
    env.network_mode = if allow { NetworkMode::Public } else { NetworkMode::NoNetwork };
    Ok(())
}

fn parse_package(v: &Toml, at: &str) -> Res<PackageInfo> {
    let t = as_table(v, at)?;
    let Some(name) = opt(t, "name", at, as_str)? else {
        return cfg_err(&join(at, "name"), "is missing; a [task] table names the task as \"org/name\" (or drop [task] to use the directory's name)");
    };
    if !py_dollar_match(&ORG_NAME, &name) || name.contains("..") {
        return cfg_err(
            &join(at, "name"),
            format!("{name:?}: a package name must be in 'org/name' format with alphanumeric characters, hyphens, underscores, and dots; it cannot start with a dot or contain '..'"),
        );
    }
    let version = opt(t, "version", at, as_str)?;
    if version.as_deref() == Some("") {
        return cfg_err(&join(at, "version"), "must not be empty; remove it or write a version");
    }
    let authors = match t.get("authors") {
        None => Vec::new(),
        Some(Toml::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let at = format!("{at}.authors[{i}]");
                let a = as_table(x, &at)?;
                let Some(name) = opt(a, "name", &at, as_str)? else { return cfg_err(&join(&at, "name"), "is missing") };
                Ok(Author { name, email: opt(a, "email", &at, as_str)? })
            })
            .collect::<Res<_>>()?,
        Some(other) => return cfg_err(&join(at, "authors"), format!("must be an array of tables, not {}", kind_of(other))),
    };
    Ok(PackageInfo {
        name,
        version,
        description: opt(t, "description", at, as_str)?.unwrap_or_default(),
        authors,
        keywords: opt(t, "keywords", at, as_str_list)?.unwrap_or_default(),
    })
}

/// `_validate_allowed_host_names`: hostnames, wildcard hostnames, IP addresses and CIDR ranges,
/// lower-cased, without a final dot.
pub fn normalize_allowed_hosts(hosts: &[String]) -> Result<Vec<String>, String> {
    const INVALID: &str = "allowed_hosts entries must be hostnames, IP addresses, or IP CIDR ranges, not URLs, ports, or paths.";
    let mut out = Vec::new();
    for host in hosts {
        let host = py_strip(host).to_lowercase();
        let host = host.trim_end_matches('.');
        if host.is_empty() {
            return Err("allowed_hosts entries must be non-empty hostnames.".into());
        }
        if host.contains('/') {
            out.push(normalize_cidr(host).ok_or(INVALID)?);
            continue;
        }
        if host.contains(':') {
            if host.contains('%') {
                return Err(INVALID.into());
            }
            let a: std::net::Ipv6Addr = host.parse().map_err(|_| INVALID)?;
            out.push(py_ipv6(a));
            continue;
        }
        if host.contains('[') || host.contains(']') {
            return Err(INVALID.into());
        }
        let to_check = if let Some(rest) = host.strip_prefix("*.") {
            if rest.is_empty() {
                return Err("allowed_hosts wildcard entries must include a hostname suffix.".into());
            }
            if rest.parse::<std::net::IpAddr>().is_ok() {
                return Err("allowed_hosts wildcard entries must target hostnames, not IP address literals.".into());
            }
            rest
        } else if host.contains('*') {
            return Err("allowed_hosts wildcard entries must use a leading '*.' prefix.".into());
        } else {
            host
        };
        if !to_check.split('.').all(|l| py_dollar_match(&HOST_LABEL, l)) {
            return Err("allowed_hosts entries must be IP addresses, IP CIDR ranges, or valid hostnames or leading wildcard host patterns containing only letters, digits, hyphens, and dots.".into());
        }
        out.push(host.to_string());
    }
    Ok(out)
}

/// Python's `IPv6Address.compressed`: hextets in lower-case hex, the first longest run of two or
/// more zero hextets written `::`, never a dotted quad (Rust writes `::ffff:1.2.3.4`).
fn py_ipv6(a: std::net::Ipv6Addr) -> String {
    let h = a.segments();
    let (mut best, mut best_len, mut i) = (0, 0, 0);
    while i < 8 {
        if h[i] == 0 {
            let start = i;
            while i < 8 && h[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    let hex = |x: &[u16]| x.iter().map(|v| format!("{v:x}")).collect::<Vec<_>>().join(":");
    if best_len > 1 { format!("{}::{}", hex(&h[..best]), hex(&h[best + best_len..])) } else { hex(&h) }
}

/// `ip_network(host, strict=True).compressed`: `address/prefixlen`, or for IPv4 a netmask or
/// hostmask after the slash; the host bits must be zero.
fn normalize_cidr(s: &str) -> Option<String> {
    if s.contains('%') {
        return None;
    }
    let (addr, len) = s.split_once('/')?;
    let decimal = |len: &str| -> Option<u32> { (!len.is_empty() && len.bytes().all(|b| b.is_ascii_digit())).then(|| len.parse().ok()).flatten() };
    match addr.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(a) => {
            let len = match decimal(len) {
                Some(n) => n,
                None => {
                    let m = u32::from(len.parse::<std::net::Ipv4Addr>().ok()?);
                    let netmask = |m: u32| (m.leading_ones() + m.trailing_zeros() == 32 || m == 0).then(|| m.leading_ones());
                    netmask(m).or_else(|| netmask(!m))?
                }
            };
            if len > 32 {
                return None;
            }
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            (u32::from(a) & !mask == 0).then(|| format!("{a}/{len}"))
        }
        std::net::IpAddr::V6(a) => {
            let len = decimal(len)?;
            if len > 128 {
                return None;
            }
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            (u128::from(a) & !mask == 0).then(|| format!("{}/{len}", py_ipv6(a)))
        }
    }
}

fn allowed_hosts(t: &Table, at: &str) -> Res<Option<Vec<String>>> {
    match opt(t, "allowed_hosts", at, as_str_list)? {
        None => Ok(None),
        Some(h) => normalize_allowed_hosts(&h).map(Some).or_else(|e| cfg_err(&join(at, "allowed_hosts"), e)),
    }
}

fn phase_network(t: &Table, at: &str) -> Res<(Option<NetworkMode>, Option<Vec<String>>)> {
    let mode = opt(t, "network_mode", at, network_mode)?;
    let hosts = allowed_hosts(t, at)?;
    check_policy(mode, hosts.as_deref(), at)?;
    Ok((mode, hosts))
}

fn check_policy(mode: Option<NetworkMode>, hosts: Option<&[String]>, at: &str) -> Res<()> {
    match mode {
        None if hosts.is_some() => cfg_err(&join(at, "allowed_hosts"), "allowed_hosts is only valid when network_mode='allowlist'."),
        Some(m) if m != NetworkMode::Allowlist && hosts.is_some_and(|h| !h.is_empty()) => {
            cfg_err(&join(at, "allowed_hosts"), "allowed_hosts is only valid when network_mode='allowlist'.")
        }
        _ => Ok(()),
    }
}

fn parse_agent(t: &Table, at: &str) -> Res<AgentConfig> {
    let (network_mode, allowed_hosts) = phase_network(t, at)?;
    Ok(AgentConfig { network_mode, allowed_hosts, timeout_sec: opt(t, "timeout_sec", at, as_float)?, user: opt(t, "user", at, as_user)? })
}

fn service_name(s: &str, at: &str) -> Res<String> {
    let s = py_strip(s);
    if !py_dollar_match(&SERVICE_NAME, s) {
        return cfg_err(at, format!("Invalid Docker Compose service name: {s:?}; start with a letter or digit and use only letters, digits, hyphens, underscores and dots"));
    }
    Ok(s.to_string())
}

fn parse_verifier(t: &Table, at: &str) -> Res<VerifierConfig> {
    let (network_mode, allowed_hosts) = phase_network(t, at)?;
    let environment_mode = match opt(t, "environment_mode", at, as_str)? {
        None => None,
        Some(s) if s == "shared" => Some(VerifierEnvironmentMode::Shared),
        Some(s) if s == "separate" => Some(VerifierEnvironmentMode::Separate),
        Some(s) => return cfg_err(&join(at, "environment_mode"), format!("{s:?} is not a mode; use \"shared\" or \"separate\"")),
    };
    let environment = match t.get("environment") {
        None => None,
        Some(v) => Some(parse_environment(as_table(v, &join(at, "environment"))?, &join(at, "environment"))?),
    };
    let collect = match t.get("collect") {
        None => Vec::new(),
        Some(Toml::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let at = format!("{at}.collect[{i}]");
                let c = as_table(x, &at)?;
                let Some(command) = opt(c, "command", &at, as_str)? else { return cfg_err(&join(&at, "command"), "is missing") };
                let service = match opt(c, "service", &at, as_str)? {
                    None => "main".to_string(),
                    Some(s) => service_name(&s, &join(&at, "service"))?,
                };
                Ok(CollectHook {
                    command,
                    service,
                    timeout_sec: opt(c, "timeout_sec", &at, as_float)?.unwrap_or(60.0),
                    user: opt(c, "user", &at, as_user)?,
                })
            })
            .collect::<Res<_>>()?,
        Some(other) => return cfg_err(&join(at, "collect"), format!("must be an array of tables, not {}", kind_of(other))),
    };
    if environment_mode == Some(VerifierEnvironmentMode::Shared) && environment.is_some() {
        return cfg_err(
            &join(at, "environment_mode"),
            "[verifier].environment_mode='shared' is incompatible with [verifier.environment]; either omit the environment or set environment_mode='separate'.",
        );
    }
    Ok(VerifierConfig {
        network_mode,
        allowed_hosts,
        timeout_sec: opt(t, "timeout_sec", at, as_float)?.unwrap_or(600.0),
        env: opt(t, "env", at, as_str_map)?.unwrap_or_default(),
        user: opt(t, "user", at, as_user)?,
        environment_mode,
        environment,
        collect,
    })
}

/// `EnvironmentConfig._parse_size_to_mb`.
fn parse_size_to_mb(s: &str) -> Option<i64> {
    let s = py_strip(s).to_uppercase();
    let (num, scale): (&str, fn(f64) -> f64) = if let Some(n) = s.strip_suffix('G') {
        (n, |f| f * 1024.0)
    } else if let Some(n) = s.strip_suffix('M') {
        (n, |f| f)
    } else if let Some(n) = s.strip_suffix('K') {
        (n, |f| f / 1024.0)
    } else {
        return None;
    };
    let v = scale(py_float(num)?);
    v.is_finite().then(|| v.trunc() as i64)
}

fn migrate_size(t: &mut Table, legacy: &str, key: &str, at: &str) -> Res<()> {
    let Some(v) = t.remove(legacy) else { return Ok(()) };
    // A legacy value that is not a string is dropped, as the package drops it.
    let Toml::String(s) = v else { return Ok(()) };
    let Some(mb) = parse_size_to_mb(&s) else {
        return cfg_err(&join(at, legacy), format!("Invalid size format: {s:?}. Expected format like '1G', '512M', etc.; or write {key} in MB"));
    };
    match t.get(key) {
        None => {
            t.insert(key.to_string(), Toml::Integer(mb));
        }
        Some(existing) => {
            // Python's `!=` between the written value and the parsed size.
            let same = match existing {
                Toml::Integer(i) => *i == mb,
                Toml::Float(f) => *f == mb as f64,
                Toml::Boolean(b) => i64::from(*b) == mb,
                _ => false,
            };
            if !same {
                return cfg_err(&join(at, legacy), format!("Conflicting '{legacy}' and '{key}' values: {legacy}={s:?} ({mb} MB) != {key}; write only {key}"));
            }
        }
    }
    Ok(())
}

fn parse_environment(t: &Table, at: &str) -> Res<EnvironmentConfig> {
    let mut t = t.clone();
    migrate_size(&mut t, "memory", "memory_mb", at)?;
    migrate_size(&mut t, "storage", "storage_mb", at)?;
    let t = &t;
    let network_mode_set = t.contains_key("network_mode");
    let mode = opt(t, "network_mode", at, network_mode)?.unwrap_or_default();
    let allowed_hosts = allowed_hosts(t, at)?;
    check_policy(Some(mode), allowed_hosts.as_deref(), at)?;
    let os = match opt(t, "os", at, as_str)? {
        None => TaskOs::Linux,
        Some(s) => match s.to_lowercase().as_str() {
            "linux" => TaskOs::Linux,
            "windows" => TaskOs::Windows,
            other => return cfg_err(&join(at, "os"), format!("{other:?} is not an OS; use \"linux\" or \"windows\"")),
        },
    };
    let tpu = match t.get("tpu") {
        None => None,
        Some(v) => {
            let tat = join(at, "tpu");
            let tt = as_table(v, &tat)?;
            let Some(kind) = opt(tt, "type", &tat, as_str)? else { return cfg_err(&join(&tat, "type"), "is missing") };
            if kind.is_empty() {
                return cfg_err(&join(&tat, "type"), "must not be empty");
            }
            let Some(topology) = opt(tt, "topology", &tat, as_str)? else { return cfg_err(&join(&tat, "topology"), "is missing") };
            let clean = py_strip(&topology);
            if !TOPOLOGY.is_match(clean) {
                return cfg_err(&join(&tat, "topology"), format!("Invalid TPU topology {topology:?}: expected dimensions separated by 'x', each a positive integer (e.g. '2x4')"));
            }
            Some(TpuSpec { kind, topology: clean.to_string() })
        }
    };
    let mcp_servers = match t.get("mcp_servers") {
        None => Vec::new(),
        Some(Toml::Array(a)) => a.iter().enumerate().map(|(i, x)| parse_mcp(x, &format!("{at}.mcp_servers[{i}]"))).collect::<Res<_>>()?,
        Some(other) => return cfg_err(&join(at, "mcp_servers"), format!("must be an array of tables, not {}", kind_of(other))),
    };
    let healthcheck = match t.get("healthcheck") {
        None => None,
        Some(v) => {
            let hat = join(at, "healthcheck");
            let h = as_table(v, &hat)?;
            let Some(command) = opt(h, "command", &hat, as_str)? else { return cfg_err(&join(&hat, "command"), "is missing") };
            Some(Healthcheck {
                command,
                interval_sec: opt(h, "interval_sec", &hat, as_float)?.unwrap_or(5.0),
                timeout_sec: opt(h, "timeout_sec", &hat, as_float)?.unwrap_or(30.0),
                start_period_sec: opt(h, "start_period_sec", &hat, as_float)?.unwrap_or(0.0),
                start_interval_sec: opt(h, "start_interval_sec", &hat, as_float)?.unwrap_or(5.0),
                retries: opt(h, "retries", &hat, as_int)?.unwrap_or(3),
            })
        }
    };
    if let Some(v) = t.get("allow_internet") {
        as_bool(v, &join(at, "allow_internet"))?;
    }
    Ok(EnvironmentConfig {
        network_mode: mode,
        allowed_hosts,
        build_timeout_sec: opt(t, "build_timeout_sec", at, as_float)?.unwrap_or(600.0),
        docker_image: opt(t, "docker_image", at, as_str)?,
        os,
        cpus: opt(t, "cpus", at, as_cpus)?,
        memory_mb: opt(t, "memory_mb", at, as_int)?,
        storage_mb: opt(t, "storage_mb", at, as_int)?,
        gpus: opt(t, "gpus", at, as_int)?,
        gpu_types: opt(t, "gpu_types", at, as_str_list)?,
        tpu,
        mcp_servers,
        env: opt(t, "env", at, as_str_map)?.unwrap_or_default(),
        skills_dir: opt(t, "skills_dir", at, as_str)?,
        healthcheck,
        workdir: opt(t, "workdir", at, as_str)?,
        network_mode_set,
        os_set: t.contains_key("os"),
    })
}

fn parse_mcp(v: &Toml, at: &str) -> Res<McpServer> {
    let t = as_table(v, at)?;
    let Some(name) = opt(t, "name", at, as_str)? else { return cfg_err(&join(at, "name"), "is missing") };
    let transport = match t.get("transport") {
        None => "sse".to_string(),
        Some(Toml::String(s)) if s == "http" => "streamable-http".to_string(),
        Some(v) => as_str(v, &join(at, "transport"))?,
    };
    if !matches!(transport.as_str(), "stdio" | "sse" | "streamable-http") {
        return cfg_err(&join(at, "transport"), format!("{transport:?} is not a transport; use \"stdio\", \"sse\" or \"streamable-http\""));
    }
    let headers = opt(t, "headers", at, as_str_map)?.unwrap_or_default();
    for (name, value) in &headers {
        let hat = join(&join(at, "headers"), name);
        if let Err(e) = check_header(name, value) {
            return cfg_err(&hat, e);
        }
    }
    let url = opt(t, "url", at, as_str)?;
    let command = opt(t, "command", at, as_str)?;
    let args = opt(t, "args", at, as_str_list)?.unwrap_or_default();
    if transport != "stdio" && url.as_deref().unwrap_or("").is_empty() {
        return cfg_err(&join(at, "url"), format!("'url' is required for transport '{transport}'"));
    }
    if transport == "stdio" && command.as_deref().unwrap_or("").is_empty() {
        return cfg_err(&join(at, "command"), "'command' is required for transport 'stdio'");
    }
    if transport == "stdio" && !headers.is_empty() {
        return cfg_err(&join(at, "headers"), "'headers' is only supported for HTTP MCP transports");
    }
    Ok(McpServer { name, transport, url, command, args, headers })
}

// ---------------------------------------------------------------------------------------------
// Environment templates (`harbor.utils.env`).

static TEMPLATE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\$\{([^}:]+)(?::-(.*))?\}$").expect("regex"));
static EMBEDDED_TEMPLATE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}").expect("regex"));
static HEADER_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$").expect("regex"));
static TEMPLATED_CREDENTIAL: LazyLock<Regex> = LazyLock::new(|| {
    let t = r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-)?\}";
    Regex::new(&format!(r"^\s*(?:[A-Za-z]+\s+)?{t}(?:[\s:-]*{t})*\s*$")).expect("regex")
});

/// `is_sensitive_env_key`: `KEY|SECRET|TOKEN(?!S)|PASSWORD|CREDENTIAL|AUTH`, any case.
fn is_sensitive_key(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["KEY", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH"].iter().any(|w| k.contains(w)) || k.match_indices("TOKEN").any(|(i, _)| !k[i + 5..].starts_with('S'))
}

/// `MCPServerConfig.validate_headers` for one header.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    if !HEADER_NAME.is_match(name) {
        return Err(format!("Invalid MCP HTTP header name: {name:?}"));
    }
    if value.contains('\r') || value.contains('\n') {
        return Err(format!("MCP HTTP header '{name}' must not contain newlines"));
    }
    // resolve_embedded_env_vars(value, lambda _: ""): only well-formed templates.
    if EMBEDDED_TEMPLATE.replace_all(value, " ").contains("${") || EMBEDDED_TEMPLATE.captures_iter(value).any(|c| c.get(2).is_some_and(|d| d.as_str().contains("${"))) {
        return Err(format!("MCP HTTP header '{name}': Invalid environment variable template"));
    }
    // has_literal_header_credential
    let sensitive = is_sensitive_key(name) || matches!(name.to_lowercase().as_str(), "cookie" | "set-cookie");
    let literal_default = EMBEDDED_TEMPLATE.captures_iter(value).any(|c| c.get(2).is_some_and(|d| !d.as_str().is_empty()) && (sensitive || is_sensitive_key(&c[1])));
    if literal_default || (sensitive && !py_strip(value).is_empty() && !TEMPLATED_CREDENTIAL.is_match(value)) {
        return Err(format!("MCP HTTP header '{name}' must reference credentials as ${{VAR}} without a default, such as 'Bearer ${{TOKEN}}'"));
    }
    Ok(())
}

/// `harbor.utils.env.resolve_env_vars`: a value that is wholly `${VAR}` or `${VAR:-default}`
/// takes `lookup(VAR)`, else the default, else it is an error; other values are kept as they are.
/// The run piece resolves `[environment].env` and `[verifier].env` with it, from the worker's
/// environment.
pub fn resolve_env(env: &BTreeMap<String, String>, lookup: impl Fn(&str) -> Option<String>) -> Result<BTreeMap<String, String>, String> {
    env.iter()
        .map(|(k, v)| {
            let Some(c) = TEMPLATE.captures(v) else { return Ok((k.clone(), v.clone())) };
            let var = &c[1];
            match (lookup(var), c.get(2)) {
                (Some(x), _) => Ok((k.clone(), x)),
                (None, Some(d)) => Ok((k.clone(), d.as_str().to_string())),
                (None, None) => Err(format!("environment variable '{var}' (for {k}) is not set on the worker, and the task gives no default (${{{var}:-default}})")),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Python's text rules.

/// Python's `str.isspace()`: Rust's White_Space plus the four information separators.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// The zero of every run of Unicode decimal digits (general category Nd) in Python 3.12's
/// Unicode 15.0, each followed by 1..9: `float()` reads them as ASCII digits.
const DECIMAL_ZEROS: [u32; 68] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810,
    0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10, 0x104a0, 0x10d30,
    0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x11f50,
    0x16a60, 0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e4f0, 0x1e950, 0x1fbf0,
];

/// Python's `float(str)`: surrounding whitespace (Unicode White_Space, which unlike
/// `str.strip()` leaves `\x1c`..`\x1f`), any decimal digits (`"١٢"` is 12), `_` between digits,
/// `inf`/`infinity`/`nan` in any case.
pub fn py_float(s: &str) -> Option<f64> {
    let s: String = s
        .trim_matches(char::is_whitespace)
        .chars()
        .map(|c| match DECIMAL_ZEROS.iter().find(|&&z| (z..z + 10).contains(&(c as u32))) {
            Some(&z) if !c.is_ascii() => char::from(b'0' + (c as u32 - z) as u8),
            _ => c,
        })
        .collect();
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' && !(i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            return None;
        }
    }
    let s = s.replace('_', "");
    if s.is_empty() || s.chars().any(|c| !c.is_ascii() || c.is_ascii_whitespace()) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Python's `Path.read_text()`: UTF-8, universal newlines (`\r\n` and `\r` read as `\n`).
fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    let s = String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not UTF-8 ({e})")))?;
    Ok(if s.contains('\r') { s.replace("\r\n", "\n").replace('\r', "\n") } else { s })
}

/// `strip_canary`: drops the leading lines that are canary comments (`<!-- ...canary... -->` or
/// `# ...canary...`, any case, judged on the stripped line) and the blank lines after them.
pub fn strip_canary(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut idx = 0;
    while idx < lines.len() && is_canary_line(py_strip(lines[idx])) {
        idx += 1;
    }
    while idx < lines.len() && py_strip(lines[idx]).is_empty() {
        idx += 1;
    }
    lines[idx..].join("\n")
}

/// `^(<!--.*canary.*-->|#.*canary.*)$` with IGNORECASE (`.` matches all but `\n`, `$` also
/// before a final `\n`; the line holds no `\n`).
fn is_canary_line(s: &str) -> bool {
    let has = |part: &str| part.to_ascii_lowercase().contains("canary");
    if let Some(rest) = s.strip_prefix("<!--")
        && rest.len() >= 3
        && rest.ends_with("-->")
        && has(&rest[..rest.len() - 3])
    {
        return true;
    }
    s.strip_prefix('#').is_some_and(has)
}

// ---------------------------------------------------------------------------------------------
// The task directory.

/// The files a task's run uses, relative to the task directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFiles {
    /// `environment/` exists as a directory.
    pub environment_dir: bool,
    /// `environment/Dockerfile`, when it is a file.
    pub dockerfile: Option<String>,
    /// `environment/docker-compose.yaml`, when it is a file.
    pub docker_compose: Option<String>,
    /// The verifier's script for the task's OS (`tests/test.sh`); None when the verifier
    /// environment bundles its tests.
    pub test_script: Option<String>,
    /// The oracle's script for the task's OS (`solution/solve.sh`), when there is one.
    pub solve_script: Option<String>,
    /// The effective verifier mode (`shared` unless the task asks for a separate container).
    pub verifier_mode: VerifierEnvironmentMode,
}

/// A task directory as the package reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct HarborTask {
    /// The resolved task directory.
    pub dir: PathBuf,
    /// `[task].name`, else the directory's name.
    pub name: String,
    /// `instruction.md`, leading canary lines stripped.
    pub instruction: String,
    /// `task.toml`.
    pub config: TaskConfig,
    /// The files the run uses.
    pub files: TaskFiles,
}

/// Python's `Path.resolve()` (non-strict): links followed as far as they exist.
fn resolve(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    // A dangling link or a missing tail: resolve the parent, then follow the link by hand.
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else { return lexical(p) };
    let base = resolve(if parent.as_os_str().is_empty() { Path::new(".") } else { parent });
    let joined = base.join(name);
    match std::fs::read_link(&joined) {
        Ok(target) => lexical(&base.join(target)),
        Err(_) => joined,
    }
}

fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned()
}

/// `validate_input_tree`: every entry under `path`, links followed, must resolve inside `root`,
/// and directory links must not form a cycle.
fn validate_input_tree(path: &Path, root: &Path, filter: Option<&mut ignore::FileFilter>) -> Res<()> {
    fn visit(c: &Path, root: &Path, mut filter: Option<&mut ignore::FileFilter>, ancestors: &mut Vec<PathBuf>) -> Res<()> {
        if let Some(f) = filter.as_deref_mut()
            && f.is_excluded(c)?
        {
            return Ok(());
        }
        let resolved = resolve(c);
        if !resolved.starts_with(root) {
            return Err((
                HarborErrorKind::Escape,
                rel(root, c),
                format!("resolves to {} outside the task; input paths must stay within the task (copy the file in instead of linking to it)", resolved.display()),
            ));
        }
        if !c.is_dir() {
            return Ok(());
        }
        if ancestors.contains(&resolved) {
            return Err((HarborErrorKind::Escape, rel(root, c), "input directory links must not form cycles; remove the link".into()));
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(c)
            .map_err(|e| (HarborErrorKind::Io, rel(root, c), format!("cannot be listed: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        ancestors.push(resolved);
        for e in entries {
            visit(&e, root, filter.as_deref_mut(), ancestors)?;
        }
        ancestors.pop();
        Ok(())
    }
    visit(path, root, filter, &mut Vec::new())
}

/// The script `base.sh` (Linux) or `base.bat` (Windows) in `dir`, when it exists.
fn discover(dir: &Path, base: &str, os: TaskOs) -> Option<PathBuf> {
    let ext = match os {
        TaskOs::Linux => "sh",
        TaskOs::Windows => "bat",
    };
    let p = dir.join(format!("{base}.{ext}"));
    p.exists().then_some(p)
}

/// Reads a Harbor task directory as `harbor.models.task.task.Task(task_dir)` does: accepted
/// exactly when the package accepts it (save the features [`HarborErrorKind::Unsupported`]
/// names), with the package's name, instruction and config.
pub fn read_task(task_dir: &Path) -> Result<HarborTask, HarborError> {
    let shown = task_dir.display().to_string();
    read_task_inner(task_dir).map_err(|(kind, at, message)| HarborError { kind, task_dir: shown, at, message })
}

fn read_task_inner(task_dir: &Path) -> Res<HarborTask> {
    let dir = resolve(task_dir);
    let config_path = dir.join("task.toml");
    let text = read_text(&config_path).map_err(|e| {
        let fix = if e.kind() == std::io::ErrorKind::NotFound { "; a Harbor task directory holds task.toml, instruction.md, environment/ and tests/test.sh" } else { "" };
        (HarborErrorKind::Io, "task.toml".to_string(), format!("cannot be read: {e}{fix}"))
    })?;
    let config = TaskConfig::from_toml(&text)?;
    // _validate_input_paths
    let mut filter = ignore::FileFilter::new(&dir);
    validate_input_tree(&dir.join("tests"), &dir, Some(&mut filter))?;
    validate_input_tree(&dir.join("solution"), &dir, Some(&mut filter))?;
    let name = match &config.task {
        Some(p) => p.name.clone(),
        None => dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    // _validate_tests
    let instruction_path = dir.join("instruction.md");
    if !instruction_path.exists() {
        return Err((HarborErrorKind::Missing, "instruction.md".into(), "is missing; write the task's instruction (the agent's problem statement) there".into()));
    }
    let (verifier_mode, bundled, verifier_os) = verifier_definition(&config, &dir)?;
    let test_script = if bundled {
        None
    } else {
        match discover(&dir.join("tests"), "test", verifier_os) {
            Some(p) => {
                filter.require_included(&p)?;
                Some(rel(&dir, &p))
            }
            None => {
                let expected = if verifier_os == TaskOs::Windows { "tests/test.bat" } else { "tests/test.sh" };
                let os = if verifier_os == TaskOs::Windows { "windows" } else { "linux" };
                return Err((
                    HarborErrorKind::Missing,
                    expected.into(),
                    format!("is missing; the task declares [environment].os = {os:?}, so its verifier is {expected}, which writes /logs/verifier/reward.txt or reward.json"),
                ));
            }
        }
    };
    let raw = read_text(&instruction_path).map_err(|e| (HarborErrorKind::Io, "instruction.md".to_string(), format!("cannot be read: {e}")))?;
    let instruction = strip_canary(&raw);
    let env_dir = dir.join("environment");
    let file = |name: &str| {
        let p = env_dir.join(name);
        p.is_file().then(|| rel(&dir, &p))
    };
    let files = TaskFiles {
        environment_dir: env_dir.is_dir(),
        dockerfile: file("Dockerfile"),
        docker_compose: file("docker-compose.yaml"),
        test_script,
        solve_script: discover(&dir.join("solution"), "solve", config.environment.os).map(|p| rel(&dir, &p)),
        verifier_mode,
    };
    Ok(HarborTask { dir, name, instruction, config, files })
}

/// `Task.is_valid_dir`: what `harbor run --path` takes for a task: `task.toml` validates, the task
/// names an image or has an `environment/` folder, and [`read_task`]'s checks pass.
pub fn is_valid_dir(dir: &Path) -> bool {
    validate_dir(dir).is_ok()
}

fn validate_dir(dir: &Path) -> Result<HarborTask, HarborError> {
    let task = read_task(dir)?;
    if task.config.environment.docker_image.as_deref().is_none_or(str::is_empty) && !task.files.environment_dir {
        return Err(HarborError {
            kind: HarborErrorKind::Missing,
            task_dir: dir.display().to_string(),
            at: "environment/".into(),
            message: "is missing and [environment].docker_image names no image; write environment/Dockerfile or name an image".into(),
        });
    }
    Ok(task)
}

/// The task directories a path names, as `harbor run --path` picks them: the path itself when it
/// is a valid task, else its valid children in name order. Children holding a `task.toml` that
/// are not valid come back in the second list with the reason (Harbor skips them silently).
pub fn task_dirs(path: &Path) -> Result<(Vec<PathBuf>, Vec<HarborError>), HarborError> {
    if is_valid_dir(path) {
        return Ok((vec![path.to_path_buf()], Vec::new()));
    }
    let entries = std::fs::read_dir(path).map_err(|e| HarborError {
        kind: HarborErrorKind::Io,
        task_dir: path.display().to_string(),
        at: ".".into(),
        message: format!("is neither a Harbor task directory nor a folder of them ({e})"),
    })?;
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    let (mut ok, mut skipped) = (Vec::new(), Vec::new());
    for c in children {
        match validate_dir(&c) {
            Ok(_) => ok.push(c),
            Err(e) if c.join("task.toml").exists() => skipped.push(e),
            Err(_) => {}
        }
    }
    Ok((ok, skipped))
}

/// `resolve_verifier_environment_definition` for a single-step task: the mode, whether the
/// verifier's environment bundles its tests (no `tests/test.sh` needed), and the verifier's OS.
fn verifier_definition(config: &TaskConfig, dir: &Path) -> Res<(VerifierEnvironmentMode, bool, TaskOs)> {
    let v = &config.verifier;
    let mode = v.environment_mode.unwrap_or(if v.environment.is_some() { VerifierEnvironmentMode::Separate } else { VerifierEnvironmentMode::Shared });
    if mode == VerifierEnvironmentMode::Shared {
        return Ok((mode, false, config.environment.os));
    }
    let tests = dir.join("tests");
    validate_input_tree(&tests, dir, Some(&mut ignore::FileFilter::new(dir)))?;
    let effective = v.environment.as_ref().unwrap_or(&config.environment);
    if v.environment.as_ref().is_some_and(|e| e.docker_image.as_deref().is_some_and(|i| !i.is_empty())) {
        return Ok((mode, true, effective.os));
    }
    if ["Dockerfile", "docker-compose.yaml"].iter().any(|n| tests.join(n).is_file()) {
        validate_input_tree(&tests, dir, None)?;
        return Ok((mode, true, effective.os));
    }
    validate_input_tree(&dir.join("environment"), dir, None)?;
    let os = match &v.environment {
        Some(e) if e.os_set => e.os,
        _ => config.environment.os,
    };
    Ok((mode, false, os))
}

// ---------------------------------------------------------------------------------------------
// Rewards.

/// Where the verifier writes its rewards, in the sandbox.
pub const REWARD_JSON: &str = "/logs/verifier/reward.json";
/// The one-number alternative.
pub const REWARD_TXT: &str = "/logs/verifier/reward.txt";

/// Why a verifier's rewards could not be read (the package's exception, by kind).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewardError {
    /// Neither file exists (`RewardFileNotFoundError`).
    #[error("the verifier wrote no reward: neither {REWARD_JSON} nor {REWARD_TXT} exists; tests/test.sh must write one")]
    NotFound,
    /// The file read is empty (`RewardFileEmptyError`).
    #[error("reward file {0} is empty; tests/test.sh must write a number (reward.txt) or an object of numbers (reward.json)")]
    Empty(&'static str),
    /// Unparsable, or a value not a finite number (`VerifierOutputParseError`).
    #[error("reward file {0}: {1}")]
    Parse(&'static str, String),
    /// Valid numbers but not an object of them (pydantic's `ValidationError` on `VerifierResult`).
    #[error("reward file {0}: {1}")]
    Invalid(&'static str, String),
}

impl RewardError {
    /// The package's exception class name.
    pub fn class(&self) -> &'static str {
        match self {
            RewardError::NotFound => "RewardFileNotFoundError",
            RewardError::Empty(_) => "RewardFileEmptyError",
            RewardError::Parse(..) => "VerifierOutputParseError",
            RewardError::Invalid(..) => "ValidationError",
        }
    }
}

/// Reads a verifier's rewards as Harbor does: `reward.json` when it exists (an object of finite
/// numbers; booleans count as 0/1), else `reward.txt` (one float, as Python's `float()` reads
/// it, giving `{"reward": v}`). `None` = the file does not exist. The exit code plays no part.
pub fn read_rewards(reward_json: Option<&[u8]>, reward_txt: Option<&[u8]>) -> Result<BTreeMap<String, f64>, RewardError> {
    if let Some(bytes) = reward_json {
        const F: &str = REWARD_JSON;
        if bytes.is_empty() {
            return Err(RewardError::Empty(F));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| RewardError::Parse(F, "is not UTF-8".into()))?;
        let value: Json = serde_json::from_str(text).map_err(|e| RewardError::Parse(F, format!("is not JSON (or holds a number out of range, NaN or Infinity): {e}")))?;
        let number = |v: &Json| -> Result<f64, RewardError> {
            match v {
                Json::Number(n) => n.as_f64().filter(|f| f.is_finite()).ok_or_else(|| RewardError::Parse(F, format!("non-finite reward {n}"))),
                Json::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
                other => Err(RewardError::Parse(F, format!("non-numeric reward {other}; every value must be a number"))),
            }
        };
        return match &value {
            Json::Object(m) => m.iter().map(|(k, v)| Ok((k.clone(), number(v)?))).collect(),
            other => {
                number(other)?;
                Err(RewardError::Invalid(F, format!("is {other}, not an object; write {{\"reward\": {other}}}")))
            }
        };
    }
    if let Some(bytes) = reward_txt {
        const F: &str = REWARD_TXT;
        if bytes.is_empty() {
            return Err(RewardError::Empty(F));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| RewardError::Parse(F, "is not UTF-8".into()))?;
        let v = py_float(text).ok_or_else(|| RewardError::Parse(F, format!("{:?} is not a number", text.chars().take(80).collect::<String>())))?;
        if !v.is_finite() {
            return Err(RewardError::Parse(F, format!("non-finite reward {v}")));
        }
        return Ok(BTreeMap::from([("reward".to_string(), v)]));
    }
    Err(RewardError::NotFound)
}

/// When a Harbor task counts as resolved: every named reward reaches its threshold (a missing
/// one counts as −∞), as the package's `min_reward` gates a step. The default is
/// `{"reward": 1.0}`; a task sets its own with `[metadata] min_reward = 0.5` (gates `reward`) or
/// `[metadata.min_reward] tests = 1.0, style = 0.5`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardRule {
    /// Reward name → the least value that resolves the task.
    pub min_reward: BTreeMap<String, f64>,
}

impl Default for RewardRule {
    fn default() -> Self {
        RewardRule { min_reward: BTreeMap::from([("reward".to_string(), 1.0)]) }
    }
}

/// A Harbor task's grading: the rewards as read, the one number a record's `reward` keeps, and
/// whether the task is resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarborGrade {
    /// Every reward the verifier wrote.
    pub rewards: BTreeMap<String, f64>,
    /// The record's scalar: the only reward when there is one (as Harbor's metrics read a
    /// one-key reward), else `reward` when written, else 1.0 when resolved and 0.0 when not.
    pub reward: f64,
    /// Every gated reward reached its least value (resolution FULL; otherwise NO).
    pub resolved: bool,
}

impl RewardRule {
    /// Grades what the verifier wrote ([`read_rewards`]'s result).
    pub fn grade(&self, rewards: BTreeMap<String, f64>) -> HarborGrade {
        let resolved = self.resolved(&rewards);
        let reward = match (rewards.len(), rewards.get("reward")) {
            (1, _) => rewards.values().next().copied().unwrap_or(0.0),
            (_, Some(r)) => *r,
            _ => f64::from(u8::from(resolved)),
        };
        HarborGrade { rewards, reward, resolved }
    }

    /// Whether `rewards` resolve the task.
    pub fn resolved(&self, rewards: &BTreeMap<String, f64>) -> bool {
        self.min_reward.iter().all(|(k, min)| rewards.get(k).is_some_and(|v| v >= min))
    }

    /// The rule a task's `[metadata].min_reward` sets (the default when absent).
    pub fn from_metadata(metadata: &serde_json::Map<String, Json>) -> Result<RewardRule, String> {
        let finite = |v: &Json| v.as_f64().filter(|f| f.is_finite());
        match metadata.get("min_reward") {
            None => Ok(RewardRule::default()),
            Some(v @ Json::Number(_)) => {
                let f = finite(v).ok_or("[metadata].min_reward must be a finite number")?;
                Ok(RewardRule { min_reward: BTreeMap::from([("reward".to_string(), f)]) })
            }
            Some(Json::Object(m)) if !m.is_empty() => m
                .iter()
                .map(|(k, v)| finite(v).map(|f| (k.clone(), f)).ok_or_else(|| format!("[metadata].min_reward.{k} must be a finite number")))
                .collect::<Result<_, _>>()
                .map(|min_reward| RewardRule { min_reward }),
            Some(_) => Err("[metadata].min_reward must be a number (gating the reward named \"reward\") or a table of reward name = least value".into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The task as an agentmill row (family `harbor`).

/// What a Harbor task carries beyond agentmill's common fields: how its environment is made, who
/// runs what, its network request and its grading rule. The instruction is the row's
/// `problem_statement`; cpus, memory, storage and the agent and verifier timeouts are its
/// `limits`; `allow_network` is set when the task asks for any network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HarborSpec {
    /// The task's name (`[task].name`, else its directory's name).
    pub name: String,
    /// A prebuilt image (`[environment].docker_image`); None: the image is built from
    /// `dockerfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image: Option<String>,
    /// The Dockerfile, relative to the task directory (`environment/Dockerfile`); its folder is
    /// the build context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Image build timeout, seconds (`[environment].build_timeout_sec`, 600).
    pub build_timeout_s: f64,
    /// The verifier, relative to the task directory (`tests/test.sh`); `tests/` reaches the
    /// sandbox only after the agent has finished.
    pub test_script: String,
    /// The oracle (`solution/solve.sh`), the replay policy of a Harbor task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solve_script: Option<String>,
    /// The working directory (`[environment].workdir`); None: the image's WORKDIR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// `[environment].env` (values may be `${VAR}` / `${VAR:-default}` templates, resolved from
    /// the worker's environment at run time, as Harbor resolves them from the host's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `[verifier].env`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verifier_env: BTreeMap<String, String>,
    /// `[solution].env` (the oracle's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub solution_env: BTreeMap<String, String>,
    /// `[agent].user` (a name, or a UID in decimal); None: the image's USER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_user: Option<String>,
    /// `[verifier].user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier_user: Option<String>,
    /// `public`, `no-network` or `allowlist` (`[environment].network_mode`, Harbor's default
    /// `public`): a request the worker may refuse.
    pub network_mode: String,
    /// The hosts an `allowlist` task asks for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// GPUs asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// Reward name → the least value that resolves the task (`[metadata].min_reward`; default
    /// `{"reward": 1.0}`). Rewards come from `/logs/verifier/reward.json` or `reward.txt`
    /// ([`read_rewards`]); the verifier's exit code is ignored.
    pub min_reward: BTreeMap<String, f64>,
    /// The task directory itself, packed as a tar ([`pack_task`]): `content:<sha256>` (sent with
    /// the task by `agentmill submit --harbor`) or a path on the worker's disk under its
    /// `inputs.host_roots` (`agentmill-worker run --harbor`). The worker builds the environment
    /// from its `environment/`, runs the verifier from its `tests/` and the oracle from its
    /// `solution/`; None: the row came without its directory and cannot run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl HarborSpec {
    /// The grading rule.
    pub fn reward_rule(&self) -> RewardRule {
        RewardRule { min_reward: self.min_reward.clone() }
    }
}

fn user_string(u: &Option<User>) -> Option<String> {
    u.as_ref().map(|u| match u {
        User::Id(i) => i.to_string(),
        User::Name(n) => n.clone(),
    })
}

/// A finite number above zero (NaN is not).
fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

fn seconds(at: &str, v: f64) -> Res<u32> {
    if !positive(v) || v.ceil() > u32::MAX as f64 {
        return unsupported(at, format!("{v} seconds is not a timeout agentmill can keep; write a positive number of seconds"));
    }
    Ok(v.ceil() as u32)
}

/// The agentmill row a Harbor task becomes (family `harbor`): `instance_id` = the task's name,
/// `problem_statement` = the instruction, the image or Dockerfile, the limits, the network
/// request and the reward rule in `harbor`. `Task::from_json_object` reads it like any row.
/// Refused, naming the key: what the package reads but agentmill cannot run (Windows tasks, a
/// separate verifier container, docker-compose environments, MCP servers, healthchecks, TPUs),
/// and a task with neither an image nor a Dockerfile.
pub fn task_row(task: &HarborTask) -> Result<serde_json::Map<String, Json>, HarborError> {
    task_row_inner(task).map_err(|(kind, at, message)| HarborError { kind, task_dir: task.dir.display().to_string(), at, message })
}

fn task_row_inner(task: &HarborTask) -> Res<serde_json::Map<String, Json>> {
    let c = &task.config;
    let e = &c.environment;
    if e.os == TaskOs::Windows {
        return unsupported("environment.os", "Windows tasks are not supported by agentmill (its sandboxes are Linux containers)");
    }
    if task.files.verifier_mode == VerifierEnvironmentMode::Separate {
        return unsupported("verifier.environment", "a separate verifier container is not supported by agentmill; run the verifier in the task's environment (drop [verifier.environment] and environment_mode)");
    }
    if !c.verifier.collect.is_empty() {
        return unsupported("verifier.collect", "collect hooks are not supported by agentmill; remove them");
    }
    if !e.mcp_servers.is_empty() {
        return unsupported("environment.mcp_servers", "MCP servers are not supported by agentmill; remove them");
    }
    if e.healthcheck.is_some() {
        return unsupported("environment.healthcheck", "healthchecks are not supported by agentmill yet; make the image ready when it starts");
    }
    if e.tpu.is_some() {
        return unsupported("environment.tpu", "TPUs are not supported by agentmill");
    }
    if c.agent.network_mode.is_some() || c.verifier.network_mode.is_some() {
        return unsupported("agent.network_mode", "per-phase network policies are not supported by agentmill; set [environment].network_mode only");
    }
    let docker_image = e.docker_image.clone().filter(|i| !i.is_empty());
    if docker_image.is_none() && task.files.dockerfile.is_none() {
        let at = if task.files.docker_compose.is_some() { "environment/docker-compose.yaml" } else { "environment/Dockerfile" };
        let msg = if task.files.docker_compose.is_some() {
            "docker-compose environments are not supported by agentmill; write environment/Dockerfile or set [environment].docker_image"
        } else {
            "is missing, and [environment].docker_image names no image; write one of them"
        };
        return Err((if task.files.docker_compose.is_some() { HarborErrorKind::Unsupported } else { HarborErrorKind::Missing }, at.into(), msg.into()));
    }
    let Some(test_script) = task.files.test_script.clone() else {
        return Err((HarborErrorKind::Missing, "tests/test.sh".into(), "is missing; write the verifier there".into()));
    };
    let rule = RewardRule::from_metadata(&c.metadata).or_else(|m| cfg_err("metadata.min_reward", m))?;
    let mut limits = serde_json::Map::new();
    if let Some(cpus) = e.cpus {
        let v = cpus.as_f64();
        if !positive(v) {
            return cfg_err("environment.cpus", format!("{v} is not a positive number of CPUs"));
        }
        limits.insert("cpus".into(), Json::from(v));
    }
    let mb = |at: &str, v: Option<i64>| -> Res<Option<u64>> {
        match v {
            None => Ok(None),
            Some(m) if m > 0 => Ok(Some((m as u64).saturating_mul(1024 * 1024))),
            Some(m) => cfg_err(at, format!("{m} is not a positive size in MB")),
        }
    };
    if let Some(b) = mb("environment.memory_mb", e.memory_mb)? {
        limits.insert("memory".into(), Json::from(b));
    }
    if let Some(b) = mb("environment.storage_mb", e.storage_mb)? {
        limits.insert("disk".into(), Json::from(b));
    }
    if let Some(t) = c.agent.timeout_sec {
        limits.insert("episode_timeout_s".into(), Json::from(seconds("agent.timeout_sec", t)?));
    }
    limits.insert("test_timeout_s".into(), Json::from(seconds("verifier.timeout_sec", c.verifier.timeout_sec)?));
    let build_timeout_s = c.environment.build_timeout_sec;
    if !positive(build_timeout_s) {
        return cfg_err("environment.build_timeout_sec", format!("{build_timeout_s} is not a positive number of seconds"));
    }
    let gpus = match e.gpus {
        None | Some(0) => None,
        Some(g) => Some(u32::try_from(g).ok().filter(|_| g > 0).ok_or((HarborErrorKind::Config, "task.toml: environment.gpus".to_string(), format!("{g} is not a number of GPUs")))?),
    };
    let spec = HarborSpec {
        name: task.name.clone(),
        docker_image: docker_image.clone(),
        dockerfile: if docker_image.is_some() { None } else { task.files.dockerfile.clone() },
        build_timeout_s,
        test_script,
        solve_script: task.files.solve_script.clone(),
        workdir: e.workdir.clone(),
        env: e.env.clone(),
        verifier_env: c.verifier.env.clone(),
        solution_env: c.solution.env.clone(),
        agent_user: user_string(&c.agent.user),
        verifier_user: user_string(&c.verifier.user),
        network_mode: e.network_mode.as_str().to_string(),
        allowed_hosts: e.allowed_hosts.clone().unwrap_or_default(),
        gpus,
        min_reward: rule.min_reward,
        content: None,
    };
    let mut row = serde_json::Map::new();
    row.insert("instance_id".into(), Json::String(task.name.clone()));
    row.insert("family".into(), Json::String("harbor".into()));
    row.insert("problem_statement".into(), Json::String(task.instruction.clone()));
    if let Some(image) = &docker_image {
        row.insert("image".into(), Json::String(image.clone()));
    }
    if let Some(w) = &e.workdir {
        row.insert("workdir".into(), Json::String(w.clone()));
    }
    row.insert("limits".into(), Json::Object(limits));
    row.insert("allow_network".into(), Json::Bool(e.network_mode != NetworkMode::NoNetwork));
    row.insert("harbor".into(), serde_json::to_value(&spec).unwrap_or(Json::Null));
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_lines_are_stripped_as_the_package_strips_them() {
        assert_eq!(strip_canary("<!-- CANARY guid -->\n# Canary: x\n\n\nDo it.\n"), "Do it.\n");
        assert_eq!(strip_canary("  # canary  \nDo it."), "Do it.");
        assert_eq!(strip_canary("# A title\ncanary"), "# A title\ncanary");
        assert_eq!(strip_canary("<!--canary-->x"), "<!--canary-->x");
        assert_eq!(strip_canary("<!--canary-->\nx"), "x");
        assert_eq!(strip_canary("<!-- canary ->\nx"), "<!-- canary ->\nx");
        assert_eq!(strip_canary("\u{1f}#canary\u{1f}\nx"), "x");
    }

    #[test]
    fn python_float_rules() {
        assert_eq!(py_float(" 1_000.5\n"), Some(1000.5));
        assert_eq!(py_float("1__0"), None);
        assert_eq!(py_float("_1"), None);
        assert_eq!(py_float(""), None);
        assert!(py_float("-Infinity").is_some_and(f64::is_infinite));
    }

    #[test]
    fn rewards_json_is_preferred_and_checked() {
        let ok = read_rewards(Some(br#"{"reward": 1, "style": 0.5}"#), Some(b"0")).expect("rewards");
        assert_eq!(ok.get("reward"), Some(&1.0));
        assert_eq!(read_rewards(Some(b""), Some(b"1")), Err(RewardError::Empty(REWARD_JSON)));
        assert_eq!(read_rewards(Some(b"5"), None).map_err(|e| e.class()), Err("ValidationError"));
        assert_eq!(read_rewards(Some(b"\"1\""), None).map_err(|e| e.class()), Err("VerifierOutputParseError"));
        assert_eq!(read_rewards(None, Some(b" 0.25\n")).expect("txt").get("reward"), Some(&0.25));
        assert_eq!(read_rewards(None, None), Err(RewardError::NotFound));
        let rule = RewardRule::default();
        assert!(rule.resolved(&ok));
        assert!(!rule.resolved(&BTreeMap::from([("other".into(), 1.0)])));
    }
}
