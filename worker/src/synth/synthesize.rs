//! [`Synthesizer`]: one PR row in, a `ctx` record or a drop reason out — the per-row engine the
//! offline pipeline drives and a `SynthActor` can own.

use std::collections::BTreeMap;

use agentmill_proto::TrajectoryRecord;
use serde::{Deserialize, Serialize};

use super::edits::{EditOptions, EditStats, build_edits};
use super::filter::{DropReason, DropReport, Filter, FilterConfig};
use super::record::{RecordMeta, ctx_record};
use super::render::{RenderOptions, Template, render_general, render_python_pr};
use super::row::PrRow;
use super::tokens::TokenCounter;

/// Messages kept in a report (row errors, diffs that do not apply); the counts stay exact.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// Which template to render with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateChoice {
    /// The paper's Python-PR template for every PR.
    #[default]
    PythonPr,
    /// The general template for every PR.
    General,
    /// Python-PR when a relevant file is a Python file, general otherwise.
    Auto,
}

/// Everything that decides what a row becomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SynthConfig {
    /// The template.
    pub template: TemplateChoice,
    /// The filters.
    pub filter: FilterConfig,
    /// Edit building.
    pub edits: EditOptions,
    /// Rendering.
    pub render: RenderOptions,
}

/// What a run did: rows in, records out, and why the rest were dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SynthReport {
    /// Rows (or git PRs) read.
    pub rows_read: u64,
    /// Rows that could not be read (each with its error in `errors`, up to the cap).
    pub rows_unreadable: u64,
    /// Records made.
    pub kept: u64,
    /// Drops by reason.
    pub dropped: DropReport,
    /// Edit statistics over the kept PRs.
    pub edits: EditStats,
    /// Share of the kept PRs' search blocks unique within the growth limit (the paper: 99.8%).
    pub uniqueness_rate: f64,
    /// Relevant files left out as binary or not UTF-8.
    pub files_skipped: u64,
    /// Tokens of the kept texts.
    pub tokens_kept: u64,
    /// The token counter used.
    pub token_counter: String,
    /// Kept records by template.
    pub templates: BTreeMap<String, u64>,
    /// The first error messages.
    pub errors: Vec<String>,
}

impl SynthReport {
    fn error(&mut self, msg: String) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(msg);
        }
    }
}

/// The result of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The row became this record.
    Kept(Box<TrajectoryRecord>),
    /// The row was dropped.
    Dropped(DropReason),
}

/// Turns rows into records, filtering and counting as it goes.
pub struct Synthesizer {
    cfg: SynthConfig,
    filter: Filter,
    tokens: Box<dyn TokenCounter>,
    meta: RecordMeta,
    report: SynthReport,
}

impl std::fmt::Debug for Synthesizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Synthesizer").field("cfg", &self.cfg).field("tokens", &self.tokens.name()).field("report", &self.report).finish()
    }
}

impl Synthesizer {
    /// A synthesizer with these settings, token counter and record identity.
    pub fn new(cfg: SynthConfig, tokens: Box<dyn TokenCounter>, meta: RecordMeta) -> Synthesizer {
        let filter = Filter::new(cfg.filter.clone());
        let report = SynthReport { token_counter: tokens.name().to_string(), ..SynthReport::default() };
        Synthesizer { cfg, filter, tokens, meta, report }
    }

    /// Processes one row.
    pub fn process(&mut self, row: &PrRow) -> Outcome {
        self.report.rows_read += 1;
        self.report.files_skipped += row.skipped_files;
        match self.try_process(row) {
            Ok(record) => Outcome::Kept(Box::new(record)),
            Err(reason) => {
                self.report.dropped.add(reason);
                Outcome::Dropped(reason)
            }
        }
    }

    fn try_process(&mut self, row: &PrRow) -> Result<TrajectoryRecord, DropReason> {
        self.filter.check_row(row)?;
        let edits = build_edits(&row.relevant_files, &row.commits, &self.cfg.edits).map_err(|e| {
            self.report.error(format!("{}#{}: {e}", row.repo_name, row.pr_id));
            DropReason::BadDiff
        })?;
        if edits.all_edits().next().is_none() {
            return Err(DropReason::NoEdits);
        }
        let template = match self.cfg.template {
            TemplateChoice::PythonPr => Template::PythonPr,
            TemplateChoice::General => Template::General,
            TemplateChoice::Auto if self.filter.python_files(row) > 0 => Template::PythonPr,
            TemplateChoice::Auto => Template::General,
        };
        let text = match template {
            Template::PythonPr => render_python_pr(row, &edits, &self.cfg.render),
            Template::General => render_general(row, &self.cfg.render),
        };
        let tokens = self.tokens.count(&text);
        self.filter.check_tokens(tokens)?;
        self.report.kept += 1;
        self.report.tokens_kept += tokens as u64;
        self.report.edits.add(&edits.stats);
        self.report.uniqueness_rate = self.report.edits.uniqueness_rate();
        *self.report.templates.entry(template.as_str().to_string()).or_default() += 1;
        Ok(ctx_record(row, template, text, &self.meta))
    }

    /// Counts a row that could not be read, keeping its messages.
    pub fn unreadable(&mut self, messages: impl IntoIterator<Item = String>) {
        self.report.rows_unreadable += 1;
        for m in messages {
            self.report.error(m);
        }
    }

    /// The report so far.
    pub fn report(&self) -> &SynthReport {
        &self.report
    }

    /// The final report.
    pub fn into_report(self) -> SynthReport {
        self.report
    }
}
