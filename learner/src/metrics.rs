//! The learner's Prometheus metrics, served at `/metrics` on `metrics_listen`.
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `agentmill_learner_step` | gauge | optimizer steps completed (across resumes) |
//! | `agentmill_learner_tokens_trained_total` | counter | real (non-padding) tokens trained by this process |
//! | `agentmill_learner_tokens_per_second` | gauge | tokens trained per second over the last progress window |
//! | `agentmill_learner_loss` | gauge | mean next-token loss of the last step |
//! | `agentmill_learner_loss_by_source{source}` | gauge | mean next-token loss of the last step's tokens of each source (`env-pass`, `env-fail`, `ctx`); a source absent from the step keeps its last value |
//! | `agentmill_learner_learning_rate` | gauge | learning rate of the last step |
//! | `agentmill_learner_grad_norm` | gauge | global gradient norm of the last step (before clipping) |
//! | `agentmill_learner_mfu` | gauge | model FLOPs utilisation, 0–1: 6·parameters·tokens/s ÷ (`peak_tflops`·10¹²); CUDA only, absent on the CPU |
//! | `agentmill_learner_stream_lag` | gauge | entries of the stream not yet delivered to the group plus delivered and unacknowledged |
//! | `agentmill_learner_records_total{kind,outcome}` | counter | records read, by kind (`env`, `ctx`, `unknown`) and what became of them: `trained` (in a checkpoint), `infra` / `cancelled` (skipped: not the model's doing), `excluded` (rate 0 in the stage), `no_targets` (nothing to train under the loss mask), `invalid` (undecodable), `held_out` (kept for evaluation, never trained), `superseded` (an `env` record of an attempt the coordinator did not accept: never trained), `unaccepted` (an `env` record whose rollout accepted no attempt within `acceptance_timeout`: never trained) |
//! | `agentmill_learner_records_awaiting_acceptance` | gauge | `env` records read whose rollout has no accepted attempt yet: held, unacknowledged, and checked again until the coordinator decides (bounded by `acceptance_max_held` and `acceptance_timeout`) |
//! | `agentmill_learner_records_per_second{kind}` | gauge | records admitted for training per second, by kind (over ~10 s) |
//! | `agentmill_learner_records_deduped_total` | counter | entries whose `record_id` was already trained or in flight (published twice) |
//! | `agentmill_learner_packing_efficiency` | gauge | real tokens ÷ token slots of the rows packed so far |
//! | `agentmill_learner_acked_total` | counter | stream entries acknowledged (each after the checkpoint that holds it) |
//! | `agentmill_learner_checkpoints_total` | counter | checkpoints committed |
//! | `agentmill_learner_checkpoint_seconds` | histogram | time to write one checkpoint |
//! | `agentmill_learner_trainer_wait_seconds_total` | counter | time the trainer waited for data (high: the stream or tokenization is the bottleneck) |
//! | `agentmill_learner_queued_steps` | gauge | optimizer steps of data waiting for the trainer |
//! | `agentmill_learner_group_recreated_total` | counter | times the consumer group was found gone (Redis lost its data) and created again |
//! | `agentmill_learner_eval_loss{source}` | gauge | mean next-token loss on the held-out set at the last evaluation, by source (`env-pass`, `env-fail`, `ctx`) and `all`; absent until the first evaluation (`eval_fraction`) |
//! | `agentmill_learner_eval_tokens` | gauge | target tokens the last evaluation measured |
//! | `agentmill_learner_recorded_turns_total{outcome}` | counter | assistant turns that carried the policy's sampled token ids, by how the tokenizer's tokens of their rendered text compare: `match`, `drift` (other ids of the same text: re-tokenization drift), `other_text` (ids of another text than the record's turn: never trained), `out_of_vocab` (an id the tokenizer lacks: not the policy's tokenizer), `unmapped` (a sampled token's text, from a server that gives no ids, that is no single id's text), `misaligned` (the turn does not start and end on a token boundary) |

use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::model::Qwen2Config;

