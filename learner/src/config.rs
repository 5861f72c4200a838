//! The learner's configuration: one TOML file, every key with a default, overridden by
//! environment variables, overridden by flags.
//!
//! Environment variables: `AGENTMILL_REDIS_URL` and `AGENTMILL_STREAM` are shared with the
//! worker (one machine, one Redis, one stream); every top-level key can also be set as
//! `AGENTMILL_LEARNER_<KEY>` (e.g. `AGENTMILL_LEARNER_SEQ_LEN=2048`,
//! `AGENTMILL_LEARNER_UNTIL_IDLE=30s`, `AGENTMILL_LEARNER_GROUP`, which is also the worker's
//! `learner_group`), which wins over the shared name. The learner's own prefix keeps the
//! coordinator's `AGENTMILL_METRICS_LISTEN` from moving the learner's metrics port. The recipe
//! (`[[stages]]`) comes from the file only.
//!
//! `deploy/config/learner.toml` is the commented example; a test loads it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentmill_proto::config::EnvLayer;
use serde::{Deserialize, Serialize};

use crate::mix::{Recipe, RecipeError};
use crate::render::{AssistantTokens, Template};
use crate::schedule::PAPER_PEAK_LR;
use crate::train::MemoryPlan;

/// Peak learning rate used for the embedded tiny model when none is configured: the paper's
/// 8e-5 is tuned for billions of parameters and barely moves a model of a few hundred thousand.
pub const TINY_MODEL_PEAK_LR: f64 = 1e-3;

/// Optimizer steps the learning-rate schedule spans when nothing else fixes the run's length
/// (no `schedule_steps`, no `max_steps`, a recipe without budgets).
pub const DEFAULT_SCHEDULE_STEPS: u64 = 1000;

