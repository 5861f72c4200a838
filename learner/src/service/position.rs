//! What a checkpoint records about the data, and the run's ledger of records.
//!
//! A checkpoint directory (`output_dir/checkpoints/step-NNNNNNNN`) holds, beside the model and
//! optimizer files that [`crate::train::Trainer::save_checkpoint`] writes:
//!
//! | file | what |
//! |---|---|
//! | `data_state.json` | [`DataState`]: the recipe stage, the streaming packer's partially filled rows (tokens and the records they came from), the records whose tokens are still in those rows with their stream ids, the run's counters, the held-out evaluation set (`eval_fraction`; [`crate::eval`]), and the copies waiting in the shuffle buffer with its generator's state (`shuffle_steps`; [`super::shuffle`]) |
//! | `seen_records.jsonl.zst` | every `record_id` settled in the run so far (trained, or skipped for good: infra, cancelled, excluded), one JSON string a line, zstd — the dedupe set (an id is ~40 bytes, 10M records ≈ 100 MB compressed: small beside a model's checkpoint) |
//! | `records.jsonl` | [`LedgerLine`]s of the records this checkpoint newly holds (trained, or settled without training: infra, duplicate, …) |
//! | `tokenizer.json` | the tokenizer the run trains with |
//!
//! `trainer_state.json` is written last and its `data_position` ([`DataPosition`]) names these
//! files, so a checkpoint without it is torn and ignored (and removed at the next start).
//!
//! **The exactly-once argument.** A record's stream entries are acknowledged only after the
//! first checkpoint that holds *all* of its tokens as trained. A record whose tokens are partly
//! trained and partly in the packer's open rows (or the shuffle buffer) at a checkpoint is saved
//! in `data_state.json` with those rows and buffered copies; after a crash both are restored and
//! the record's re-delivered entries are recognised and left alone, so the untrained rest trains
//! once and the trained part never again. Entries of records in `seen_records` are acknowledged and
//! skipped. Anything else re-delivered was not in the checkpoint at all and trains from
//! scratch. Hence every record trains exactly once per run, whatever the moment of the crash.
//!
//! The run's ledger, `output_dir/trained_records.jsonl`, is the concatenation of the
//! checkpoints' `records.jsonl` in order: each line carries the checkpoint (`step`) that holds
//! it. It is appended right after each checkpoint commits; at start, lines of checkpoints newer
//! than the one resumed are dropped and a missing last delta is appended, so the ledger always
//! matches the checkpoint the run stands on.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use agentmill_proto::RecordKind;
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use super::shuffle::ShuffleState;
use crate::eval::EvalSet;
use crate::mix::{MixState, Source};
use crate::pack::PackerSnapshot;
use crate::train::TRAINER_STATE_FILE;

/// Schema of [`DataPosition`].
pub const DATA_POSITION_FORMAT: &str = "agentmill.data_position/v1";
/// Schema of [`DataState`].
pub const DATA_STATE_FORMAT: &str = "agentmill.data_state/v1";
/// [`DataState`] inside a checkpoint.
pub const DATA_STATE_FILE: &str = "data_state.json";
/// The dedupe set inside a checkpoint.
pub const SEEN_RECORDS_FILE: &str = "seen_records.jsonl.zst";
/// The records a checkpoint newly holds.
pub const CHECKPOINT_RECORDS_FILE: &str = "records.jsonl";
/// The run's ledger in the output directory.
pub const LEDGER_FILE: &str = "trained_records.jsonl";
/// The tokenizer, in the output directory and in every checkpoint.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Checkpoints live here, inside the output directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";

/// Why the data side of a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PositionError {
    /// A file could not be read or written.
    #[error("{action} {path}: {error}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A file's contents are not what this build writes.
    #[error(
        "{path}: {reason}; the checkpoint is damaged or from another version — resume from an earlier one or start a new output_dir"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// JSON helpers of the checkpoint module failed.
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PositionError + 'a {
    move |error| PositionError::Io { action, path: path.to_path_buf(), error }
}

