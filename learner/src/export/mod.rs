//! Token shards for a distributed trainer (`agentmill-learner export`): when one GPU host is
//! not enough, Megatron-LM or torchtitan takes the same data over.
//!
//! Records (from a JSONL file or a stream, read without a consumer group) go through exactly
//! the service's path — dedupe by `record_id`, infra failures and cancelled episodes left out,
//! rendering, tokenization, the recipe's copies and loss mask — and are written in one of two
//! layouts:
//!
//! * [`Layout::Packed`] (default): rows of `seq_len` tokens from the same streaming packer the
//!   learner trains with, behind the same shuffle buffer (`shuffle_tokens`: a record's copies
//!   land in rows far apart), padding included (the pad id is the tokenizer's end-of-text).
//!   Parquet: `input_ids`, `position_ids`, `labels` per row — everything a trainer that takes
//!   one row per sample (torchtitan-style) needs for document masking and the loss mask.
//!   Megatron: one sequence and one document per row — exactly the rows agentmill trains on.
//!   Note that Megatron's `GPTDataset` cuts its own samples of `seq_length + 1` tokens across
//!   sequences, so these rows do not stay aligned there; for a Megatron run prefer
//!   `documents`.
//! * [`Layout::Documents`]: one sequence per document (each ending in end-of-text), as Megatron's
//!   `preprocess_data.py` writes them, for trainers that pack for themselves (Megatron with
//!   `--reset-position-ids --reset-attention-mask` keeps documents apart at the end-of-text
//!   tokens). Parquet: `record_id`, `input_ids`. The loss mask does not survive this layout.
//!
//! With the run's `eval_fraction` (from `--config`), the records the learner holds out
//! ([`crate::eval::held_out`]: whole tasks, single pull requests) stay out of the export too, so
//! the held-out loss stays clean downstream; [`Split::HeldOut`] exports those records alone, as
//! the validation set of the trainer that takes over.
//!
//! Shards are `<prefix>_NNNNN.bin/.idx` ([`megatron`]) and `<prefix>_NNNNN.parquet`
//! ([`parquet`]), each closed after `shard_tokens` tokens; `<prefix>.json` ([`ExportReport`])
//! describes the export.

pub mod gguf;
pub mod megatron;
pub mod parquet;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use agentmill_proto::{ExitReason, TrajectoryRecord};
use serde::{Deserialize, Serialize};

use self::megatron::{IndexedDatasetWriter, TokenDtype};
use self::parquet::{ColumnKind, ParquetShardWriter, Value};
use crate::eval::held_out;
use crate::service::shuffle::{BufferedDoc, Shuffle};
use crate::mix::{Mixer, Recipe, RecipeError, Source};
use crate::pack::{Document, LossMask, PackConfig, PackError, PackedRow, Packer};
use crate::render::{AssistantTokens, Template, render};
use crate::tokenize::{Encoded, TextTokenizer, TokenizeError, TurnCounts};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be written.
    #[error("{action} {path}: {error}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// Parquet refused a write.
    #[error("{path}: parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// Parquet's message.
        message: String,
    },
    /// Data that the format cannot hold.
    #[error("{0}")]
    Format(String),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    /// The recipe cannot be followed.
    #[error("stages: {0}")]
    Recipe(#[from] RecipeError),
    /// Packing refused a document.
    #[error("packing: {0}")]
    Pack(#[from] PackError),
    /// The records could not be read.
    #[error(transparent)]
    Records(#[from] crate::records::RecordsError),
}

impl ExportError {
    fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ExportError + 'a {
        move |error| ExportError::Io { action, path: path.to_path_buf(), error }
    }
}

/// How tokens are laid out in the shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Packed rows of `seq_len` tokens, as the learner trains on them.
    #[default]
    Packed,
    /// One sequence per document.
    Documents,
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Layout, String> {
        match s {
            "packed" => Ok(Layout::Packed),
            "documents" => Ok(Layout::Documents),
            other => Err(format!("unknown layout {other:?}; use packed or documents")),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Packed => "packed",
            Layout::Documents => "documents",
        })
    }
}

/// Which side of the run's held-out split to export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// The records the run trains on (every record when nothing is held out).
    #[default]
    Train,
    /// Only the records the run holds out for evaluation.
    HeldOut,
}

