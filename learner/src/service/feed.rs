//! The data side of the service, without I/O: from stream entries to optimizer steps, with the
//! bookkeeping that makes every record train exactly once.
//!
//! [`Feeder::admit`] decides what an entry is (new record, duplicate, re-delivery, infra
//! failure, undecodable); the caller renders and tokenizes the new ones (off the async thread)
//! and hands the tokens to [`Feeder::push`], which applies the recipe (copies, loss mask, stage
//! budget) and packs them with every chunk tagged by the record's serial. [`Feeder::next_step`]
//! takes finished rows into an optimizer step; a record is complete when the last of its chunks
//! goes into a step. [`Feeder::plan`] captures, right after a step, what its checkpoint must
//! hold ([`crate::service::position`]): the records settled since the last checkpoint (their
//! stream ids are acknowledged once it commits), the records still in the packer, the packer's
//! rows and the counters.
//!
//! One file for one state machine: admit, push, step and plan share the ledger of records in
//! flight, and the exactly-once argument holds only when each move's bookkeeping is read beside
//! the others, so the [`Feeder`] is not split further (its pieces that stand alone already
//! live apart: `position.rs`, `shuffle.rs`, the packer and the mixer).

use std::collections::{HashMap, HashSet};

use agentmill_proto::{ExitReason, RecordKind, TrajectoryRecord};

use super::position::{Counters, DATA_STATE_FORMAT, DataState, LedgerLine, Outcome, PendingRecord};
use super::shuffle::{BufferedDoc, Shuffle};
use crate::eval::{EvalDoc, EvalSet, held_out};
use crate::mix::{Mixer, RecipeError, Source};
use crate::pack::{LossMask, PackConfig, PackError, PackedRow, Packer, TaggedRow};
use crate::stream::Entry;

/// How steps are cut and when checkpoints fall.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeedSettings {
    /// Tokens per row.
    pub seq_len: usize,
    /// Token id of padding.
    pub pad_id: u32,
    /// Rows the packer keeps open.
    pub max_open_rows: usize,
    /// Rows per optimizer step.
    pub rows_per_step: usize,
    /// A checkpoint every this many steps.
    pub checkpoint_every: u64,
    /// No step beyond this one.
    pub max_steps: Option<u64>,
    /// Share of the stream held out for evaluation (0: none).
    pub eval_fraction: f64,
    /// Tokens the evaluation set keeps at most.
    pub eval_tokens: u64,
    /// Tokens the shuffle buffer holds before the packer (0: none).
    pub shuffle_tokens: u64,
    /// Seeds the shuffle buffer.
    pub seed: u64,
}

impl FeedSettings {
    fn pack_config(&self) -> PackConfig {
        // Every document carries an explicit mask (all true under `loss_mask = none`), so one
        // packer serves stages with different masks.
        PackConfig { seq_len: self.seq_len, pad_id: self.pad_id, loss_mask: LossMask::Assistant }
    }
}

/// A record to render and tokenize.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// Its tag.
    pub serial: u64,
    /// The record.
    pub record: TrajectoryRecord,
}

/// An optimizer step's rows.
#[derive(Debug)]
pub(crate) struct Emitted {
    /// The step number (1-based, across resumes).
    pub step: u64,
    /// Rows with at least one target.
    pub rows: Vec<PackedRow>,
    /// For each row, the source of each of its documents (as an index of [`Source::ALL`]).
    pub groups: Vec<Vec<usize>>,
    /// A checkpoint is due after this step.
    pub checkpoint_due: bool,
    /// Records whose last chunk is in this step.
    pub completed: u64,
}

/// What a checkpoint after a step must hold.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The data side.
    pub state: DataState,
    /// The records it newly holds.
    pub delta: Vec<LedgerLine>,
    /// Stream entries to acknowledge once it commits.
    pub ack: Vec<String>,
}

/// What [`Feeder::push`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Its tokens are in the packer.
    Packed,
    /// It will not be trained (excluded, nothing to train); it is settled.
    Settled(Outcome),
    /// The recipe is complete: the record was given back, unacknowledged, for a later job.
    RecipeComplete,
}

