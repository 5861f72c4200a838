//! Held-out evaluation: next-token loss on data the run never trains on, by source.
//!
//! **The split.** With `eval_fraction = f > 0` the service holds out a share `f` of the stream:
//! an `env` record is held out when a hash of its **task id** falls below `f`, so every rollout
//! and attempt of a held-out task stays out of training (rollouts of one task are near copies of
//! each other; splitting them would measure memorisation); a `ctx` record is held out by its
//! record id (one pull request). The hash is fixed ([`held_out`]), so the split is the same
//! after a restart and on every learner. A held-out record is never trained: it is settled as
//! `held_out` in the ledger and acknowledged with the next checkpoint, and its tokens join the
//! [`EvalSet`] until that holds `eval_tokens` tokens; later held-out records stay out of
//! training but are not kept.
//!
//! **The set** is part of each checkpoint (`data_state.json`), so a resumed run evaluates on
//! the same documents. Each source's documents are packed apart ([`EvalSet::rows`]) so the loss
//! is reported per source: `env-pass`, `env-fail`, `ctx` and `all` (token-weighted). Every
//! token is a target (the mid-training objective), whatever the stage's loss mask.
//!
//! **When.** Every `eval_every` optimizer steps and after the run's last step, on the trainer
//! thread between steps ([`evaluate_rows`]); `agentmill-learner eval` runs the same measurement
//! on a checkpoint and a file of records.

use std::collections::BTreeMap;

use agentmill_proto::{RecordKind, TrajectoryRecord};
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::mix::{Source, unit_hash};
use crate::model::Qwen2ForCausalLM;
use crate::pack::{Document, LossMask, PackConfig, PackError, PackedRow, pack};
use crate::train::{Batch, TrainError, loss_sum};

/// Salt of the held-out hash, so the split is independent of the recipe's fractional draws.
const HOLD_OUT_SALT: usize = usize::MAX;

/// True when `record` belongs to the held-out share `fraction` of the stream: by task id for
/// `env` records (all rollouts of a task together), by record id for `ctx` records.
pub fn held_out(record: &TrajectoryRecord, fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    let key = match record.kind {
        RecordKind::Env => &record.task_id,
        RecordKind::Ctx => &record.record_id,
    };
    unit_hash(key, HOLD_OUT_SALT) < fraction
}

/// One held-out document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalDoc {
    /// The record it came from.
    pub record_id: String,
    /// Its mixing source.
    pub source: Source,
    /// Its token ids.
    pub tokens: Vec<u32>,
}

/// The held-out documents a run evaluates on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalSet {
    /// The share of the stream held out when the set was built (a resumed run must keep it).
    pub fraction: f64,
    /// The documents, in arrival order.
    pub docs: Vec<EvalDoc>,
}

impl EvalSet {
    /// An empty set for `fraction`.
    pub fn new(fraction: f64) -> EvalSet {
        EvalSet { fraction, docs: Vec::new() }
    }

    /// Tokens in the set.
    pub fn tokens(&self) -> u64 {
        self.docs.iter().map(|d| d.tokens.len() as u64).sum()
    }

    /// Keeps a document when the set stays within `cap` tokens; returns whether it was kept.
    pub fn offer(&mut self, doc: EvalDoc, cap: u64) -> bool {
        if doc.tokens.len() < 2 || self.tokens() + doc.tokens.len() as u64 > cap {
            return false;
        }
        self.docs.push(doc);
        true
    }

    /// The documents packed into rows of `seq_len`, one group per source (every token a target).
    pub fn rows(&self, seq_len: usize, pad_id: u32) -> Result<Vec<(Source, Vec<PackedRow>)>, PackError> {
        let config = PackConfig { seq_len, pad_id, loss_mask: LossMask::None };
        let mut out = Vec::new();
        for source in Source::ALL {
            let docs: Vec<Document> =
                self.docs.iter().filter(|d| d.source == source).map(|d| Document::new(d.tokens.clone())).collect();
            if docs.is_empty() {
                continue;
            }
            let rows = pack(&docs, config)?.rows.into_iter().filter(|r| r.target_tokens() > 0).collect::<Vec<_>>();
            if !rows.is_empty() {
                out.push((source, rows));
            }
        }
        Ok(out)
    }
}

/// The loss on one source's documents.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourceLoss {
    /// Mean next-token loss over its target tokens.
    pub loss: f64,
    /// Target tokens measured.
    pub tokens: u64,
}

/// One evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// The optimizer step whose weights were measured.
    pub step: u64,
    /// Mean next-token loss over every target token of the set.
    pub loss: f64,
    /// Target tokens measured.
    pub tokens: u64,
    /// Per source (`env-pass`, `env-fail`, `ctx`): those present in the set.
    pub by_source: BTreeMap<Source, SourceLoss>,
}

