//! Contextual synthesis: pull requests and commit histories rebuilt as the information flow an
//! agent would have experienced (daVinci-Dev's *contextually-native* trajectories, `kind = ctx`).
//!
//! A PR becomes: repository context → issue → PR → the full contents of the files it touches as
//! they were at the parent of its first commit → a summary → per commit, its message and its
//! changes as search/replace edits. The pieces, one idea a file:
//!
//! - [`row`]: [`PrRow`], a PR in daVinci-Dev's released schema, read leniently with per-field
//!   errors; [`read`]: where rows come from — JSONL ([`read::jsonl`]), Parquet
//!   ([`read::parquet`]) and local git repositories ([`read::git`], first-parent merges or single
//!   commits as PRs, with issue text from [`read::issues`]).
//! - [`edits`]: diffs (read by [`crate::diff`], the crate's one unified-diff reader) → [`Edit`]s
//!   applied commit by commit to the evolving files, search blocks grown until unique, and
//!   [`apply_edits`], the strict check that they reproduce the post-PR files.
//! - [`render`]: the paper's Python-PR template and a general, tag-based one.
//! - [`filter`]: the paper's filters with a count per drop reason; [`tokens`]: token counting
//!   for the length filter (a `tokenizer.json`, or an approximate estimate).
//! - [`enhance`]: optional LLM enhancement before rendering ([`Enhancer`]: a PR summary and
//!   refined commit messages from an OpenAI-compatible endpoint, the original text kept on any
//!   failure).
//! - [`record`]: the `ctx` [`agentmill_proto::TrajectoryRecord`]; [`synthesize`]: the per-row
//!   engine ([`Synthesizer`]); [`pipeline`]: the offline run ([`run_offline`]).
//!
//! ```no_run
//! use agentmill_worker::synth::{run_offline, ApproxTokenCounter, RecordMeta, SynthConfig, SynthInput};
//!
//! let input = SynthInput::Rows { path: "prs.parquet".into(), offset: 0, limit: 0 };
//! let meta = RecordMeta { task_id: "synth-1".into(), worker: "host-a".into(), created_at: "2026-01-01T00:00:00Z".into() };
//! let mut out = std::fs::File::create("ctx.jsonl")?;
//! let report = run_offline(&input, SynthConfig::default(), Box::new(ApproxTokenCounter::default()), meta, &mut out)?;
//! println!("kept {} of {}; search blocks unique: {:.1}%", report.kept, report.rows_read, 100.0 * report.uniqueness_rate);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod edits;
pub mod enhance;
pub mod filter;
pub mod pipeline;
pub mod read;
pub mod record;
pub mod render;
pub mod row;
pub mod synthesize;
pub mod tokens;

use thiserror::Error;

pub use edits::{ApplyError, CommitEdits, Edit, EditError, EditOptions, EditStats, PrEdits, apply_edits, build_edits};
pub use enhance::{EnhanceConfig, EnhanceError, Enhanced, Enhancer, Pending};
pub use filter::{DropReason, DropReport, Filter, FilterConfig};
pub use pipeline::{SynthInput, run, run_offline};
pub use read::git::{GitError, GitOptions, GitPr, GitRepo};
pub use read::issues::IssueMap;
pub use read::jsonl::{JsonlRows, parse_rows_jsonl};
pub use read::open_rows;
pub use read::parquet::ParquetRows;
pub use record::{RecordMeta, ctx_record, ctx_record_id};
pub use render::{RenderOptions, Template, render_general, render_python_pr};
pub use row::{DiscussionItem, DiscussionKind, PrRow, RowError};
pub use synthesize::{Outcome, SynthConfig, SynthReport, Synthesizer, TemplateChoice};
pub use tokens::{ApproxTokenCounter, HfTokenCounter, TokenCounter};

/// What stops a synthesis run (a single bad row or PR does not: it is counted and reported).
#[derive(Debug, Error)]
pub enum SynthError {
    /// An input file that cannot be opened or read.
    #[error("{path}: {reason}")]
    Input {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A repository that cannot be read.
    #[error(transparent)]
    Git(#[from] GitError),
    /// A tokenizer that cannot be loaded.
    #[error("tokenizer {path}: {reason}; pass a Hugging Face tokenizer.json, or use the approximate counter")]
    Tokenizer {
        /// The file.
        path: String,
        /// What the tokenizers crate said.
        reason: String,
    },
    /// An enhancement endpoint that cannot be used (its settings, not a failed request: those
    /// fall back to the original text).
    #[error(transparent)]
    Enhance(#[from] EnhanceError),
    /// Records that cannot be written.
    #[error("writing records failed ({0}); check the output path and free disk space")]
    Write(std::io::Error),
    /// A synthesis task without its input.
    #[error("task {task_id} has no `synth` spec; a synth task names its input ({{\"type\": \"git\", ...}} or {{\"type\": \"rows\", ...}})")]
    NoSpec {
        /// The task.
        task_id: String,
    },
}