/// The data pipeline's state between the stream and the trainer.
#[derive(Debug)]
pub(crate) struct Feeder {
    settings: FeedSettings,
    mixer: Mixer,
    /// Copies waiting for a random moment to enter the packer.
    shuffle: Shuffle,
    packer: Packer,
    /// Rows taken from the packer that do not yet fill a step.
    staged: Vec<TaggedRow>,
    /// Records admitted or packed and not yet complete, by serial.
    pending: HashMap<u64, PendingRecord>,
    pending_by_id: HashMap<String, u64>,
    /// Record ids settled in the run: trained, or skipped for good (the dedupe set).
    completed: HashSet<String>,
    /// Settled since the last checkpoint plan.
    settled: Vec<LedgerLine>,
    /// Stream ids read and not yet acknowledged.
    in_flight: HashSet<String>,
    next_serial: u64,
    next_step: u64,
    last_plan_step: u64,
    counters: Counters,
    /// Outcomes since the caller last took them (for metrics).
    outcomes: Vec<(Option<RecordKind>, Outcome)>,
    /// Held-out documents (saved with each checkpoint).
    eval: EvalSet,
    /// Admitted records that are held out, by serial (admitted and pushed within one batch).
    held: HashSet<u64>,
}

impl Feeder {
    /// A feeder at the start of a run (no step taken yet).
    pub fn new(settings: FeedSettings, mixer: Mixer) -> Result<Feeder, PackError> {
        let packer = Packer::new(settings.pack_config(), settings.max_open_rows)?;
        Ok(Feeder {
            settings,
            mixer,
            shuffle: Shuffle::new(settings.shuffle_tokens, settings.seed),
            packer,
            staged: Vec::new(),
            pending: HashMap::new(),
            pending_by_id: HashMap::new(),
            completed: HashSet::new(),
            settled: Vec::new(),
            in_flight: HashSet::new(),
            next_serial: 0,
            next_step: 1,
            last_plan_step: 0,
            counters: Counters::default(),
            outcomes: Vec::new(),
            eval: EvalSet::new(settings.eval_fraction),
            held: HashSet::new(),
        })
    }