/// What became of a stream entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every token (every copy) was trained.
    Trained,
    /// An infra failure (policy, sandbox, infra error): not the model's doing, not trained.
    Infra,
    /// A cancelled episode: not trained.
    Cancelled,
    /// The recipe's stage gives its source rate 0 (or the fractional draw left it out).
    Excluded,
    /// Nothing to train under the stage's loss mask (or no tokens at all).
    NoTargets,
    /// The entry could not be decoded.
    Invalid,
    /// Another entry with the same `record_id` was trained (or is being trained).
    Duplicate,
    /// Re-delivered after a crash although a checkpoint already held it.
    Redelivered,
    /// Held out for evaluation (`eval_fraction`): never trained.
    HeldOut,
    /// An `env` record of an attempt the coordinator did not accept: its rollout accepted
    /// another attempt, moved on to a later one, or ended failed or cancelled (a worker cut off
    /// from the coordinator published it after its lease was given to another worker). Never
    /// trained.
    Superseded,
    /// An `env` record whose rollout accepted no attempt within `acceptance_timeout`: never
    /// trained.
    Unaccepted,
}

impl Outcome {
    /// The name in metrics and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Trained => "trained",
            Outcome::Infra => "infra",
            Outcome::Cancelled => "cancelled",
            Outcome::Excluded => "excluded",
            Outcome::NoTargets => "no_targets",
            Outcome::Invalid => "invalid",
            Outcome::Duplicate => "duplicate",
            Outcome::Redelivered => "redelivered",
            Outcome::HeldOut => "held_out",
            Outcome::Superseded => "superseded",
            Outcome::Unaccepted => "unaccepted",
        }
    }
}

/// One line of `records.jsonl` and of the run's ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerLine {
    /// The checkpoint (its step) that holds this line.
    pub checkpoint: u64,
    /// What became of it.
    pub outcome: Outcome,
    /// The record id (absent when the entry could not be decoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// `env` or `ctx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RecordKind>,
    /// The mixing source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The stream entries acknowledged with it.
    pub stream_ids: Vec<String>,
    /// Tokens of one copy (0 when not trained).
    #[serde(default)]
    pub tokens: u64,
    /// Copies trained.
    #[serde(default)]
    pub copies: u32,
    /// The optimizer step its last token trained in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    /// Why it was not trained, when there is more to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A record whose tokens are (partly) in the packer at a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRecord {
    /// The tag its chunks carry in the packer.
    pub serial: u64,
    /// The record id.
    pub record_id: String,
    /// `env` or `ctx`.
    pub kind: RecordKind,
    /// The mixing source.
    pub source: Source,
    /// Every stream entry carrying this record (duplicates included).
    pub stream_ids: Vec<String>,
    /// Tokens of one copy.
    pub tokens: u64,
    /// Copies handed to the packer.
    pub copies: u32,
    /// Chunks not yet handed to an optimizer step.
    pub chunks_left: u64,
}

/// The run's counters, carried from checkpoint to checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// `env` records that resolved their task, trained (`trained_env_pass` before v0.1's
    /// summary shared these names; read either way).
    #[serde(alias = "trained_env_pass")]
    pub env_pass: u64,
    /// Other `env` records, trained.
    #[serde(alias = "trained_env_fail")]
    pub env_fail: u64,
    /// `ctx` records trained.
    #[serde(alias = "trained_ctx")]
    pub ctx: u64,
    /// Tokens handed to the packer (copies included).
    pub tokens_packed: u64,
    /// Infra failures skipped.
    pub skipped_infra: u64,
    /// Cancelled episodes skipped.
    pub skipped_cancelled: u64,
    /// Records the recipe left out.
    pub excluded: u64,
    /// Records with nothing to train under the loss mask.
    pub no_targets: u64,
    /// Entries that could not be decoded.
    pub invalid: u64,
    /// Entries whose record id was already trained or in flight.
    pub deduped: u64,
    /// Entries re-delivered after a crash although already in a checkpoint.
    pub redelivered: u64,
    /// Records held out for evaluation.
    #[serde(default)]
    pub held_out: u64,
    /// `env` records of an attempt the coordinator did not accept (never trained).
    #[serde(default)]
    pub superseded: u64,
    /// `env` records whose rollout accepted no attempt in time (never trained).
    #[serde(default)]
    pub unaccepted: u64,
}

impl Counters {
    /// Counts one settled outcome.
    pub fn count(&mut self, outcome: Outcome, source: Option<Source>) {
        let slot = match (outcome, source) {
            (Outcome::Trained, Some(Source::EnvPass)) => &mut self.env_pass,
            (Outcome::Trained, Some(Source::EnvFail)) => &mut self.env_fail,
            (Outcome::Trained, _) => &mut self.ctx,
            (Outcome::Infra, _) => &mut self.skipped_infra,
            (Outcome::Cancelled, _) => &mut self.skipped_cancelled,
            (Outcome::Excluded, _) => &mut self.excluded,
            (Outcome::NoTargets, _) => &mut self.no_targets,
            (Outcome::Invalid, _) => &mut self.invalid,
            (Outcome::Duplicate, _) => &mut self.deduped,
            (Outcome::Redelivered, _) => &mut self.redelivered,
            (Outcome::HeldOut, _) => &mut self.held_out,
            (Outcome::Superseded, _) => &mut self.superseded,
            (Outcome::Unaccepted, _) => &mut self.unaccepted,
        };
        *slot += 1;
    }
}

