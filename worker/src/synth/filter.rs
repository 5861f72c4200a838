//! Which PRs become training data: the paper's filters, each configurable and each counted.
//!
//! Defaults ([`FilterConfig::default`]) are the paper's: merged PRs only, no bots, 1–5 Python
//! files among the relevant files, at most 20 changed files, at most 32k tokens, one record per
//! (repository, PR), and no PR from a SWE-bench Verified repository (decontamination).
//!
//! A PR is dropped for the first check it fails, in this order: [`DropReason::Blocklisted`],
//! [`DropReason::NotMerged`], [`DropReason::Bot`], [`DropReason::Duplicate`],
//! [`DropReason::TooManyChangedFiles`], [`DropReason::TooFewPythonFiles`] /
//! [`DropReason::TooManyPythonFiles`] — these from the row alone ([`Filter::check_row`]) — then,
//! once edits are built and the text rendered, [`DropReason::BadDiff`], [`DropReason::NoEdits`]
//! and [`DropReason::TooManyTokens`]. A duplicate is counted as such even when its first copy was
//! dropped later for another reason: the key is claimed when the row passes the checks before it.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::row::PrRow;

/// The 12 repositories of SWE-bench Verified, the default decontamination blocklist.
pub const SWE_BENCH_VERIFIED_REPOS: [&str; 12] = [
    "astropy/astropy",
    "django/django",
    "matplotlib/matplotlib",
    "mwaskom/seaborn",
    "pallets/flask",
    "psf/requests",
    "pydata/xarray",
    "pylint-dev/pylint",
    "pytest-dev/pytest",
    "scikit-learn/scikit-learn",
    "sphinx-doc/sphinx",
    "sympy/sympy",
];

/// Bot accounts that do not end in `[bot]` (compared case-insensitively).
pub const DEFAULT_BOT_LOGINS: [&str; 12] = [
    "dependabot",
    "dependabot-preview",
    "renovate",
    "renovate-bot",
    "greenkeeper",
    "greenkeeperio-bot",
    "pre-commit-ci",
    "github-actions",
    "codecov-io",
    "pyup-bot",
    "snyk-bot",
    "imgbot",
];

/// The filters' settings. A limit of 0 switches its check off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Drop PRs whose row says `merged: false` (absent counts as merged).
    pub merged_only: bool,
    /// Drop PRs whose author ends in `[bot]` or is in `bot_logins`.
    pub drop_bots: bool,
    /// Bot logins besides `*[bot]`.
    pub bot_logins: Vec<String>,
    /// Fewest relevant Python files (0: no minimum).
    pub min_python_files: usize,
    /// Most relevant Python files (0: no maximum).
    pub max_python_files: usize,
    /// What makes a file a Python file (path suffixes).
    pub python_extensions: Vec<String>,
    /// Most changed files (0: no maximum).
    pub max_changed_files: usize,
    /// Most tokens of the rendered text (0: no maximum).
    pub max_tokens: usize,
    /// Keep one record per (repository, PR).
    pub dedupe: bool,
    /// Repositories (`owner/name`, case-insensitive) never to take PRs from.
    pub repo_blocklist: Vec<String>,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            merged_only: true,
            drop_bots: true,
            bot_logins: DEFAULT_BOT_LOGINS.iter().map(|s| s.to_string()).collect(),
            min_python_files: 1,
            max_python_files: 5,
            python_extensions: vec![".py".to_string()],
            max_changed_files: 20,
            max_tokens: 32_768,
            dedupe: true,
            repo_blocklist: SWE_BENCH_VERIFIED_REPOS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl FilterConfig {
    /// No filter at all (every check off), for tests and for re-rendering kept data.
    pub fn keep_all() -> FilterConfig {
        FilterConfig {
            merged_only: false,
            drop_bots: false,
            bot_logins: Vec::new(),
            min_python_files: 0,
            max_python_files: 0,
            python_extensions: vec![".py".to_string()],
            max_changed_files: 0,
            max_tokens: 0,
            dedupe: false,
            repo_blocklist: Vec::new(),
        }
    }
}

/// Why a PR was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Its repository is on the blocklist.
    Blocklisted,
    /// Not merged.
    NotMerged,
    /// Authored by a bot.
    Bot,
    /// Another row already had this (repository, PR).
    Duplicate,
    /// More changed files than allowed.
    TooManyChangedFiles,
    /// Fewer relevant Python files than required.
    TooFewPythonFiles,
    /// More relevant Python files than allowed.
    TooManyPythonFiles,
    /// Its diffs do not apply to its relevant files.
    BadDiff,
    /// No edit could be made (only binary or unknown files changed).
    NoEdits,
    /// The rendered text is longer than allowed.
    TooManyTokens,
}