    /// A feeder where a checkpoint left it.
    pub fn resume(
        settings: FeedSettings,
        recipe: crate::mix::Recipe,
        state: DataState,
        completed: HashSet<String>,
    ) -> Result<Feeder, ResumeError> {
        if state.eval.fraction != settings.eval_fraction {
            return Err(ResumeError::EvalFraction { checkpoint: state.eval.fraction, configured: settings.eval_fraction });
        }
        let mixer = Mixer::resume(recipe, state.mix)?;
        let packer = Packer::restore(settings.pack_config(), settings.max_open_rows, state.packer)?;
        let mut in_flight = HashSet::new();
        let mut pending = HashMap::new();
        let mut pending_by_id = HashMap::new();
        for p in state.pending {
            in_flight.extend(p.stream_ids.iter().cloned());
            pending_by_id.insert(p.record_id.clone(), p.serial);
            pending.insert(p.serial, p);
        }
        Ok(Feeder {
            settings,
            mixer,
            shuffle: Shuffle::restore(settings.shuffle_tokens, state.shuffle),
            packer,
            staged: Vec::new(),
            pending,
            pending_by_id,
            completed,
            settled: Vec::new(),
            in_flight,
            next_serial: state.next_serial,
            next_step: state.step + 1,
            last_plan_step: state.step,
            counters: state.counters,
            outcomes: Vec::new(),
            eval: state.eval,
            held: HashSet::new(),
        })
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The held-out documents gathered so far.
    pub fn eval_set(&self) -> &EvalSet {
        &self.eval
    }

    /// Real tokens / token slots of the rows packed so far.
    pub fn packing_efficiency(&self) -> f64 {
        self.packer.stats().efficiency()
    }

    /// The last step handed out (0 before any).
    pub fn last_step(&self) -> u64 {
        self.next_step - 1
    }

    /// True when `max_steps` steps have been handed out.
    pub fn reached_max_steps(&self) -> bool {
        self.settings.max_steps.is_some_and(|m| self.last_step() >= m)
    }

    /// True when every stage's budget is spent.
    pub fn recipe_complete(&self) -> bool {
        self.mixer.is_complete()
    }

    /// True when a step has been handed out since the last checkpoint plan.
    pub fn steps_since_plan(&self) -> bool {
        self.last_step() > self.last_plan_step
    }

    /// True when records are waiting in the packer or settled entries wait for an acknowledgement.
    pub fn holds_unacknowledged(&self) -> bool {
        !self.pending.is_empty() || !self.settled.is_empty() || !self.staged.is_empty()
    }

    /// The dedupe set (record ids settled in the run).
    pub fn completed_ids(&self) -> impl Iterator<Item = &str> {
        self.completed.iter().map(String::as_str)
    }

    /// Outcomes settled since the last call, with the record's kind (for metrics).
    pub fn take_outcomes(&mut self) -> Vec<(Option<RecordKind>, Outcome)> {
        std::mem::take(&mut self.outcomes)
    }

    fn settle(&mut self, line: LedgerLine) -> Outcome {
        // Every record settled for itself joins the dedupe set, so a re-delivery after a crash
        // is recognised whatever its outcome was (a skipped infra record is not counted twice).
        if !matches!(line.outcome, Outcome::Duplicate | Outcome::Redelivered)
            && let Some(id) = &line.record_id
        {
            self.completed.insert(id.clone());
        }
        self.counters.count(line.outcome, line.source);
        self.outcomes.push((line.kind, line.outcome));
        let outcome = line.outcome;
        self.settled.push(line);
        outcome
    }

    fn settle_entry(
        &mut self,
        id: String,
        outcome: Outcome,
        record: Option<&TrajectoryRecord>,
        reason: Option<String>,
    ) -> Outcome {
        self.settle(LedgerLine {
            checkpoint: 0,
            outcome,
            record_id: record.map(|r| r.record_id.clone()),
            kind: record.map(|r| r.kind),
            source: record.map(Source::of),
            stream_ids: vec![id],
            tokens: 0,
            copies: 0,
            step: None,
            reason,
        })
    }

    /// Whether the entry is already in flight here (admitted, settled or attached to a
    /// pending record, and not yet acknowledged): a claim of our own pending entry.
    pub fn in_flight(&self, stream_id: &str) -> bool {
        self.in_flight.contains(stream_id)
    }

    /// Settles an entry that must not train (`Superseded`, `Unaccepted`: the coordinator did
    /// not accept its attempt), to be acknowledged with the next checkpoint. An entry already
    /// in flight is left alone; a record already settled in the run is a re-delivery.
    pub fn refuse(&mut self, entry: Entry, outcome: Outcome, reason: String) {
        if !self.in_flight.insert(entry.id.clone()) {
            return;
        }
        let record = entry.record.ok();
        let outcome = match &record {
            Some(r) if self.completed.contains(&r.record_id) => {
                if entry.redelivered { Outcome::Redelivered } else { Outcome::Duplicate }
            }
            _ => outcome,
        };
        self.settle_entry(entry.id, outcome, record.as_ref(), Some(reason));
    }

    /// Decides what an entry is. Returns the record when it is new and must be tokenized; every
    /// other entry is settled (acknowledged with the next checkpoint), attached to the pending
    /// record it duplicates, or ignored (already in flight: a claim of our own pending entry).
    pub fn admit(&mut self, entry: Entry) -> Option<Admitted> {
        if !self.in_flight.insert(entry.id.clone()) {
            return None;
        }
        let record = match entry.record {
            Ok(r) => r,
            Err(e) => {
                self.settle_entry(entry.id, Outcome::Invalid, None, Some(e.to_string()));
                return None;
            }
        };
        if self.completed.contains(&record.record_id) {
            let outcome = if entry.redelivered { Outcome::Redelivered } else { Outcome::Duplicate };
            self.settle_entry(entry.id, outcome, Some(&record), None);
            return None;
        }
        if let Some(&serial) = self.pending_by_id.get(&record.record_id) {
            if let Some(p) = self.pending.get_mut(&serial) {
                p.stream_ids.push(entry.id);
            }
            self.counters.deduped += 1;
            self.outcomes.push((Some(record.kind), Outcome::Duplicate));
            return None;
        }
        if !record.is_trainable() {
            let outcome = match record.exit_reason {
                Some(ExitReason::Cancelled) => Outcome::Cancelled,
                _ => Outcome::Infra,
            };
            let reason = record.exit_reason.map(|e| e.as_str().to_string());
            self.settle_entry(entry.id, outcome, Some(&record), reason);
            return None;
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        if held_out(&record, self.settings.eval_fraction) {
            self.held.insert(serial);
        }
        self.pending_by_id.insert(record.record_id.clone(), serial);
        self.pending.insert(
            serial,
            PendingRecord {
                serial,
                record_id: record.record_id.clone(),
                kind: record.kind,
                source: Source::of(&record),
                stream_ids: vec![entry.id],
                tokens: 0,
                copies: 0,
                chunks_left: 0,
            },
        );
        Some(Admitted { serial, record })
    }

    fn take_pending(&mut self, serial: u64) -> Option<PendingRecord> {
        self.held.remove(&serial);
        let p = self.pending.remove(&serial)?;
        self.pending_by_id.remove(&p.record_id);
        Some(p)
    }

    fn settle_pending(&mut self, serial: u64, outcome: Outcome, reason: Option<String>) -> Outcome {
        let Some(p) = self.take_pending(serial) else { return outcome };
        let step = (outcome == Outcome::Trained).then_some(self.next_step);
        self.settle(LedgerLine {
            checkpoint: 0,
            outcome,
            record_id: Some(p.record_id),
            kind: Some(p.kind),
            source: Some(p.source),
            stream_ids: p.stream_ids,
            tokens: p.tokens,
            copies: p.copies,
            step,
            reason,
        })
    }

    /// Settles an admitted record that could not be tokenized.
    pub fn reject(&mut self, serial: u64, reason: String) {
        self.settle_pending(serial, Outcome::Invalid, Some(reason));
    }

    /// Applies the recipe to an admitted record's tokens (`assistant`: per token, inside an
    /// assistant turn) and packs its copies; a held-out record goes to the evaluation set instead.
    pub fn push(&mut self, serial: u64, tokens: Vec<u32>, assistant: Vec<bool>) -> Result<Pushed, PackError> {
        // A serial is pushed once, right after its admission; a missing one was settled already.
        let Some(p) = self.pending.get(&serial) else { return Ok(Pushed::Settled(Outcome::Duplicate)) };
        if self.mixer.is_complete() {
            // Not ours to train any more: leave the entries unacknowledged for a later job.
            if let Some(p) = self.take_pending(serial) {
                for id in &p.stream_ids {
                    self.in_flight.remove(id);
                }
            }
            return Ok(Pushed::RecipeComplete);
        }
        if self.held.contains(&serial) {
            let doc = EvalDoc { record_id: p.record_id.clone(), source: p.source, tokens };
            let reason = if self.eval.offer(doc, self.settings.eval_tokens) {
                "in the evaluation set"
            } else {
                "the evaluation set is full"
            };
            return Ok(Pushed::Settled(self.settle_pending(serial, Outcome::HeldOut, Some(reason.to_string()))));
        }
        let copies = self.mixer.copies(&p.record_id, p.source);
        if copies == 0 {
            let reason =
                format!("stage {} gives {} rate {}", self.mixer.state().stage, p.source, self.stage_rate(p.source));
            return Ok(Pushed::Settled(self.settle_pending(serial, Outcome::Excluded, Some(reason))));
        }
        let mask = match self.mixer.loss_mask() {
            LossMask::None => vec![true; tokens.len()],
            LossMask::Assistant => assistant,
        };
        // Position 0 of a document predicts nothing, so a target needs a marked token after it.
        if !mask.iter().skip(1).any(|&m| m) {
            let reason = format!("{} tokens, none a target under loss_mask = {}", tokens.len(), self.mixer.loss_mask());
            return Ok(Pushed::Settled(self.settle_pending(serial, Outcome::NoTargets, Some(reason))));
        }
        let len = tokens.len() as u64;
        let chunks = self.packer.chunks_of(tokens.len()) * u64::from(copies);
        for _ in 0..copies {
            let released = self.shuffle.push(BufferedDoc::new(serial, tokens.clone(), &mask));
            self.pack(released)?;
        }
        if let Some(p) = self.pending.get_mut(&serial) {
            p.tokens = len;
            p.copies = copies;
            p.chunks_left = chunks;
        }
        self.counters.tokens_packed += len * u64::from(copies);
        if let Some(stage) = self.mixer.add_tokens(len * u64::from(copies)) {
            match self.mixer.stage() {
                Some(s) => tracing::info!(stage, name = %s.name, "recipe: next stage"),
                None => tracing::info!("recipe: every stage's token budget is spent"),
            }
        }
        Ok(Pushed::Packed)
    }

    fn stage_rate(&self, source: Source) -> f64 {
        self.mixer.stage().map(|s| s.rate(source)).unwrap_or(0.0)
    }

    /// Empties the shuffle buffer into the packer, then pads and releases every open row
    /// (before a drain).
    pub fn finish_packer(&mut self) -> Result<(), PackError> {
        let rest = self.shuffle.drain();
        self.pack(rest)?;
        self.packer.finish();
        Ok(())
    }

    /// Hands copies the shuffle buffer released to the packer.
    fn pack(&mut self, docs: Vec<BufferedDoc>) -> Result<(), PackError> {
        for doc in docs {
            let serial = doc.serial;
            self.packer.push_tagged(&doc.into_document(), serial)?;
        }
        Ok(())
    }

    /// The next optimizer step when enough rows are finished (with `drain`, also a last
    /// partial one); `None` when not, or when `max_steps` is reached.
    pub fn next_step(&mut self, drain: bool) -> Option<Emitted> {
        if self.reached_max_steps() {
            return None;
        }
        let need = self.settings.rows_per_step;
        let mut with_targets = self.staged.iter().filter(|r| r.row.target_tokens() > 0).count();
        while with_targets < need {
            let Some(row) = self.packer.pop_tagged_row() else { break };
            if row.row.target_tokens() > 0 {
                with_targets += 1;
            }
            self.staged.push(row);
        }
        if with_targets < need && (!drain || self.staged.is_empty()) {
            return None;
        }
        let step = self.next_step;
        let mut rows = Vec::with_capacity(need);
        let mut groups = Vec::with_capacity(need);
        let mut completed = 0;
        for tagged in std::mem::take(&mut self.staged) {
            // Each chunk's record is pending until its last chunk is handed out, below.
            let row_groups: Vec<usize> = tagged
                .tags
                .iter()
                .map(|t| self.pending.get(t).map_or(0, |p| p.source.index()))
                .collect();
            for tag in tagged.tags {
                let Some(p) = self.pending.get_mut(&tag) else { continue };
                p.chunks_left = p.chunks_left.saturating_sub(1);
                if p.chunks_left == 0 {
                    self.settle_pending(tag, Outcome::Trained, None);
                    completed += 1;
                }
            }
            if tagged.row.target_tokens() > 0 {
                rows.push(tagged.row);
                groups.push(row_groups);
            }
        }
        if rows.is_empty() {
            // Only rows without a target were left: nothing to train, the records are settled.
            return None;
        }
        self.next_step += 1;
        let checkpoint_due =
            step.is_multiple_of(self.settings.checkpoint_every) || Some(step) == self.settings.max_steps;
        Some(Emitted { step, rows, groups, checkpoint_due, completed })
    }

    /// What the checkpoint after the last step handed out must hold; call it before taking the
    /// next step. Settled records move into the plan.
    pub fn plan(&mut self) -> Plan {
        let step = self.last_step();
        let mut delta = std::mem::take(&mut self.settled);
        for line in &mut delta {
            line.checkpoint = step;
        }
        let ack = delta.iter().flat_map(|l| l.stream_ids.iter().cloned()).collect();
        let mut snapshot = self.packer.snapshot();
        // Rows taken but not yet in a step go back in front of the finished rows.
        let mut ready = self.staged.clone();
        ready.append(&mut snapshot.ready);
        snapshot.ready = ready;
        let mut pending: Vec<PendingRecord> = self.pending.values().cloned().collect();
        pending.sort_by_key(|p| p.serial);
        self.last_plan_step = step;
        Plan {
            state: DataState {
                format: DATA_STATE_FORMAT.to_string(),
                step,
                mix: self.mixer.state(),
                next_serial: self.next_serial,
                pending,
                packer: snapshot,
                counters: self.counters.clone(),
                eval: self.eval.clone(),
                shuffle: self.shuffle.state(),
            },
            delta,
            ack,
        }
    }

    /// Stream ids of settled entries to acknowledge now, when no checkpoint will follow (their
    /// ledger lines are dropped: nothing of them is in any checkpoint).
    pub fn take_settled_without_checkpoint(&mut self) -> Vec<String> {
        std::mem::take(&mut self.settled).into_iter().flat_map(|l| l.stream_ids).collect()
    }

    /// Forgets acknowledged stream ids.
    pub fn acknowledged(&mut self, ids: &[String]) {
        for id in ids {
            self.in_flight.remove(id);
        }
    }
}

/// Why a checkpoint's data state cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The configured recipe is invalid.
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    /// The packer snapshot does not fit the configuration.
    #[error("{0}; resume with the seq_len the checkpoint was written with")]
    Packer(#[from] PackError),
    /// The held-out share differs from the run's: records trained so far would be held out,
    /// or held-out ones trained.
    #[error(
        "eval_fraction is {configured} but this run's checkpoints hold out {checkpoint}; keep eval_fraction = {checkpoint} or start a new output_dir (changing it mid-run would mix trained tasks into the held-out set)"
    )]
    EvalFraction {
        /// The checkpoint's share.
        checkpoint: f64,
        /// The configured share.
        configured: f64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::{Recipe, RecipeStage};
    use agentmill_proto::{ContextualPr, Message, Role, wire};
    use std::collections::BTreeMap;

    fn settings(rows_per_step: usize, checkpoint_every: u64) -> FeedSettings {
        FeedSettings {
            seq_len: 16,
            pad_id: 0,
            max_open_rows: 4,
            rows_per_step,
            checkpoint_every,
            max_steps: None,
            eval_fraction: 0.0,
            eval_tokens: 0,
            shuffle_tokens: 0,
            seed: 0,
        }
    }

    fn record(id: &str, kind: RecordKind, exit: Option<ExitReason>) -> TrajectoryRecord {
        TrajectoryRecord {
            messages: vec![Message::text(Role::User, "hi")],
            exit_reason: exit,
            ctx: (kind == RecordKind::Ctx).then(|| ContextualPr { text: "x".into(), ..Default::default() }),
            ..TrajectoryRecord::new(kind, id, "t")
        }
    }

    fn entry(id: &str, r: TrajectoryRecord, redelivered: bool) -> Entry {
        Entry { id: id.into(), record: Ok(r), redelivered }
    }

    fn ctx_recipe() -> Recipe {
        Recipe(vec![RecipeStage {
            name: "s".into(),
            sources: BTreeMap::from([(Source::Ctx, 1.0), (Source::EnvFail, 1.0)]),
            tokens: 0,
            loss_mask: LossMask::None,
        }])
    }

    fn ctx_only() -> Mixer {
        Mixer::new(ctx_recipe()).expect("valid")
    }

    fn toks(n: usize) -> (Vec<u32>, Vec<bool>) {
        ((1..=n as u32).collect(), vec![false; n])
    }

    #[test]
    fn duplicates_infra_and_claims_of_our_own_entries_are_told_apart() {
        let mut f = Feeder::new(settings(1, 10), ctx_only()).expect("feeder");
        let a = f.admit(entry("1-0", record("a", RecordKind::Ctx, None), false)).expect("new");
        assert!(f.admit(entry("1-0", record("a", RecordKind::Ctx, None), true)).is_none(), "same entry claimed again");
        assert!(f.admit(entry("2-0", record("a", RecordKind::Ctx, None), false)).is_none(), "published twice");
        assert!(f.admit(entry("3-0", record("b", RecordKind::Env, Some(ExitReason::SandboxError)), false)).is_none());
        assert!(f.admit(entry("4-0", record("c", RecordKind::Env, Some(ExitReason::Cancelled)), false)).is_none());
        let bad =
            Entry { id: "5-0".into(), record: Err(wire::WireError::UnknownCodec("x".into())), redelivered: false };
        assert!(f.admit(bad).is_none());
        let (t, m) = toks(40);
        assert_eq!(f.push(a.serial, t, m).expect("push"), Pushed::Packed);
        f.finish_packer().expect("drain");
        let mut steps = 0;
        while f.next_step(true).is_some() {
            steps += 1;
        }
        assert_eq!(steps, 3, "40 tokens at seq_len 16 are three rows, one a step");
        let plan = f.plan();
        let c = &plan.state.counters;
        assert_eq!((c.ctx, c.deduped, c.skipped_infra, c.skipped_cancelled, c.invalid), (1, 1, 1, 1, 1));
        let trained: Vec<_> = plan.delta.iter().filter(|l| l.outcome == Outcome::Trained).collect();
        assert_eq!(trained.len(), 1);
        assert_eq!(
            trained[0].stream_ids,
            vec!["1-0".to_string(), "2-0".to_string()],
            "the duplicate is acknowledged with it"
        );
        assert_eq!(trained[0].step, Some(3));
        let mut ack = plan.ack.clone();
        ack.sort();
        assert_eq!(ack, ["1-0", "2-0", "3-0", "4-0", "5-0"]);
        // Published once more after it is in a checkpoint: a duplicate, settled at once.
        assert!(f.admit(entry("6-0", record("a", RecordKind::Ctx, None), false)).is_none());
        assert_eq!(f.counters().deduped, 2);
    }

    #[test]
    fn a_record_split_across_a_checkpoint_resumes_without_training_twice() {
        let s = settings(1, 1);
        let mut f = Feeder::new(s, ctx_only()).expect("feeder");
        let a = f.admit(entry("1-0", record("a", RecordKind::Ctx, None), false)).expect("new");
        let (t, m) = toks(20); // a full row of 16 and an open row of 4
        f.push(a.serial, t, m).expect("push");
        let e = f.next_step(false).expect("the full row is a step");
        assert_eq!((e.step, e.completed, e.checkpoint_due), (1, 0, true));
        let plan = f.plan();
        assert!(plan.ack.is_empty(), "a record with tokens still in the packer is not acknowledged");
        assert_eq!(plan.state.pending.len(), 1);
        assert_eq!(plan.state.packer.open.len(), 1);

        // Crash; resume from the plan. The entry comes back and is recognised.
        let seen: HashSet<String> = f.completed_ids().map(String::from).collect();
        let json = serde_json::to_string(&plan.state).expect("serialises");
        let mut g =
            Feeder::resume(s, ctx_recipe(), serde_json::from_str(&json).expect("parses"), seen).expect("resumes");
        assert!(g.admit(entry("1-0", record("a", RecordKind::Ctx, None), true)).is_none());
        g.finish_packer().expect("drain");
        let e = g.next_step(true).expect("the rest");
        assert_eq!((e.step, e.completed), (2, 1));
        let real: usize = e.rows.iter().map(|r| r.real_tokens()).sum();
        assert_eq!(real, 4, "only the untrained rest of the record");
        let plan = g.plan();
        assert_eq!(plan.ack, vec!["1-0".to_string()]);
        assert_eq!(plan.delta[0].step, Some(2));

        // Crash after that checkpoint committed but before the entry was acknowledged: the
        // entry comes back once more and is acknowledged without training.
        let seen: HashSet<String> = g.completed_ids().map(String::from).collect();
        let mut h = Feeder::resume(s, ctx_recipe(), plan.state, seen).expect("resumes");
        assert!(h.admit(entry("1-0", record("a", RecordKind::Ctx, None), true)).is_none());
        h.finish_packer().expect("drain");
        assert!(h.next_step(true).is_none(), "nothing left to train");
        let settled = h.take_settled_without_checkpoint();
        assert_eq!(settled, vec!["1-0".to_string()]);
        assert_eq!(h.counters().redelivered, 1);
    }

    #[test]
    fn excluded_and_maskless_records_settle_without_packing() {
        let recipe = Recipe(vec![RecipeStage {
            name: "sft".into(),
            sources: BTreeMap::from([(Source::EnvFail, 1.0)]),
            tokens: 0,
            loss_mask: LossMask::Assistant,
        }]);
        let mut f = Feeder::new(settings(1, 10), Mixer::new(recipe).expect("valid")).expect("feeder");
        let c = f.admit(entry("1-0", record("c", RecordKind::Ctx, None), false)).expect("new");
        assert_eq!(f.push(c.serial, vec![1, 2, 3], vec![false; 3]).expect("push"), Pushed::Settled(Outcome::Excluded));
        let e = f.admit(entry("2-0", record("e", RecordKind::Env, Some(ExitReason::Submitted)), false)).expect("new");
        assert_eq!(
            f.push(e.serial, vec![1, 2, 3], vec![true, false, false]).expect("push"),
            Pushed::Settled(Outcome::NoTargets)
        );
        let e2 = f.admit(entry("3-0", record("e2", RecordKind::Env, Some(ExitReason::MaxSteps)), false)).expect("new");
        assert_eq!(f.push(e2.serial, vec![1, 2, 3], vec![false, true, true]).expect("push"), Pushed::Packed);
        f.finish_packer().expect("drain");
        let step = f.next_step(true).expect("a step");
        assert_eq!(step.rows[0].target_tokens(), 2, "only the assistant's tokens are targets");
    }

    #[test]
    fn held_out_records_join_the_evaluation_set_are_never_packed_and_the_set_survives_a_resume() {
        let mut s = settings(1, 1);
        (s.eval_fraction, s.eval_tokens) = (0.5, 100);
        let mut f = Feeder::new(s, ctx_only()).expect("feeder");
        let (mut held, mut packed) = (Vec::new(), 0);
        for i in 0..40 {
            let mut r = record(&format!("r{i}"), RecordKind::Env, Some(ExitReason::MaxSteps));
            r.task_id = format!("task-{}", i / 2);
            let is_held = held_out(&r, 0.5);
            let a = f.admit(entry(&format!("{i}-0"), r, false)).expect("new");
            let (t, m) = toks(30);
            match f.push(a.serial, t, m).expect("push") {
                Pushed::Settled(Outcome::HeldOut) => held.push(i),
                Pushed::Packed => packed += 1,
                other => panic!("record {i}: {other:?}"),
            }
            assert_eq!(is_held, held.last() == Some(&i), "record {i} follows the hash");
        }
        assert!(!held.is_empty() && packed > 0, "held {held:?}, packed {packed}");
        assert_eq!(f.counters().held_out, held.len() as u64);
        // 30-token documents under a 100-token cap: three are kept, the rest stay out anyway.
        assert_eq!(f.eval_set().docs.len(), held.len().min(3));
        let kept: Vec<String> = f.eval_set().docs.iter().map(|d| d.record_id.clone()).collect();
        f.finish_packer().expect("drain");
        let mut trained = 0;
        while let Some(e) = f.next_step(true) {
            trained += e.rows.iter().map(PackedRow::real_tokens).sum::<usize>();
        }
        assert_eq!(trained, packed * 30, "only the records not held out are trained");
        let plan = f.plan();
        let acked: HashSet<&str> = plan.ack.iter().map(String::as_str).collect();
        assert_eq!(acked.len(), 40, "held-out entries are acknowledged with the checkpoint too");
        assert_eq!(plan.state.eval.docs.iter().map(|d| d.record_id.clone()).collect::<Vec<_>>(), kept);

        let json = serde_json::to_string(&plan.state).expect("serialises");
        let state: DataState = serde_json::from_str(&json).expect("parses");
        let seen: HashSet<String> = f.completed_ids().map(String::from).collect();
        let g = Feeder::resume(s, ctx_recipe(), state.clone(), seen.clone()).expect("resumes");
        assert_eq!(g.eval_set(), &plan.state.eval);
        let other = FeedSettings { eval_fraction: 0.1, ..s };
        let e = Feeder::resume(other, ctx_recipe(), state, seen).expect_err("another fraction is refused");
        assert!(e.to_string().contains("eval_fraction = 0.5"), "{e}");
    }

    /// Mean distance, in optimizer steps, between the first and the last copy of a record
    /// trained three times, with a shuffle buffer of `shuffle_tokens`.
    fn copy_spread(shuffle_tokens: u64) -> f64 {
        let mut s = settings(1, 1000);
        s.shuffle_tokens = shuffle_tokens;
        let recipe = Recipe(vec![RecipeStage {
            name: "s".into(),
            sources: BTreeMap::from([(Source::EnvFail, 3.0)]),
            tokens: 0,
            loss_mask: LossMask::None,
        }]);
        let mut f = Feeder::new(s, Mixer::new(recipe).expect("valid")).expect("feeder");
        // Record i is ten tokens of id i + 1, so a row tells whose copy it carries.
        let mut steps: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        let mut take = |f: &mut Feeder, drain: bool| {
            while let Some(e) = f.next_step(drain) {
                assert_eq!(e.groups.len(), e.rows.len(), "a group list per row");
                for (row, groups) in e.rows.iter().zip(&e.groups) {
                    let docs = row.doc_ids.iter().filter(|&&d| d >= 0).max().map_or(0, |&d| d as usize + 1);
                    assert_eq!(groups, &vec![1; docs], "every document of the row is env-fail (Source::ALL[1])");
                }
                for row in &e.rows {
                    for &t in row.input_ids.iter().filter(|&&t| t != 0) {
                        steps.entry(t).or_default().push(e.step);
                    }
                }
            }
        };
        for i in 0..60u32 {
            let a = f.admit(entry(&format!("{i}-0"), record(&format!("r{i}"), RecordKind::Env, Some(ExitReason::MaxSteps)), false)).expect("new");
            assert_eq!(f.push(a.serial, vec![i + 1; 10], vec![true; 10]).expect("push"), Pushed::Packed);
            take(&mut f, false);
        }
        f.finish_packer().expect("drain");
        take(&mut f, true);
        let plan = f.plan();
        assert_eq!(plan.state.counters.env_fail, 60, "every record trains, shuffled or not");
        assert_eq!(steps.len(), 60);
        let spreads: Vec<u64> = steps.values().map(|s| s.iter().max().unwrap_or(&0) - s.iter().min().unwrap_or(&0)).collect();
        assert!(steps.values().all(|s| s.len() == 30), "each record's three copies of ten tokens train once each");
        spreads.iter().sum::<u64>() as f64 / spreads.len() as f64
    }

    #[test]
    fn the_shuffle_buffer_spreads_a_records_copies_over_many_steps() {
        let (packed, shuffled) = (copy_spread(0), copy_spread(8 * 16));
        eprintln!("mean steps between a record's first and last copy: {packed:.1} in arrival order, {shuffled:.1} shuffled");
        assert!(packed <= 4.0, "in arrival order the copies train within a few steps: {packed:.1}");
        assert!(shuffled >= 2.0 * packed.max(2.0), "the buffer spreads them: {shuffled:.1} against {packed:.1}");
    }

    #[test]
    fn max_steps_stops_handing_out_steps() {
        let mut s = settings(1, 100);
        s.max_steps = Some(2);
        let mut f = Feeder::new(s, ctx_only()).expect("feeder");
        let a = f.admit(entry("1-0", record("a", RecordKind::Ctx, None), false)).expect("new");
        let (t, m) = toks(16 * 5);
        f.push(a.serial, t, m).expect("push");
        assert!(!f.next_step(false).expect("step 1").checkpoint_due);
        assert!(f.next_step(false).expect("step 2").checkpoint_due, "the last step checkpoints");
        assert!(f.next_step(false).is_none());
        assert!(f.reached_max_steps());
        assert_eq!(f.plan().state.packer.ready.len(), 3, "the rest waits in the checkpoint");
    }
}