/// Everything the learner service can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnerConfig {
    /// Redis holding the trajectory stream.
    pub redis_url: String,
    /// The stream key.
    pub stream: String,
    /// Consumer group: one per learner job (the worker's `learner_group` watches its lag).
    pub group: String,
    /// This process's consumer name in the group; keep it stable across restarts so the
    /// entries it left pending are re-delivered to it at once.
    pub consumer: String,
    /// Entries per read.
    pub read_batch: usize,
    /// How long one read waits for new entries.
    #[serde(with = "humantime_serde")]
    pub read_block: Duration,
    /// Entries another consumer left pending this long are claimed.
    #[serde(with = "humantime_serde")]
    pub claim_idle: Duration,

    /// Where checkpoints, the tokenizer, the ledger and the summary go.
    pub output_dir: PathBuf,
    /// A checkpoint every this many optimizer steps (records are acknowledged at checkpoints).
    pub checkpoint_every: u64,
    /// Committed checkpoints kept (older ones are deleted).
    pub keep_checkpoints: usize,

    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// libtorch CPU threads (0: libtorch's default).
    pub threads: usize,
    /// A Hugging Face checkpoint directory to continue training (weights; fresh optimizer).
    pub model: Option<PathBuf>,
    /// A Hugging Face `config.json` for a freshly initialised model (default: the embedded tiny
    /// model, with its vocabulary sized to the tokenizer).
    pub model_config: Option<PathBuf>,
    /// Seed of the weight initialisation.
    pub seed: u64,

    /// A Hugging Face `tokenizer.json`. None: `output_dir/tokenizer.json` when it exists, else a
    /// byte-level BPE trained on the first records (see `tokenizer_bootstrap_records`).
    pub tokenizer: Option<PathBuf>,
    /// Vocabulary of a tokenizer trained here.
    pub tokenizer_vocab: usize,
    /// Trainable records a tokenizer trained here learns from (the first ones of the stream).
    pub tokenizer_bootstrap_records: usize,
    /// A JSONL file of records to train the tokenizer on instead of the stream's first records.
    pub tokenizer_corpus: Option<PathBuf>,
    /// How env records become text.
    pub template: Template,
    /// Which tokens an assistant turn carrying the policy's sampled ids trains on: `rendered`
    /// (the tokenizer's tokens of the template's text) or `recorded` (the policy's own ids,
    /// which needs `tokenizer` to be the policy's `tokenizer.json`). Either way the learner
    /// counts how the two compare (`agentmill_learner_recorded_turns_total`).
    pub assistant_tokens: AssistantTokens,

    /// Tokens per packed row.
    pub seq_len: usize,
    /// Rows per forward/backward pass.
    pub micro_batch_rows: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    pub grad_accum: usize,
    /// Rows the streaming packer keeps open (more: fuller rows, more memory).
    pub max_open_rows: usize,
    /// Optimizer steps of data queued between the stream reader and the trainer.
    pub queue_steps: usize,
    /// Recompute each decoder layer in the backward pass instead of keeping its activations
    /// (activation memory of one layer instead of all, for about a third more compute).
    pub activation_checkpointing: bool,
    /// Run the LM head and the loss on this many tokens at a time, so a micro-batch's
    /// `[tokens, vocab]` logits never exist at once (0: all at once).
    pub loss_chunk_tokens: usize,
    /// Optimizer steps' worth of tokens (`micro_batch_rows · grad_accum · seq_len` each) the
    /// shuffle buffer holds before the packer, so a record's copies and a task's rollouts
    /// spread over many steps (0: none).
    pub shuffle_steps: u64,

    /// Peak learning rate. None: the paper's 8e-5, or 1e-3 for the embedded tiny model.
    pub peak_lr: Option<f64>,
    /// Share of the schedule spent warming up (paper: 0.05).
    pub warmup_fraction: f64,
    /// Where the cosine ends, as a share of the peak.
    pub final_lr_ratio: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Gradient clipping threshold (0: never).
    pub max_grad_norm: f64,
    /// Steps the schedule spans. None: `max_steps`, else the recipe's token budget in steps,
    /// else 1000.
    pub schedule_steps: Option<u64>,

    /// Stop after this many optimizer steps in all (counted across resumes), with a checkpoint.
    pub max_steps: Option<u64>,
    /// Stop once the stream has been empty this long, after training what arrived and a final
    /// checkpoint.
    #[serde(with = "humantime_serde")]
    pub until_idle: Option<Duration>,
    /// When the stream has been empty this long, pad and train what the packer holds and
    /// checkpoint, so a quiet stream does not keep records unacknowledged. None: never.
    #[serde(with = "humantime_serde")]
    pub flush_after_idle: Option<Duration>,

    /// Address of the HTTP server for `/metrics` (Prometheus); None disables it.
    #[serde(with = "agentmill_proto::config::optional_addr")]
    pub metrics_listen: Option<SocketAddr>,
    /// A progress line every this many steps.
    pub log_every: u64,
    /// Peak dense bf16 TFLOP/s of one GPU, for MFU (989: H100 SXM; 1979 would count sparsity).
    pub peak_tflops: f64,
    /// The learner's status report (`<stream>:learner` in Redis, for the coordinator and
    /// `agentmill top`) is rewritten this often while it trains.
    #[serde(with = "humantime_serde")]
    pub status_interval: Duration,

    /// Share of the stream held out for evaluation, by task (env) or pull request (ctx); 0: none.
    /// Fixed for a run: a resumed run must keep it.
    pub eval_fraction: f64,
    /// Tokens of held-out records the evaluation set keeps at most.
    pub eval_tokens: u64,
    /// An evaluation every this many optimizer steps (0: only after the last step).
    pub eval_every: u64,

    /// The coordinator's Redis key namespace (its `namespace`, in the same Redis as the
    /// stream): an `env` record of a task the coordinator knows trains only if its attempt is
    /// the one the coordinator accepted (read from the task's status, `{ns}:task:{id}`).
    /// Records of tasks the coordinator does not know (a `local` run published by hand) and
    /// `ctx` records train as they come. Empty: no check, every record trains (a learner
    /// without a coordinator, or one reading another Redis).
    pub coordinator_namespace: String,
    /// How long an `env` record whose rollout has no accepted attempt yet is held
    /// (unacknowledged, checked again) before it is settled as `unaccepted` and never trained.
    #[serde(with = "humantime_serde")]
    pub acceptance_timeout: Duration,
    /// Records held for acceptance at most; while this many wait, no new entries are read.
    pub acceptance_max_held: usize,

    /// The mix, stage by stage (default: the paper's, env-pass ×3).
    pub stages: Recipe,
}