/// What to export and where.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// Directory of the shards (created).
    pub out_dir: PathBuf,
    /// File name prefix of the shards.
    pub prefix: String,
    /// Packed rows or documents.
    pub layout: Layout,
    /// Tokens per packed row.
    pub seq_len: usize,
    /// Rows the streaming packer keeps open.
    pub max_open_rows: usize,
    /// The mix (copies, budgets, loss mask), as in training.
    pub recipe: Recipe,
    /// How env records become text.
    pub template: Template,
    /// Which tokens an assistant turn with the policy's ids exports (as in training).
    pub assistant_tokens: AssistantTokens,
    /// Write Megatron `.bin/.idx`.
    pub megatron: bool,
    /// Write Parquet.
    pub parquet: bool,
    /// A shard is closed after this many tokens (padding included).
    pub shard_tokens: u64,
    /// The run's held-out share (`eval_fraction`; 0: nothing held out).
    pub eval_fraction: f64,
    /// Which side of that split to write.
    pub split: Split,
    /// Tokens the shuffle buffer holds before the packer (packed layout; 0: arrival order).
    pub shuffle_tokens: u64,
    /// Seeds the shuffle buffer.
    pub seed: u64,
}

/// One shard's files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    /// Megatron data file.
    pub bin: Option<PathBuf>,
    /// Megatron index file.
    pub idx: Option<PathBuf>,
    /// Parquet file.
    pub parquet: Option<PathBuf>,
    /// Sequences (rows or documents).
    pub sequences: u64,
    /// Tokens, padding included.
    pub tokens: u64,
}

/// `<prefix>.json`: what an export wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportReport {
    /// The layout.
    pub layout: Layout,
    /// Tokens per row (packed layout).
    pub seq_len: usize,
    /// The tokenizer's vocabulary.
    pub vocab_size: usize,
    /// End-of-text id, ending every document (and padding packed rows).
    pub eos_id: u32,
    /// Token dtype of the Megatron files.
    pub dtype: TokenDtype,
    /// Records read.
    pub records_read: u64,
    /// Records exported.
    pub records_exported: u64,
    /// Infra failures left out.
    pub skipped_infra: u64,
    /// Cancelled episodes left out.
    pub skipped_cancelled: u64,
    /// Records the recipe left out.
    pub excluded: u64,
    /// Records with nothing to train under the loss mask.
    pub no_targets: u64,
    /// Entries that could not be decoded.
    pub invalid: u64,
    /// Records whose id was already exported.
    pub duplicates: u64,
    /// Records on the other side of the held-out split.
    #[serde(default)]
    pub other_split: u64,
    /// Assistant turns of the exported records that carried the policy's token ids, by how the
    /// tokenizer's tokens of their text compare.
    #[serde(default)]
    pub recorded_turns: TurnCounts,
    /// Documents written (copies included).
    pub documents: u64,
    /// Real (non-padding) tokens written.
    pub tokens: u64,
    /// Real tokens / token slots (packed layout; 1 for documents).
    pub packing_efficiency: f64,
    /// The shards.
    pub shards: Vec<Shard>,
}

struct OpenShard {
    megatron: Option<IndexedDatasetWriter>,
    parquet: Option<ParquetShardWriter>,
    sequences: u64,
    tokens: u64,
}

/// Writes records as shards; see the module doc.
pub struct Exporter {
    cfg: ExportConfig,
    tokenizer: TextTokenizer,
    mixer: Mixer,
    shuffle: Shuffle,
    packer: Packer,
    seen: HashSet<String>,
    shard: Option<OpenShard>,
    report: ExportReport,
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter").field("cfg", &self.cfg).field("report", &self.report).finish()
    }
}

impl Exporter {
    /// Starts an export (creates the directory).
    pub fn new(cfg: ExportConfig, tokenizer: TextTokenizer) -> Result<Exporter, ExportError> {
        if !cfg.megatron && !cfg.parquet {
            return Err(ExportError::Format("choose at least one format: megatron, parquet".into()));
        }
        std::fs::create_dir_all(&cfg.out_dir).map_err(ExportError::io("creating", &cfg.out_dir))?;
        let mixer = Mixer::new(cfg.recipe.clone())?;
        let pack = PackConfig { seq_len: cfg.seq_len, pad_id: tokenizer.pad_id, loss_mask: LossMask::Assistant };
        let packer = Packer::new(pack, cfg.max_open_rows)?;
        let report = ExportReport {
            layout: cfg.layout,
            seq_len: cfg.seq_len,
            vocab_size: tokenizer.vocab_size(),
            eos_id: tokenizer.eos_id,
            dtype: TokenDtype::for_vocab(tokenizer.vocab_size()),
            records_read: 0,
            records_exported: 0,
            skipped_infra: 0,
            skipped_cancelled: 0,
            excluded: 0,
            no_targets: 0,
            invalid: 0,
            duplicates: 0,
            other_split: 0,
            recorded_turns: TurnCounts::default(),
            documents: 0,
            tokens: 0,
            packing_efficiency: 0.0,
            shards: Vec::new(),
        };
        let shuffle = Shuffle::new(cfg.shuffle_tokens, cfg.seed);
        Ok(Exporter { cfg, tokenizer, mixer, shuffle, packer, seen: HashSet::new(), shard: None, report })
    }

