//! [`Synthesizer`]: one PR row in, a `ctx` record or a drop reason out — the per-row engine the
//! offline pipeline drives and a `SynthActor` can own.
//!
//! A row is filtered and its edits built first (cheap drops before any request), then — with an
//! [`Enhancer`] — its summary and commit messages are enhanced, then it is rendered and its
//! tokens checked. [`Synthesizer::process`] does this for one row, waiting for its enhancement;
//! [`Synthesizer::push`] and [`Synthesizer::drain`] keep a window of rows in enhancement so the
//! requests of many PRs overlap, and still give outcomes in input order.

use std::collections::{BTreeMap, VecDeque};

use agentmill_proto::TrajectoryRecord;
use serde::{Deserialize, Serialize};

use super::edits::{EditOptions, EditStats, PrEdits, build_edits};
use super::enhance::{EnhanceConfig, Enhanced, Enhancer, Pending};
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// The template.
    pub template: TemplateChoice,
    /// The filters.
    pub filter: FilterConfig,
    /// Edit building.
    pub edits: EditOptions,
    /// Rendering.
    pub render: RenderOptions,
    /// LLM enhancement of summaries and commit messages (`[synth.enhance]`, off by default).
    pub enhance: EnhanceConfig,
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
    /// Texts (summaries and commit messages) the enhancement endpoint rewrote, over every PR
    /// sent to it (those the token filter dropped afterwards included).
    #[serde(default)]
    pub enhanced: u64,
    /// Texts kept as they were because their enhancement failed (the reasons are in `errors`).
    #[serde(default)]
    pub enhance_failed: u64,
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
    enhancer: Option<Enhancer>,
    queue: VecDeque<Queued>,
}

/// What a row past the filters and edit building is rendered from: its edits and the template
/// chosen for it.
struct RenderPlan {
    edits: PrEdits,
    template: Template,
}

/// A row pushed and not yet handed back.
enum Queued {
    /// Decided already (dropped before enhancement), behind rows still in enhancement.
    Done(Outcome),
    /// Its enhancement is running (boxed: a row and its edits are large next to an outcome).
    Enhancing(Box<(Pending, RenderPlan)>),
}

impl std::fmt::Debug for Synthesizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Synthesizer")
            .field("cfg", &self.cfg)
            .field("tokens", &self.tokens.name())
            .field("enhancer", &self.enhancer)
            .field("queued", &self.queue.len())
            .field("report", &self.report)
            .finish()
    }
}

impl Synthesizer {
    /// A synthesizer with these settings, token counter and record identity. It does not
    /// enhance, whatever `cfg.enhance` says, until given an [`Enhancer`] ([`Self::with_enhancer`]).
    pub fn new(cfg: SynthConfig, tokens: Box<dyn TokenCounter>, meta: RecordMeta) -> Synthesizer {
        let filter = Filter::new(cfg.filter.clone());
        let report = SynthReport { token_counter: tokens.name().to_string(), ..SynthReport::default() };
        Synthesizer { cfg, filter, tokens, meta, report, enhancer: None, queue: VecDeque::new() }
    }

    /// Enhances every row that passes the filters with `enhancer` before rendering it.
    pub fn with_enhancer(mut self, enhancer: Enhancer) -> Synthesizer {
        self.enhancer = Some(enhancer);
        self
    }

    /// Processes one row, waiting for its enhancement when there is an enhancer.
    pub fn process(&mut self, row: &PrRow) -> Outcome {
        match self.plan(row) {
            Err(reason) => self.dropped(reason),
            Ok(plan) => match &self.enhancer {
                Some(enhancer) => {
                    let enhanced = enhancer.enhance(row.clone());
                    self.finish_enhanced(enhanced, plan)
                }
                None => self.finish(row, plan, false),
            },
        }
    }