impl Default for LearnerConfig {
    fn default() -> Self {
        LearnerConfig {
            redis_url: "redis://127.0.0.1:6379/".into(),
            stream: agentmill_proto::wire::DEFAULT_STREAM.into(),
            group: "learner".into(),
            consumer: "learner".into(),
            read_batch: 64,
            read_block: Duration::from_secs(1),
            claim_idle: Duration::from_secs(600),
            output_dir: PathBuf::from("runs/learner"),
            checkpoint_every: 100,
            keep_checkpoints: 3,
            device: "auto".into(),
            threads: 0,
            model: None,
            model_config: None,
            seed: 0,
            tokenizer: None,
            tokenizer_vocab: 8192,
            tokenizer_bootstrap_records: 1000,
            tokenizer_corpus: None,
            template: Template::default(),
            assistant_tokens: AssistantTokens::default(),
            seq_len: 1024,
            micro_batch_rows: 4,
            grad_accum: 1,
            max_open_rows: 64,
            queue_steps: 2,
            activation_checkpointing: false,
            loss_chunk_tokens: 0,
            shuffle_steps: 8,
            peak_lr: None,
            warmup_fraction: crate::schedule::PAPER_WARMUP_FRACTION,
            final_lr_ratio: crate::schedule::DEFAULT_FINAL_LR_RATIO,
            weight_decay: 0.1,
            max_grad_norm: 1.0,
            schedule_steps: None,
            max_steps: None,
            until_idle: None,
            flush_after_idle: Some(Duration::from_secs(60)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9465))),
            log_every: 10,
            peak_tflops: 989.0,
            status_interval: Duration::from_secs(2),
            eval_fraction: 0.0,
            eval_tokens: 65_536,
            eval_every: 100,
            coordinator_namespace: "agentmill".into(),
            acceptance_timeout: Duration::from_secs(900),
            acceptance_max_held: 10_000,
            stages: Recipe::paper(),
        }
    }
}