    /// True when the recipe's last budget is spent (further records would be left out).
    pub fn recipe_complete(&self) -> bool {
        self.mixer.is_complete()
    }

    /// Counts an entry that could not be decoded.
    pub fn push_invalid(&mut self) {
        self.report.records_read += 1;
        self.report.invalid += 1;
    }

    /// Exports one record.
    pub fn push(&mut self, record: &TrajectoryRecord) -> Result<(), ExportError> {
        self.report.records_read += 1;
        if self.seen.contains(&record.record_id) {
            self.report.duplicates += 1;
            return Ok(());
        }
        let Some(rendered) = render(record, self.cfg.template) else {
            match record.exit_reason {
                Some(ExitReason::Cancelled) => self.report.skipped_cancelled += 1,
                _ => self.report.skipped_infra += 1,
            }
            return Ok(());
        };
        if held_out(record, self.cfg.eval_fraction) != (self.cfg.split == Split::HeldOut) {
            self.report.other_split += 1;
            return Ok(());
        }
        let copies = self.mixer.copies(&record.record_id, Source::of(record));
        if copies == 0 {
            self.report.excluded += 1;
            return Ok(());
        }
        let Encoded { ids, mask: assistant, turns } = self.tokenizer.encode_record(&rendered, self.cfg.assistant_tokens)?;
        let mask = match self.mixer.loss_mask() {
            LossMask::None => vec![true; ids.len()],
            LossMask::Assistant => assistant,
        };
        if !mask.iter().skip(1).any(|&m| m) {
            self.report.no_targets += 1;
            return Ok(());
        }
        self.seen.insert(record.record_id.clone());
        self.report.records_exported += 1;
        self.report.recorded_turns.add(&turns);
        self.mixer.add_tokens(ids.len() as u64 * u64::from(copies));
        let doc = Document::with_mask(ids, mask);
        for _ in 0..copies {
            self.report.documents += 1;
            self.report.tokens += doc.tokens.len() as u64;
            match self.cfg.layout {
                Layout::Documents => self.write_document(&record.record_id, &doc.tokens)?,
                Layout::Packed => {
                    let released = self.shuffle.push(BufferedDoc::new(0, doc.tokens.clone(), doc.loss_mask.as_deref().unwrap_or(&[])));
                    self.pack(released)?;
                }
            }
        }
        Ok(())
    }

    fn shard(&mut self) -> Result<&mut OpenShard, ExportError> {
        if self.shard.is_none() {
            let index = self.report.shards.len();
            let prefix = self.cfg.out_dir.join(format!("{}_{index:05}", self.cfg.prefix));
            let megatron =
                if self.cfg.megatron { Some(IndexedDatasetWriter::create(&prefix, self.report.dtype)?) } else { None };
            let parquet = if self.cfg.parquet {
                let columns: &[(&str, ColumnKind)] = match self.cfg.layout {
                    Layout::Packed => &[
                        ("input_ids", ColumnKind::IntList),
                        ("position_ids", ColumnKind::IntList),
                        ("labels", ColumnKind::IntList),
                    ],
                    Layout::Documents => &[("record_id", ColumnKind::Text), ("input_ids", ColumnKind::IntList)],
                };
                let mut path = prefix.into_os_string();
                path.push(".parquet");
                Some(ParquetShardWriter::create(&PathBuf::from(path), columns)?)
            } else {
                None
            };
            self.shard = Some(OpenShard { megatron, parquet, sequences: 0, tokens: 0 });
        }
        self.shard.as_mut().ok_or_else(|| ExportError::Format("no open shard".into()))
    }