impl EvalResult {
    /// One line a source and one for all, with perplexity and tokens.
    pub fn table(&self) -> String {
        let mut out = format!("{:<10} {:>8} {:>12} {:>10}\n", "source", "loss", "perplexity", "tokens");
        let rows = self.by_source.iter().map(|(s, l)| (s.as_str(), l.loss, l.tokens));
        for (name, loss, tokens) in rows.chain([("all", self.loss, self.tokens)]) {
            out.push_str(&format!("{name:<10} {loss:>8.4} {:>12.2} {tokens:>10}\n", loss.exp()));
        }
        out
    }

    /// `loss 2.31 on 4096 tokens (env-pass 2.10, env-fail 2.52, ctx 2.40)`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.by_source.iter().map(|(s, l)| format!("{s} {:.3}", l.loss)).collect();
        format!("loss {:.3} on {} tokens ({})", self.loss, self.tokens, parts.join(", "))
    }
}

/// Measures `model` on grouped rows, `micro_batch_rows` rows a forward pass, without gradients.
pub fn evaluate_rows(
    model: &Qwen2ForCausalLM,
    groups: &[(Source, Vec<PackedRow>)],
    micro_batch_rows: usize,
    device: Device,
    step: u64,
) -> Result<EvalResult, TrainError> {
    let mut by_source = BTreeMap::new();
    let (mut sum, mut tokens) = (0.0, 0u64);
    for (source, rows) in groups {
        let (mut s, mut t) = (0.0, 0u64);
        for chunk in rows.chunks(micro_batch_rows.max(1)) {
            let batch = Batch::from_rows(chunk, device)?;
            s += loss_sum(model, &batch)?;
            t += batch.target_tokens();
        }
        if t > 0 {
            by_source.insert(*source, SourceLoss { loss: s / t as f64, tokens: t });
            sum += s;
            tokens += t;
        }
    }
    if tokens == 0 {
        return Err(TrainError::Batch("the evaluation set has no target tokens".to_string()));
    }
    Ok(EvalResult { step, loss: sum / tokens as f64, tokens, by_source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, task: &str, kind: RecordKind) -> TrajectoryRecord {
        TrajectoryRecord::new(kind, id, task)
    }

    #[test]
    fn every_rollout_of_a_task_falls_on_the_same_side_and_the_share_is_close_to_the_fraction() {
        let mut held = 0;
        for t in 0..2000 {
            let task = format!("repo__project-{t}");
            let sides: Vec<bool> = (0..4)
                .map(|r| held_out(&record(&format!("{task}/a1/r{r}"), &task, RecordKind::Env), 0.1))
                .collect();
            assert!(sides.iter().all(|&s| s == sides[0]), "task {task}: rollouts split across the hold-out");
            held += usize::from(sides[0]);
        }
        assert!((150..250).contains(&held), "{held} of 2000 tasks held out at 0.1");
        assert!(!held_out(&record("x", "t", RecordKind::Env), 0.0), "fraction 0 holds out nothing");
        // ctx records go by their own id: two pull requests of one synthesis task can differ.
        let ctx: Vec<bool> =
            (0..200).map(|i| held_out(&record(&format!("ctx/pr-{i}"), "synth-job", RecordKind::Ctx), 0.5)).collect();
        assert!(ctx.iter().any(|&h| h) && ctx.iter().any(|&h| !h));
    }

    #[test]
    fn the_set_keeps_documents_up_to_its_cap_and_packs_each_source_apart() {
        let mut set = EvalSet::new(0.1);
        let doc = |id: &str, source, n: u32| EvalDoc { record_id: id.into(), source, tokens: (1..=n).collect() };
        assert!(set.offer(doc("a", Source::EnvPass, 10), 30));
        assert!(set.offer(doc("b", Source::Ctx, 12), 30));
        assert!(!set.offer(doc("c", Source::EnvFail, 9), 30), "22 + 9 is past the cap");
        assert!(set.offer(doc("d", Source::EnvFail, 8), 30));
        assert!(!set.offer(doc("e", Source::EnvFail, 1), 100), "a one-token document predicts nothing");
        assert_eq!(set.tokens(), 30);
        let groups = set.rows(16, 0).expect("packs");
        let sources: Vec<Source> = groups.iter().map(|(s, _)| *s).collect();
        assert_eq!(sources, [Source::EnvPass, Source::EnvFail, Source::Ctx]);
        let targets: Vec<usize> = groups.iter().map(|(_, rows)| rows.iter().map(|r| r.target_tokens()).sum()).collect();
        assert_eq!(targets, [9, 7, 11], "every token after a document's first is a target");
    }
}