/// A configuration that does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, an environment variable or a value (see [`agentmill_proto::config::ConfigError`]).
    #[error(transparent)]
    Layered(#[from] agentmill_proto::config::ConfigError),
    /// The recipe cannot be followed.
    #[error("configuration: stages: {0}")]
    Recipe(#[from] RecipeError),
}

/// Keys shared with the other services, read from `AGENTMILL_<KEY>`.
const SHARED_ENV_KEYS: [&str; 2] = ["redis_url", "stream"];

/// Keys read from `AGENTMILL_LEARNER_<KEY>` (every scalar key; the recipe comes from the file).
const LEARNER_ENV_KEYS: [&str; 48] = [
    "redis_url",
    "stream",
    "group",
    "consumer",
    "read_batch",
    "read_block",
    "claim_idle",
    "output_dir",
    "checkpoint_every",
    "keep_checkpoints",
    "device",
    "threads",
    "model",
    "model_config",
    "seed",
    "tokenizer",
    "tokenizer_vocab",
    "tokenizer_bootstrap_records",
    "tokenizer_corpus",
    "template",
    "assistant_tokens",
    "seq_len",
    "micro_batch_rows",
    "grad_accum",
    "max_open_rows",
    "queue_steps",
    "activation_checkpointing",
    "loss_chunk_tokens",
    "shuffle_steps",
    "peak_lr",
    "warmup_fraction",
    "final_lr_ratio",
    "weight_decay",
    "max_grad_norm",
    "schedule_steps",
    "max_steps",
    "until_idle",
    "flush_after_idle",
    "metrics_listen",
    "log_every",
    "peak_tflops",
    "status_interval",
    "eval_fraction",
    "eval_tokens",
    "eval_every",
    "coordinator_namespace",
    "acceptance_timeout",
    "acceptance_max_held",
];

impl LearnerConfig {
    /// Loads defaults ← `file` (when given) ← `AGENTMILL_REDIS_URL` / `AGENTMILL_STREAM` ←
    /// `AGENTMILL_LEARNER_*` ← `overrides` (flags).
    pub fn load(file: Option<&Path>, overrides: &figment::value::Dict) -> Result<LearnerConfig, ConfigError> {
        let layers = [
            EnvLayer { prefix: "AGENTMILL_", keys: &SHARED_ENV_KEYS },
            EnvLayer { prefix: "AGENTMILL_LEARNER_", keys: &LEARNER_ENV_KEYS },
        ];
        let cfg: LearnerConfig = agentmill_proto::config::load(file, &layers, overrides)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, reason: &str| Err(ConfigError::Layered(agentmill_proto::config::ConfigError::invalid(key, reason)));
        if self.group.is_empty() || self.consumer.is_empty() {
            return bad("group", "group and consumer must be non-empty names");
        }
        if self.read_batch == 0 {
            return bad("read_batch", "must be at least 1");
        }
        if self.acceptance_max_held == 0 {
            return bad("acceptance_max_held", "must be at least 1 (set coordinator_namespace = \"\" to train without the acceptance check)");
        }
        if self.coordinator_namespace.contains(char::is_whitespace) {
            return bad("coordinator_namespace", "must be the coordinator's `namespace` (no spaces), or empty to turn the acceptance check off");
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every", "must be at least 1 (records are acknowledged only at checkpoints)");
        }
        if self.keep_checkpoints == 0 {
            return bad("keep_checkpoints", "must be at least 1 (the run resumes from the newest)");
        }
        if self.seq_len < 16 {
            return bad("seq_len", "must be at least 16 tokens");
        }
        if self.micro_batch_rows == 0 || self.grad_accum == 0 {
            return bad("micro_batch_rows", "micro_batch_rows and grad_accum must be at least 1");
        }
        if self.max_open_rows == 0 || self.queue_steps == 0 {
            return bad("max_open_rows", "max_open_rows and queue_steps must be at least 1");
        }
        if self.model.is_some() && self.model_config.is_some() {
            return bad("model", "set `model` (continue a checkpoint) or `model_config` (a fresh model), not both");
        }
        if self.tokenizer_vocab < 300 {
            return bad("tokenizer_vocab", "must be at least 300 (256 bytes, the special tokens and some merges)");
        }
        if self.assistant_tokens == AssistantTokens::Recorded && self.tokenizer.is_none() {
            return bad(
                "assistant_tokens",
                "\"recorded\" trains the policy's own token ids, so `tokenizer` must be the policy's tokenizer.json (a tokenizer trained here has other ids); set `tokenizer`, or use \"rendered\"",
            );
        }
        if self.tokenizer_bootstrap_records == 0 {
            return bad("tokenizer_bootstrap_records", "must be at least 1");
        }
        if self.peak_lr.is_some_and(|lr| !(lr > 0.0 && lr.is_finite())) {
            return bad("peak_lr", "must be a positive number");
        }
        if !(0.0..1.0).contains(&self.warmup_fraction) {
            return bad("warmup_fraction", "must be in [0, 1)");
        }
        if !(0.0..=1.0).contains(&self.final_lr_ratio) {
            return bad("final_lr_ratio", "must be in [0, 1]");
        }
        if self.weight_decay < 0.0 || self.max_grad_norm < 0.0 {
            return bad("weight_decay", "weight_decay and max_grad_norm must be ≥ 0");
        }
        if self.schedule_steps == Some(0) || self.max_steps == Some(0) {
            return bad("max_steps", "max_steps and schedule_steps must be at least 1 when set");
        }
        if self.log_every == 0 {
            return bad("log_every", "must be at least 1");
        }
        if self.peak_tflops.is_nan() || self.peak_tflops <= 0.0 {
            return bad("peak_tflops", "must be positive (989 for an H100 SXM's dense bf16)");
        }
        if self.status_interval.is_zero() {
            return bad("status_interval", "must be positive (e.g. \"2s\")");
        }
        if self.status_interval.as_secs() >= agentmill_proto::stream::LEARNER_STATUS_TTL_SECS {
            return bad(
                "status_interval",
                &format!(
                    "must be shorter than the report's {}s expiry, or the learner drops out of view between reports",
                    agentmill_proto::stream::LEARNER_STATUS_TTL_SECS
                ),
            );
        }
        if !(0.0..1.0).contains(&self.eval_fraction) {
            return bad("eval_fraction", "must be in [0, 1): the share of tasks held out for evaluation (0: none)");
        }
        if self.eval_fraction > 0.0 && self.eval_tokens < 2 {
            return bad("eval_tokens", "must be at least 2 when eval_fraction is set (a document needs 2 tokens)");
        }
        self.stages.validate()?;
        Ok(())
    }

    /// How the trainer trades compute for memory.
    pub fn memory_plan(&self) -> MemoryPlan {
        MemoryPlan {
            activation_checkpointing: self.activation_checkpointing,
            loss_chunk_tokens: self.loss_chunk_tokens,
        }
    }

    /// Rows per optimizer step.
    pub fn rows_per_step(&self) -> usize {
        self.micro_batch_rows * self.grad_accum
    }

    /// Tokens the shuffle buffer holds: `shuffle_steps` steps of rows of `seq_len` tokens.
    pub fn shuffle_tokens(&self, seq_len: usize) -> u64 {
        self.shuffle_steps.saturating_mul(self.rows_per_step().saturating_mul(seq_len) as u64)
    }

    /// The peak learning rate this configuration trains with.
    pub fn effective_peak_lr(&self) -> f64 {
        match self.peak_lr {
            Some(lr) => lr,
            None if self.model.is_none() && self.model_config.is_none() => TINY_MODEL_PEAK_LR,
            None => PAPER_PEAK_LR,
        }
    }

    /// The number of optimizer steps the learning-rate schedule spans.
    pub fn effective_schedule_steps(&self) -> u64 {
        if let Some(steps) = self.schedule_steps.or(self.max_steps) {
            return steps;
        }
        let tokens_per_step = (self.rows_per_step() * self.seq_len) as u64;
        match self.stages.total_tokens() {
            Some(tokens) => tokens.div_ceil(tokens_per_step).max(1),
            None => DEFAULT_SCHEDULE_STEPS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every top-level key but the recipe can be set as `AGENTMILL_LEARNER_<KEY>`.
    #[test]
    fn every_scalar_key_has_an_environment_variable() {
        let value = serde_json::to_value(LearnerConfig::default()).expect("serializes");
        let keys = value.as_object().expect("a table").keys().cloned().collect::<Vec<_>>();
        for key in keys.iter().filter(|k| k.as_str() != "stages") {
            assert!(LEARNER_ENV_KEYS.contains(&key.as_str()), "{key} has no AGENTMILL_LEARNER_ variable");
        }
        for key in LEARNER_ENV_KEYS {
            assert!(keys.iter().any(|k| k == key), "{key} is not a configuration key");
        }
    }

    #[test]
    fn defaults_are_valid() {
        LearnerConfig::default().validate().expect("defaults validate");
        assert_eq!(LearnerConfig::default().effective_peak_lr(), TINY_MODEL_PEAK_LR);
        assert_eq!(LearnerConfig::default().effective_schedule_steps(), DEFAULT_SCHEDULE_STEPS);
    }

    #[test]
    fn the_example_loads_and_equals_the_defaults_it_documents() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/learner.toml");
        // The file alone: an AGENTMILL_* variable in the developer's shell must not change it.
        let cfg: LearnerConfig =
            agentmill_proto::config::load(Some(&path), &[], &Default::default()).expect("the example parses");
        cfg.validate().expect("the example validates");
        // The example shows the defaults, with the paper's recipe spelled out.
        assert_eq!(cfg, LearnerConfig::default());
    }

    #[test]
    fn bad_values_name_the_key() {
        let cfg = LearnerConfig { checkpoint_every: 0, ..Default::default() };
        assert!(cfg.validate().expect_err("refused").to_string().contains("checkpoint_every"));
        let cfg = LearnerConfig { model: Some("a".into()), model_config: Some("b".into()), ..Default::default() };
        assert!(cfg.validate().expect_err("refused").to_string().contains("not both"));
        let cfg = LearnerConfig { eval_fraction: 1.0, ..Default::default() };
        assert!(cfg.validate().expect_err("refused").to_string().contains("eval_fraction"));
        let cfg = LearnerConfig { assistant_tokens: AssistantTokens::Recorded, ..Default::default() };
        let err = cfg.validate().expect_err("refused").to_string();
        assert!(err.contains("assistant_tokens") && err.contains("policy's tokenizer.json"), "{err}");
        let cfg = LearnerConfig { assistant_tokens: AssistantTokens::Recorded, tokenizer: Some("tokenizer.json".into()), ..Default::default() };
        cfg.validate().expect("recorded ids with the policy's tokenizer");
    }

    #[test]
    fn the_schedule_follows_the_budget_when_nothing_else_fixes_it() {
        let mut cfg = LearnerConfig { seq_len: 100, micro_batch_rows: 2, grad_accum: 5, ..Default::default() };
        cfg.stages.0[0].tokens = 10_500;
        assert_eq!(cfg.effective_schedule_steps(), 11);
        cfg.max_steps = Some(7);
        assert_eq!(cfg.effective_schedule_steps(), 7);
        cfg.schedule_steps = Some(9);
        assert_eq!(cfg.effective_schedule_steps(), 9);
    }

    #[test]
    fn the_shuffle_buffer_is_sized_in_steps_of_rows() {
        let cfg = LearnerConfig { seq_len: 1024, micro_batch_rows: 4, grad_accum: 2, ..Default::default() };
        assert_eq!(cfg.shuffle_tokens(1024), 8 * 8 * 1024);
        let huge = LearnerConfig { shuffle_steps: u64::MAX, ..cfg };
        assert_eq!(huge.shuffle_tokens(1024), u64::MAX, "saturates instead of overflowing");
    }
}