impl DropReason {
    /// The snake_case name used in reports and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Blocklisted => "blocklisted",
            DropReason::NotMerged => "not_merged",
            DropReason::Bot => "bot",
            DropReason::Duplicate => "duplicate",
            DropReason::TooManyChangedFiles => "too_many_changed_files",
            DropReason::TooFewPythonFiles => "too_few_python_files",
            DropReason::TooManyPythonFiles => "too_many_python_files",
            DropReason::BadDiff => "bad_diff",
            DropReason::NoEdits => "no_edits",
            DropReason::TooManyTokens => "too_many_tokens",
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many PRs each reason dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DropReport {
    counts: BTreeMap<DropReason, u64>,
}

impl DropReport {
    /// Counts one drop.
    pub fn add(&mut self, reason: DropReason) {
        *self.counts.entry(reason).or_default() += 1;
    }

    /// Drops for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts.get(&reason).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Reasons with their counts, in the order of [`DropReason`].
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        self.counts.iter().map(|(r, n)| (*r, *n))
    }
}

/// The filters with their state (the dedupe keys seen so far).
#[derive(Debug, Clone)]
pub struct Filter {
    cfg: FilterConfig,
    blocklist: HashSet<String>,
    bots: HashSet<String>,
    seen: HashSet<(String, String)>,
}

impl Filter {
    /// Filters with these settings and nothing seen yet.
    pub fn new(cfg: FilterConfig) -> Filter {
        let blocklist = cfg.repo_blocklist.iter().map(|r| normalize_repo(r)).collect();
        let bots = cfg.bot_logins.iter().map(|b| b.trim().to_ascii_lowercase()).collect();
        Filter { cfg, blocklist, bots, seen: HashSet::new() }
    }

    /// The settings.
    pub fn config(&self) -> &FilterConfig {
        &self.cfg
    }

    /// The checks that need only the row; a row that passes claims its dedupe key.
    pub fn check_row(&mut self, row: &PrRow) -> Result<(), DropReason> {
        let repo = normalize_repo(&row.repo_name);
        if self.blocklist.contains(&repo) {
            return Err(DropReason::Blocklisted);
        }
        if self.cfg.merged_only && row.merged == Some(false) {
            return Err(DropReason::NotMerged);
        }
        if self.cfg.drop_bots && row.author.as_deref().is_some_and(|a| self.is_bot(a)) {
            return Err(DropReason::Bot);
        }
        if self.cfg.dedupe && !self.seen.insert((repo, row.pr_id.trim().to_string())) {
            return Err(DropReason::Duplicate);
        }
        if self.cfg.max_changed_files > 0 && row.changed_file_count() > self.cfg.max_changed_files as u64 {
            return Err(DropReason::TooManyChangedFiles);
        }
        let py = self.python_files(row);
        if py < self.cfg.min_python_files {
            return Err(DropReason::TooFewPythonFiles);
        }
        if self.cfg.max_python_files > 0 && py > self.cfg.max_python_files {
            return Err(DropReason::TooManyPythonFiles);
        }
        Ok(())
    }

    /// The length check on the rendered text's token count.
    pub fn check_tokens(&self, tokens: usize) -> Result<(), DropReason> {
        if self.cfg.max_tokens > 0 && tokens > self.cfg.max_tokens {
            return Err(DropReason::TooManyTokens);
        }
        Ok(())
    }

    /// Whether a login is a bot's: it ends in `[bot]` or is listed (case-insensitive).
    pub fn is_bot(&self, login: &str) -> bool {
        let l = login.trim().to_ascii_lowercase();
        l.ends_with("[bot]") || self.bots.contains(&l)
    }

    /// Relevant files that are Python files.
    pub fn python_files(&self, row: &PrRow) -> usize {
        row.relevant_files.iter().filter(|f| self.is_python(&f.path)).count()
    }

    /// Whether a path is a Python file by `python_extensions`.
    pub fn is_python(&self, path: &str) -> bool {
        self.cfg.python_extensions.iter().any(|ext| path.ends_with(ext.as_str()))
    }
}

/// `owner/name`, lower-cased, without a URL prefix or `.git` suffix.
fn normalize_repo(r: &str) -> String {
    let r = r.trim().trim_end_matches('/');
    let r = r.strip_suffix(".git").unwrap_or(r);
    let r = ["https://github.com/", "http://github.com/", "github.com/", "git@github.com:"]
        .iter()
        .fold(r, |r, p| r.strip_prefix(p).unwrap_or(r));
    r.to_ascii_lowercase()
}