/// `data_state.json`: where the data side stood at a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataState {
    /// Always [`DATA_STATE_FORMAT`].
    pub format: String,
    /// The optimizer step of the checkpoint.
    pub step: u64,
    /// The recipe's stage.
    pub mix: MixState,
    /// The next packer tag.
    pub next_serial: u64,
    /// Records with tokens still in the packer.
    pub pending: Vec<PendingRecord>,
    /// The packer's rows.
    pub packer: PackerSnapshot,
    /// Counters so far.
    pub counters: Counters,
    /// The held-out documents (`eval_fraction`).
    #[serde(default)]
    pub eval: EvalSet,
    /// The copies waiting in the shuffle buffer, and its generator.
    #[serde(default)]
    pub shuffle: ShuffleState,
}

/// Losses the trainer carries across resumes, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LossTrace {
    /// The loss of the run's first step.
    pub first: Option<f64>,
    /// The loss of the latest step.
    pub last: Option<f64>,
    /// The held-out loss at the run's first evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_first: Option<f64>,
    /// The held-out loss at its latest evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_last: Option<f64>,
}

/// The `data_position` of `trainer_state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPosition {
    /// Always [`DATA_POSITION_FORMAT`].
    pub format: String,
    /// The stream read.
    pub stream: String,
    /// The consumer group.
    pub group: String,
    /// [`DATA_STATE_FILE`], relative to the checkpoint.
    pub data_state: String,
    /// [`SEEN_RECORDS_FILE`], relative to the checkpoint.
    pub seen_records: String,
    /// [`CHECKPOINT_RECORDS_FILE`], relative to the checkpoint.
    pub records: String,
    /// Records trained in the run so far.
    pub records_trained: u64,
    /// Losses, filled in by the trainer.
    #[serde(default)]
    pub loss: LossTrace,
}

/// The directory of the checkpoint at `step`.
pub fn checkpoint_dir(output_dir: &Path, step: u64) -> PathBuf {
    output_dir.join(CHECKPOINTS_DIR).join(format!("step-{step:08}"))
}

/// Checkpoint directories by step: `(step, dir, committed)`, oldest first.
pub fn list_checkpoints(output_dir: &Path) -> Result<Vec<(u64, PathBuf, bool)>, PositionError> {
    let root = output_dir.join(CHECKPOINTS_DIR);
    let read = match std::fs::read_dir(&root) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PositionError::Io { action: "listing", path: root, error: e }),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(io("listing", &root))?;
        let name = entry.file_name();
        let Some(step) = name.to_str().and_then(|n| n.strip_prefix("step-")).and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let dir = entry.path();
        let committed = dir.join(TRAINER_STATE_FILE).is_file();
        out.push((step, dir, committed));
    }
    out.sort_by_key(|(step, _, _)| *step);
    Ok(out)
}

/// The newest committed checkpoint.
pub fn latest_checkpoint(output_dir: &Path) -> Result<Option<(u64, PathBuf)>, PositionError> {
    Ok(list_checkpoints(output_dir)?.into_iter().rev().find(|(_, _, c)| *c).map(|(s, d, _)| (s, d)))
}

/// Removes checkpoint directories a crash left without `trainer_state.json`.
pub fn remove_torn(output_dir: &Path) -> Result<Vec<PathBuf>, PositionError> {
    let mut removed = Vec::new();
    for (_, dir, committed) in list_checkpoints(output_dir)? {
        if !committed {
            std::fs::remove_dir_all(&dir).map_err(io("removing the torn checkpoint", &dir))?;
            removed.push(dir);
        }
    }
    Ok(removed)
}

/// Deletes committed checkpoints older than `step` beyond the newest `keep`.
pub fn prune(output_dir: &Path, step: u64, keep: usize) -> Result<(), PositionError> {
    let committed: Vec<PathBuf> =
        list_checkpoints(output_dir)?.into_iter().filter(|(s, _, c)| *c && *s <= step).map(|(_, d, _)| d).collect();
    let excess = committed.len().saturating_sub(keep);
    for dir in &committed[..excess] {
        std::fs::remove_dir_all(dir).map_err(io("removing the old checkpoint", dir))?;
    }
    Ok(())
}

