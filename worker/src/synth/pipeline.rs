//! The offline pipeline: an input (a rows file or a git repository) → filtered, (optionally
//! enhanced,) rendered `ctx` records as JSONL, plus the [`SynthReport`]. This is what
//! `agentmill synth --offline` calls.
//!
//! With `cfg.enhance.enabled`, the run owns an [`Enhancer`] and feeds rows through
//! [`Synthesizer::push`]: reading the next PRs from git overlaps with the model answering the
//! previous ones, and records are emitted in input order (see [`super::enhance`] for how the
//! synchronous pipeline drives async HTTP).

use std::io::Write;
use std::path::{Path, PathBuf};

use agentmill_proto::{SynthSpec, Task, TrajectoryRecord};

use super::SynthError;
use super::enhance::Enhancer;
use super::read::git::{GitOptions, GitRepo};
use super::read::issues::IssueMap;
use super::read::open_rows;
use super::record::RecordMeta;
use super::synthesize::{Outcome, SynthConfig, SynthReport, Synthesizer};
use super::tokens::TokenCounter;

/// Where PRs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SynthInput {
    /// A JSONL or Parquet file of rows (told apart by Parquet's `PAR1` magic), from row `offset`
    /// (0-based), `limit` rows (0: to the end).
    Rows {
        /// The file.
        path: PathBuf,
        /// Rows to skip.
        offset: u64,
        /// Rows to take; 0 = all.
        limit: u64,
    },
    /// A local git repository.
    Git {
        /// The repository.
        path: PathBuf,
        /// What to read from it.
        options: GitOptions,
    },
}

impl SynthInput {
    /// The input of a synthesis task: its `synth` spec, with the task's `repo` as the repository
    /// name of git-derived records and its issues file read now.
    pub fn from_task(task: &Task) -> Result<SynthInput, SynthError> {
        let spec = task.synth.as_ref().ok_or_else(|| SynthError::NoSpec { task_id: task.instance_id.clone() })?;
        SynthInput::from_spec(spec, &task.repo)
    }

    /// The input a spec names; `repo_name` names git-derived records (empty: the folder's name).
    pub fn from_spec(spec: &SynthSpec, repo_name: &str) -> Result<SynthInput, SynthError> {
        Ok(match spec {
            SynthSpec::Rows { path, offset, limit } => SynthInput::Rows { path: PathBuf::from(path), offset: *offset, limit: *limit },
            SynthSpec::Git { repo_path, from_rev, to_rev, single_commits, issues_path } => {
                let issues = if issues_path.is_empty() { IssueMap::default() } else { IssueMap::read(Path::new(issues_path))? };
                SynthInput::Git {
                    path: PathBuf::from(repo_path),
                    options: GitOptions {
                        from_rev: from_rev.clone(),
                        to_rev: to_rev.clone(),
                        single_commits: *single_commits,
                        repo_name: repo_name.to_string(),
                        repo_description: String::new(),
                        issues,
                    },
                }
            }
        })
    }
}

/// Runs the pipeline: every PR of `input` through a [`Synthesizer`], each kept record written to
/// `out` as one JSON line. Unreadable rows and PRs are counted and reported, not fatal; an input
/// that cannot be opened at all, or output that cannot be written, is.
pub fn run_offline(
    input: &SynthInput,
    cfg: SynthConfig,
    tokens: Box<dyn TokenCounter>,
    meta: RecordMeta,
    out: &mut dyn Write,
) -> Result<SynthReport, SynthError> {
    let mut out = std::io::BufWriter::new(out);
    let report = run(input, cfg, tokens, meta, &mut |record| {
        let mut line = serde_json::to_vec(&record).map_err(|e| SynthError::Write(std::io::Error::other(e)))?;
        line.push(b'\n');
        out.write_all(&line).map_err(SynthError::Write)
    })?;
    out.flush().map_err(SynthError::Write)?;
    Ok(report)
}

/// Runs the pipeline and hands each kept record to `emit` as it is made (a worker publishes it;
/// [`run_offline`] writes it). An error from `emit` stops the run; so do enhancement settings
/// that cannot work ([`SynthError::Enhance`]) — failed enhancement requests do not.
pub fn run(
    input: &SynthInput,
    cfg: SynthConfig,
    tokens: Box<dyn TokenCounter>,
    meta: RecordMeta,
    emit: &mut dyn FnMut(TrajectoryRecord) -> Result<(), SynthError>,
) -> Result<SynthReport, SynthError> {
    let enhancer = if cfg.enhance.enabled { Some(Enhancer::new(cfg.enhance.clone())?) } else { None };
    let mut synth = Synthesizer::new(cfg, tokens, meta);
    if let Some(enhancer) = enhancer {
        synth = synth.with_enhancer(enhancer);
    }
    let mut emit_kept = |outcomes: Vec<Outcome>| -> Result<(), SynthError> {
        for outcome in outcomes {
            if let Outcome::Kept(record) = outcome {
                emit(*record)?;
            }
        }
        Ok(())
    };
    let mut one = |synth: &mut Synthesizer, row: super::row::PrRow| -> Result<(), SynthError> { emit_kept(synth.push(row)) };
    match input {
        SynthInput::Rows { path, offset, limit } => {
            let rows = open_rows(path)?;
            let take = if *limit == 0 { usize::MAX } else { usize::try_from(*limit).unwrap_or(usize::MAX) };
            for r in rows.skip(usize::try_from(*offset).unwrap_or(usize::MAX)).take(take) {
                match r {
                    Ok(row) => one(&mut synth, row)?,
                    Err(errs) => synth.unreadable(errs.iter().map(ToString::to_string)),
                }
            }
        }
        SynthInput::Git { path, options } => {
            let repo = GitRepo::open(path)?;
            for pr in repo.prs(options)? {
                match pr {
                    Ok(pr) => one(&mut synth, pr.row)?,
                    Err(e) => synth.unreadable([e.to_string()]),
                }
            }
        }
    }
    let rest = synth.drain();
    emit_kept(rest)?;
    Ok(synth.into_report())
}
