//! `summary.json`: why a run stopped, what became of its records and its figures.

use super::*;

/// The run's summary, in the output directory.
pub const SUMMARY_FILE: &str = "summary.json";
/// Schema of [`RunSummary`].
pub const SUMMARY_FORMAT: &str = "agentmill.learner_summary/v1";

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `max_steps` reached.
    MaxSteps,
    /// The stream was empty for `until_idle`.
    UntilIdle,
    /// The recipe's last token budget is spent.
    RecipeComplete,
    /// SIGTERM / Ctrl-C (or the caller's shutdown future).
    Shutdown,
    /// The stream stayed empty for `until_idle` before any record arrived to learn a tokenizer.
    NoData,
}

/// Records by what became of them, over the whole run: the run's [`Counters`] (the same names
/// in `summary.json`) and the `env` total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSummary {
    /// `env` records trained (pass + fail).
    pub env: u64,
    /// Every outcome counted, by the names of the data position.
    #[serde(flatten)]
    pub counts: Counters,
}

/// The counters read through the summary (`summary.records.env_pass`).
impl std::ops::Deref for RecordSummary {
    type Target = Counters;

    fn deref(&self) -> &Counters {
        &self.counts
    }
}

impl From<&Counters> for RecordSummary {
    fn from(c: &Counters) -> RecordSummary {
        RecordSummary { env: c.env_pass + c.env_fail, counts: c.clone() }
    }
}

/// `summary.json`: what the run did (counts over the whole run; throughput over this process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Always [`SUMMARY_FORMAT`].
    pub format: String,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Optimizer steps completed (across resumes).
    pub steps: u64,
    /// Steps this process took.
    pub steps_this_process: u64,
    /// Real tokens trained (across resumes).
    pub tokens_trained: u64,
    /// Real tokens this process trained.
    pub tokens_this_process: u64,
    /// Loss of the run's first step.
    pub loss_first: Option<f64>,
    /// Loss of its last step.
    pub loss_last: Option<f64>,
    /// Records by outcome.
    pub records: RecordSummary,
    /// Real tokens / token slots of all rows packed.
    pub packing_efficiency: f64,
    /// Tokens this process trained per second of its training loop (waiting for data included).
    pub tokens_per_second: f64,
    /// Tokens per second spent in forward/backward/update alone.
    pub compute_tokens_per_second: f64,
    /// Model FLOPs utilisation of the training loop (CUDA only).
    pub mfu: Option<f64>,
    /// Seconds this process ran.
    pub wall_seconds: f64,
    /// Seconds the trainer waited for data.
    pub trainer_wait_seconds: f64,
    /// Checkpoints this process committed.
    pub checkpoints_this_process: u64,
    /// The newest committed checkpoint.
    pub checkpoint: Option<PathBuf>,
    /// Model parameters.
    pub parameters: u64,
    /// Where it trained.
    pub device: String,
    /// The held-out loss at the run's first evaluation (`eval_fraction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_loss_first: Option<f64>,
    /// The latest evaluation of this process, by source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalResult>,
    /// Assistant turns with the policy's token ids this process tokenized, by how the
    /// tokenizer's tokens of their text compare (re-tokenization drift).
    #[serde(default, skip_serializing_if = "TurnCounts::is_empty")]
    pub recorded_turns: TurnCounts,
}

impl RunSummary {
    pub(super) fn empty(stop_reason: StopReason, device: Device, wall: Duration) -> RunSummary {
        RunSummary {
            format: SUMMARY_FORMAT.to_string(),
            stop_reason,
            steps: 0,
            steps_this_process: 0,
            tokens_trained: 0,
            tokens_this_process: 0,
            loss_first: None,
            loss_last: None,
            records: RecordSummary::default(),
            packing_efficiency: 0.0,
            tokens_per_second: 0.0,
            compute_tokens_per_second: 0.0,
            mfu: None,
            wall_seconds: wall.as_secs_f64(),
            trainer_wait_seconds: 0.0,
            checkpoints_this_process: 0,
            checkpoint: None,
            parameters: 0,
            device: format!("{device:?}"),
            eval_loss_first: None,
            eval: None,
            recorded_turns: TurnCounts::default(),
        }
    }
}