/// Writes the data files of a checkpoint (everything but the model, optimizer and trainer state).
pub fn write_data_files<'a>(
    dir: &Path,
    state: &DataState,
    seen: impl Iterator<Item = &'a str>,
    delta: &[LedgerLine],
    tokenizer_json: &Path,
) -> Result<(), PositionError> {
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    checkpoint::write_json_file(&dir.join(DATA_STATE_FILE), state)?;

    let path = dir.join(SEEN_RECORDS_FILE);
    let file = File::create(&path).map_err(io("creating", &path))?;
    let mut enc = zstd::Encoder::new(BufWriter::new(file), 3).map_err(io("compressing", &path))?;
    for id in seen {
        let line = serde_json::to_string(id)
            .map_err(|e| PositionError::Format { path: path.clone(), reason: e.to_string() })?;
        enc.write_all(line.as_bytes()).and_then(|_| enc.write_all(b"\n")).map_err(io("writing", &path))?;
    }
    let mut buf = enc.finish().map_err(io("writing", &path))?;
    buf.flush().map_err(io("writing", &path))?;

    let path = dir.join(CHECKPOINT_RECORDS_FILE);
    let mut out = BufWriter::new(File::create(&path).map_err(io("creating", &path))?);
    for line in delta {
        let text = serde_json::to_string(line)
            .map_err(|e| PositionError::Format { path: path.clone(), reason: e.to_string() })?;
        writeln!(out, "{text}").map_err(io("writing", &path))?;
    }
    out.flush().map_err(io("writing", &path))?;

    let target = dir.join(TOKENIZER_FILE);
    std::fs::copy(tokenizer_json, &target).map_err(io("copying the tokenizer into", &target))?;
    Ok(())
}

/// Reads the data files of a committed checkpoint: the state and the dedupe set.
pub fn read_data_files(dir: &Path) -> Result<(DataState, HashSet<String>), PositionError> {
    let path = dir.join(DATA_STATE_FILE);
    let state: DataState = checkpoint::read_json_file(&path)?;
    if state.format != DATA_STATE_FORMAT {
        return Err(PositionError::Format {
            path,
            reason: format!("format is {:?}, expected {DATA_STATE_FORMAT:?}", state.format),
        });
    }
    let path = dir.join(SEEN_RECORDS_FILE);
    let file = File::open(&path).map_err(io("opening", &path))?;
    let dec = zstd::Decoder::new(file).map_err(io("decompressing", &path))?;
    let mut seen = HashSet::new();
    for (i, line) in BufReader::new(dec).lines().enumerate() {
        let line = line.map_err(io("reading", &path))?;
        let id: String = serde_json::from_str(&line)
            .map_err(|e| PositionError::Format { path: path.clone(), reason: format!("line {}: {e}", i + 1) })?;
        seen.insert(id);
    }
    Ok((state, seen))
}

/// Reads a `records.jsonl` (a checkpoint's or the run's ledger).
pub fn read_ledger(path: &Path) -> Result<Vec<LedgerLine>, PositionError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PositionError::Io { action: "opening", path: path.to_path_buf(), error: e }),
    };
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io("reading", path))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str(&line)
            .map_err(|e| PositionError::Format { path: path.to_path_buf(), reason: format!("line {}: {e}", i + 1) })?;
        out.push(parsed);
    }
    Ok(out)
}

/// Appends the `records.jsonl` of the checkpoint in `dir` to the run's ledger.
pub fn append_ledger(output_dir: &Path, dir: &Path) -> Result<(), PositionError> {
    let from = dir.join(CHECKPOINT_RECORDS_FILE);
    let bytes = std::fs::read(&from).map_err(io("reading", &from))?;
    let path = output_dir.join(LEDGER_FILE);
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io("opening", &path))?;
    out.write_all(&bytes).and_then(|_| out.sync_data()).map_err(io("appending to", &path))
}