    fn write_document(&mut self, record_id: &str, tokens: &[u32]) -> Result<(), ExportError> {
        let shard = self.shard()?;
        if let Some(m) = &mut shard.megatron {
            m.add_document(tokens)?;
        }
        if let Some(p) = &mut shard.parquet {
            p.push(vec![
                Value::Text(record_id.to_string()),
                Value::Ints(to_i32(tokens.iter().map(|&t| i64::from(t)))?),
            ])?;
        }
        shard.sequences += 1;
        shard.tokens += tokens.len() as u64;
        self.rotate()
    }

    fn write_row(&mut self, row: &PackedRow) -> Result<(), ExportError> {
        let shard = self.shard()?;
        if let Some(m) = &mut shard.megatron {
            let tokens: Vec<u32> = row
                .input_ids
                .iter()
                .map(|&t| u32::try_from(t).map_err(|_| ExportError::Format(format!("token id {t} is negative"))))
                .collect::<Result<_, _>>()?;
            m.add_document(&tokens)?;
        }
        if let Some(p) = &mut shard.parquet {
            p.push(vec![
                Value::Ints(to_i32(row.input_ids.iter().copied())?),
                Value::Ints(to_i32(row.position_ids.iter().copied())?),
                Value::Ints(to_i32(row.labels.iter().copied())?),
            ])?;
        }
        shard.sequences += 1;
        shard.tokens += row.input_ids.len() as u64;
        self.rotate()
    }

    fn rotate(&mut self) -> Result<(), ExportError> {
        if self.shard.as_ref().is_some_and(|s| s.tokens >= self.cfg.shard_tokens) {
            self.close_shard()?;
        }
        Ok(())
    }

    fn close_shard(&mut self) -> Result<(), ExportError> {
        let Some(shard) = self.shard.take() else { return Ok(()) };
        let (bin, idx) = match shard.megatron {
            Some(m) => {
                let (b, i) = m.finish()?;
                (Some(b), Some(i))
            }
            None => (None, None),
        };
        let parquet = shard.parquet.map(ParquetShardWriter::finish).transpose()?;
        self.report.shards.push(Shard { bin, idx, parquet, sequences: shard.sequences, tokens: shard.tokens });
        Ok(())
    }

    /// Exports up to `limit` records of `source`, stopping early when the recipe is complete.
    /// Returns how many were read.
    pub async fn push_source(
        &mut self,
        source: &crate::records::RecordSource,
        limit: usize,
    ) -> Result<usize, ExportError> {
        let mut failed = None;
        let read = source
            .for_each(limit, |record| {
                let pushed = match record {
                    Ok(r) => self.push(&r),
                    Err(reason) => {
                        tracing::warn!("{reason}; counted invalid");
                        self.push_invalid();
                        Ok(())
                    }
                };
                match pushed {
                    Ok(()) => !self.recipe_complete(),
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            })
            .await?;
        match failed {
            Some(e) => Err(e),
            None => Ok(read),
        }
    }

    /// Packs copies the shuffle buffer released and writes the rows they finish.
    fn pack(&mut self, docs: Vec<BufferedDoc>) -> Result<(), ExportError> {
        for doc in docs {
            self.packer.push(&doc.into_document())?;
            while let Some(row) = self.packer.pop_row() {
                self.write_row(&row)?;
            }
        }
        Ok(())
    }

    /// Packs and writes what is left, closes the last shard and writes `<prefix>.json`.
    pub fn finish(mut self) -> Result<ExportReport, ExportError> {
        let rest = self.shuffle.drain();
        self.pack(rest)?;
        self.packer.finish();
        while let Some(row) = self.packer.pop_row() {
            self.write_row(&row)?;
        }
        self.close_shard()?;
        self.report.packing_efficiency = match self.cfg.layout {
            Layout::Packed => self.packer.stats().efficiency(),
            Layout::Documents => 1.0,
        };
        let path = self.cfg.out_dir.join(format!("{}.json", self.cfg.prefix));
        let text = serde_json::to_string_pretty(&self.report).map_err(|e| ExportError::Format(e.to_string()))?;
        std::fs::write(&path, text).map_err(ExportError::io("writing", &path))?;
        Ok(self.report)
    }
}

fn to_i32(values: impl Iterator<Item = i64>) -> Result<Vec<i32>, ExportError> {
    values.map(|v| i32::try_from(v).map_err(|_| ExportError::Format(format!("value {v} does not fit int32")))).collect()
}