/// Every metric the learner sets, registered in its own registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Steps completed.
    pub step: IntGauge,
    /// Tokens trained by this process.
    pub tokens: IntCounter,
    /// Tokens per second.
    pub tokens_per_second: Gauge,
    /// Last loss.
    pub loss: Gauge,
    /// Last loss by source.
    pub loss_by_source: GaugeVec,
    /// Last learning rate.
    pub learning_rate: Gauge,
    /// Last gradient norm.
    pub grad_norm: Gauge,
    /// Model FLOPs utilisation (registered on CUDA only).
    pub mfu: Gauge,
    /// Stream lag.
    pub stream_lag: IntGauge,
    /// Records by kind and outcome.
    pub records: IntCounterVec,
    /// Admitted records per second by kind.
    pub records_per_second: GaugeVec,
    /// Duplicates.
    pub deduped: IntCounter,
    /// Packing efficiency.
    pub packing_efficiency: Gauge,
    /// Entries acknowledged.
    pub acked: IntCounter,
    /// Checkpoints committed.
    pub checkpoints: IntCounter,
    /// Checkpoint write time.
    pub checkpoint_seconds: Histogram,
    /// Trainer waiting for data.
    pub trainer_wait_seconds: Counter,
    /// Steps queued for the trainer.
    pub queued_steps: IntGauge,
    /// Consumer group recreations.
    pub group_recreated: IntCounter,
    /// Records held until the coordinator accepts an attempt of their rollout.
    pub awaiting_acceptance: IntGauge,
    /// Held-out loss by source (and `all`).
    pub eval_loss: GaugeVec,
    /// Target tokens of the last evaluation.
    pub eval_tokens: IntGauge,
    /// Assistant turns with recorded token ids, by outcome.
    pub recorded_turns: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric; `mfu` only when `with_mfu` (a CUDA device).
    pub fn new(with_mfu: bool) -> Metrics {
        let registry = Registry::new();
        let p = "agentmill_learner_";
        let gauge = |name: &str, help: &str| Gauge::new(format!("{p}{name}"), help).expect("valid metric");
        let step = IntGauge::new(format!("{p}step"), "Optimizer steps completed").expect("valid metric");
        let tokens = IntCounter::new(format!("{p}tokens_trained_total"), "Real tokens trained").expect("valid metric");
        let tokens_per_second = gauge("tokens_per_second", "Tokens trained per second (last window)");
        let loss = gauge("loss", "Mean next-token loss of the last step");
        let loss_by_source = GaugeVec::new(
            Opts::new(format!("{p}loss_by_source"), "Mean next-token loss of the last step's tokens of each source"),
            &["source"],
        )
        .expect("valid metric");
        let learning_rate = gauge("learning_rate", "Learning rate of the last step");
        let grad_norm = gauge("grad_norm", "Gradient norm of the last step, before clipping");
        let mfu = gauge("mfu", "Model FLOPs utilisation (0-1)");
        let stream_lag = IntGauge::new(format!("{p}stream_lag"), "Stream entries not yet acknowledged by the group")
            .expect("valid metric");
        let records = IntCounterVec::new(
            Opts::new(format!("{p}records_total"), "Records by kind and outcome"),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        let records_per_second =
            GaugeVec::new(Opts::new(format!("{p}records_per_second"), "Records admitted per second"), &["kind"])
                .expect("valid metric");
        let deduped = IntCounter::new(format!("{p}records_deduped_total"), "Entries whose record_id was already seen")
            .expect("valid metric");
        let packing_efficiency = gauge("packing_efficiency", "Real tokens / token slots of the packed rows");
        let acked = IntCounter::new(format!("{p}acked_total"), "Stream entries acknowledged").expect("valid metric");
        let checkpoints =
            IntCounter::new(format!("{p}checkpoints_total"), "Checkpoints committed").expect("valid metric");
        let checkpoint_seconds = Histogram::with_opts(
            HistogramOpts::new(format!("{p}checkpoint_seconds"), "Time to write one checkpoint")
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1200.0]),
        )
        .expect("valid metric");
        let trainer_wait_seconds =
            Counter::new(format!("{p}trainer_wait_seconds_total"), "Time the trainer waited for data")
                .expect("valid metric");
        let queued_steps = IntGauge::new(format!("{p}queued_steps"), "Optimizer steps of data waiting for the trainer")
            .expect("valid metric");
        let group_recreated = IntCounter::new(
            format!("{p}group_recreated_total"),
            "Times the consumer group was gone (Redis lost its data) and was created again",
        )
        .expect("valid metric");
        let awaiting_acceptance = IntGauge::new(
            format!("{p}records_awaiting_acceptance"),
            "Env records held (unacknowledged) until the coordinator accepts an attempt of their rollout",
        )
        .expect("valid metric");
        let eval_loss = GaugeVec::new(
            Opts::new(format!("{p}eval_loss"), "Mean next-token loss on the held-out set at the last evaluation"),
            &["source"],
        )
        .expect("valid metric");
        let eval_tokens = IntGauge::new(format!("{p}eval_tokens"), "Target tokens of the last evaluation")
            .expect("valid metric");
        let recorded_turns = IntCounterVec::new(
            Opts::new(
                format!("{p}recorded_turns_total"),
                "Assistant turns with the policy's token ids, by how re-tokenizing their text compares",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let mut collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(step.clone()),
            Box::new(tokens.clone()),
            Box::new(tokens_per_second.clone()),
            Box::new(loss.clone()),
            Box::new(loss_by_source.clone()),
            Box::new(learning_rate.clone()),
            Box::new(grad_norm.clone()),
            Box::new(stream_lag.clone()),
            Box::new(records.clone()),
            Box::new(records_per_second.clone()),
            Box::new(deduped.clone()),
            Box::new(packing_efficiency.clone()),
            Box::new(acked.clone()),
            Box::new(checkpoints.clone()),
            Box::new(checkpoint_seconds.clone()),
            Box::new(trainer_wait_seconds.clone()),
            Box::new(queued_steps.clone()),
            Box::new(group_recreated.clone()),
            Box::new(awaiting_acceptance.clone()),
            Box::new(eval_loss.clone()),
            Box::new(eval_tokens.clone()),
            Box::new(recorded_turns.clone()),
        ];
        if with_mfu {
            collectors.push(Box::new(mfu.clone()));
        }
        for c in collectors {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            step,
            tokens,
            tokens_per_second,
            loss,
            loss_by_source,
            learning_rate,
            grad_norm,
            mfu,
            stream_lag,
            records,
            records_per_second,
            deduped,
            packing_efficiency,
            acked,
            checkpoints,
            checkpoint_seconds,
            trainer_wait_seconds,
            queued_steps,
            group_recreated,
            awaiting_acceptance,
            eval_loss,
            eval_tokens,
            recorded_turns,
        }
    }

    /// Metrics in which every family renders: MFU registered and each vector with one label set
    /// (what the checks of the operator guide and the dashboard read).
    pub fn showing_every_family() -> Metrics {
        let m = Metrics::new(true);
        m.records.with_label_values(&["env", "trained"]).inc();
        m.records_per_second.with_label_values(&["ctx"]).set(1.0);
        m.eval_loss.with_label_values(&["all"]).set(2.0);
        m.loss_by_source.with_label_values(&["ctx"]).set(2.0);
        m.recorded_turns.with_label_values(&["drift"]).inc();
        m
    }

    /// Counts recorded assistant turns by outcome.
    pub fn count_turns(&self, counts: &crate::tokenize::TurnCounts) {
        for outcome in crate::tokenize::TurnOutcome::ALL {
            let n = counts.get(outcome);
            if n > 0 {
                self.recorded_turns.with_label_values(&[outcome.as_str()]).inc_by(n);
            }
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Model FLOPs utilisation: training FLOPs per second (6 per parameter per token: forward 2,
/// backward 4; attention's own FLOPs are left out, as in the usual estimate) over the peak.
pub fn mfu(parameters: u64, tokens_per_second: f64, peak_tflops: f64) -> f64 {
    mfu_with(parameters, 0.0, tokens_per_second, peak_tflops)
}

/// [`mfu`] counting `extra_flops_per_token` more per token (see [`attention_flops_per_token`]).
pub fn mfu_with(parameters: u64, extra_flops_per_token: f64, tokens_per_second: f64, peak_tflops: f64) -> f64 {
    (6.0 * parameters as f64 + extra_flops_per_token) * tokens_per_second / (peak_tflops * 1e12)
}

/// Attention's own training FLOPs per token with a context of `seq_len` tokens, as PaLM's
/// appendix B counts them: the score and value products of every layer over the whole context,
/// forward and backward, `12 · layers · heads · head_dim · seq_len` (causal masking not credited).
pub fn attention_flops_per_token(config: &Qwen2Config, seq_len: usize) -> f64 {
    12.0 * (config.num_hidden_layers * config.num_attention_heads * config.head_dim) as f64 * seq_len as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_and_mfu_only_on_request() {
        let m = Metrics::new(false);
        m.records.with_label_values(&["env", "trained"]).inc();
        m.records_per_second.with_label_values(&["ctx"]).set(1.0);
        let text = m.render();
        for name in
            ["agentmill_learner_step", "agentmill_learner_records_total", "agentmill_learner_packing_efficiency"]
        {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        assert!(!text.contains("agentmill_learner_mfu"));
        assert!(Metrics::new(true).render().contains("agentmill_learner_mfu"));
    }

    #[test]
    fn mfu_of_a_known_case() {
        // 1B parameters at 100k tokens/s = 6e14 FLOP/s, against 1000 TFLOP/s = 60%.
        assert!((mfu(1_000_000_000, 100_000.0, 1000.0) - 0.6).abs() < 1e-12);
        // Qwen2.5-0.5B's 24 layers of 14 x 64 at 2,048 tokens: 12·24·896·2048 ≈ 0.53 GFLOP a token.
        let cfg = Qwen2Config { num_hidden_layers: 24, num_attention_heads: 14, head_dim: 64, ..Qwen2Config::tiny() };
        assert_eq!(attention_flops_per_token(&cfg, 2048), 528_482_304.0);
        // 1B parameters plus 4 GFLOP of attention a token: 10 GFLOP a token at 100k tokens/s = 100%.
        assert!((mfu_with(1_000_000_000, 4e9, 100_000.0, 1000.0) - 1.0).abs() < 1e-12);
    }
}