/// Makes the run's ledger match the checkpoint resumed at `step` (in `dir`): drops lines of
/// newer checkpoints and appends this checkpoint's lines if a crash came before they were.
pub fn reconcile_ledger(output_dir: &Path, step: u64, dir: &Path) -> Result<(), PositionError> {
    let path = output_dir.join(LEDGER_FILE);
    let lines = read_ledger(&path)?;
    let newest = lines.iter().map(|l| l.checkpoint).max();
    if newest.is_some_and(|n| n > step) {
        let kept: Vec<&LedgerLine> = lines.iter().filter(|l| l.checkpoint <= step).collect();
        let tmp = path.with_extension("jsonl.tmp");
        let mut out = BufWriter::new(File::create(&tmp).map_err(io("creating", &tmp))?);
        for line in kept {
            let text = serde_json::to_string(line)
                .map_err(|e| PositionError::Format { path: tmp.clone(), reason: e.to_string() })?;
            writeln!(out, "{text}").map_err(io("writing", &tmp))?;
        }
        out.flush().map_err(io("writing", &tmp))?;
        drop(out);
        std::fs::rename(&tmp, &path).map_err(io("renaming into", &path))?;
    }
    if newest.is_none_or(|n| n < step) {
        append_ledger(output_dir, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_of_an_older_checkpoint_read_under_their_old_names() {
        let old: Counters = serde_json::from_str(r#"{"trained_env_pass": 2, "trained_env_fail": 3, "trained_ctx": 4, "tokens_packed": 9,
            "skipped_infra": 0, "skipped_cancelled": 0, "excluded": 0, "no_targets": 0, "invalid": 0, "deduped": 1, "redelivered": 0}"#)
        .expect("an older data position");
        assert_eq!((old.env_pass, old.env_fail, old.ctx, old.tokens_packed, old.deduped), (2, 3, 4, 9, 1));
        let json = serde_json::to_value(&old).expect("serialize");
        assert_eq!((json["env_pass"].as_u64(), json.get("trained_env_pass")), (Some(2), None), "written under the summary's names");
    }

    fn line(checkpoint: u64, id: &str) -> LedgerLine {
        LedgerLine {
            checkpoint,
            outcome: Outcome::Trained,
            record_id: Some(id.into()),
            kind: Some(RecordKind::Ctx),
            source: Some(Source::Ctx),
            stream_ids: vec![format!("{checkpoint}-0")],
            tokens: 10,
            copies: 1,
            step: Some(checkpoint),
            reason: None,
        }
    }

    fn write_delta(dir: &Path, lines: &[LedgerLine]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        let text: String = lines.iter().map(|l| serde_json::to_string(l).expect("json") + "\n").collect();
        std::fs::write(dir.join(CHECKPOINT_RECORDS_FILE), text).expect("write");
    }

    #[test]
    fn the_ledger_follows_the_checkpoint_resumed() {
        let out = tempfile::tempdir().expect("tempdir");
        let (c5, c10) = (checkpoint_dir(out.path(), 5), checkpoint_dir(out.path(), 10));
        write_delta(&c5, &[line(5, "a")]);
        write_delta(&c10, &[line(10, "b")]);
        append_ledger(out.path(), &c5).expect("append");
        append_ledger(out.path(), &c10).expect("append");
        // Resuming from 5 (10 was lost): 10's lines go.
        reconcile_ledger(out.path(), 5, &c5).expect("reconcile");
        let ids = |out: &Path| -> Vec<String> {
            read_ledger(&out.join(LEDGER_FILE)).expect("read").into_iter().filter_map(|l| l.record_id).collect()
        };
        assert_eq!(ids(out.path()), ["a"]);
        // A crash between committing 10 and appending its lines: they are appended, once.
        reconcile_ledger(out.path(), 10, &c10).expect("reconcile");
        reconcile_ledger(out.path(), 10, &c10).expect("reconcile again");
        assert_eq!(ids(out.path()), ["a", "b"]);
    }

    #[test]
    fn torn_checkpoints_are_found_and_removed() {
        let out = tempfile::tempdir().expect("tempdir");
        for step in [3, 6, 9] {
            let dir = checkpoint_dir(out.path(), step);
            std::fs::create_dir_all(&dir).expect("mkdir");
            if step != 9 {
                std::fs::write(dir.join(TRAINER_STATE_FILE), "{}").expect("write");
            }
        }
        assert_eq!(latest_checkpoint(out.path()).expect("list").map(|(s, _)| s), Some(6));
        assert_eq!(remove_torn(out.path()).expect("remove"), vec![checkpoint_dir(out.path(), 9)]);
        prune(out.path(), 6, 1).expect("prune");
        let left: Vec<u64> = list_checkpoints(out.path()).expect("list").into_iter().map(|(s, _, _)| s).collect();
        assert_eq!(left, [6]);
    }
}