    /// Queues one row and returns the outcomes ready now, in the order rows were pushed. Without
    /// an enhancer that is this row's; with one, the row's requests start in the background and
    /// the oldest rows are waited for only when more than [`Enhancer::window`] are in flight.
    pub fn push(&mut self, row: PrRow) -> Vec<Outcome> {
        let Some(window) = self.enhancer.as_ref().map(Enhancer::window) else {
            return vec![self.process(&row)];
        };
        match self.plan(&row) {
            Err(reason) => {
                let outcome = self.dropped(reason);
                self.queue.push_back(Queued::Done(outcome));
            }
            Ok(plan) => {
                if let Some(enhancer) = &self.enhancer {
                    self.queue.push_back(Queued::Enhancing(Box::new((enhancer.submit(row), plan))));
                }
            }
        }
        let mut ready = Vec::new();
        while let Some(front) = self.queue.front() {
            let in_flight = self.queue.iter().filter(|q| matches!(q, Queued::Enhancing(..))).count();
            if matches!(front, Queued::Enhancing(..)) && in_flight <= window {
                break;
            }
            if let Some(q) = self.queue.pop_front() {
                ready.push(self.settle(q));
            }
        }
        ready
    }

    /// Waits for every pushed row still in enhancement; their outcomes in the order pushed.
    pub fn drain(&mut self) -> Vec<Outcome> {
        let mut ready = Vec::with_capacity(self.queue.len());
        while let Some(q) = self.queue.pop_front() {
            ready.push(self.settle(q));
        }
        ready
    }

    fn settle(&mut self, q: Queued) -> Outcome {
        match q {
            Queued::Done(outcome) => outcome,
            Queued::Enhancing(waiting) => {
                let (pending, plan) = *waiting;
                self.finish_enhanced(pending.wait(), plan)
            }
        }
    }

    /// Counts the row, runs the filters that need no rendering and builds its edits: the row's
    /// [`RenderPlan`], or why it is dropped.
    fn plan(&mut self, row: &PrRow) -> Result<RenderPlan, DropReason> {
        self.report.rows_read += 1;
        self.report.files_skipped += row.skipped_files;
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
        Ok(RenderPlan { edits, template })
    }

    fn dropped(&mut self, reason: DropReason) -> Outcome {
        self.report.dropped.add(reason);
        Outcome::Dropped(reason)
    }

    /// Counts an enhancement's results, then [`Self::finish`]es its row.
    fn finish_enhanced(&mut self, enhanced: Enhanced, plan: RenderPlan) -> Outcome {
        let Enhanced { row, enhanced, failed, failures } = enhanced;
        self.report.enhanced += enhanced;
        self.report.enhance_failed += failed;
        for f in failures {
            self.report.error(f);
        }
        self.finish(&row, plan, enhanced > 0)
    }

    /// Renders a row, checks its tokens and makes its record; `enhanced`: some of its text came
    /// from the enhancement endpoint.
    fn finish(&mut self, row: &PrRow, plan: RenderPlan, enhanced: bool) -> Outcome {
        let RenderPlan { mut edits, template } = plan;
        if enhanced {
            // The edits carry the messages they were built with; take the refined ones.
            for (ce, c) in edits.commits.iter_mut().zip(&row.commits) {
                if let Some(m) = c.refined_message.as_ref().filter(|m| !m.trim().is_empty()) {
                    ce.message.clone_from(m);
                }
            }
        }
        let text = match template {
            Template::PythonPr => render_python_pr(row, &edits, &self.cfg.render),
            Template::General => render_general(row, &self.cfg.render),
        };
        let tokens = self.tokens.count(&text);
        if let Err(reason) = self.filter.check_tokens(tokens) {
            return self.dropped(reason);
        }
        self.report.kept += 1;
        self.report.tokens_kept += tokens as u64;
        self.report.edits.add(&edits.stats);
        self.report.uniqueness_rate = self.report.edits.uniqueness_rate();
        *self.report.templates.entry(template.as_str().to_string()).or_default() += 1;
        let mut record = ctx_record(row, template, text, &self.meta);
        if enhanced {
            record.provenance.policy = self.enhancer.as_ref().map(|e| e.info().clone());
        }
        Outcome::Kept(Box::new(record))
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
