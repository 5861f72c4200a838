//! The consumer: the async side of the service. It reads the stream, admits (dedupe, acceptance,
//! the recipe), tokenizes and packs, sends steps to the trainer, checkpoints and acknowledges.

use super::*;

/// The async side: reads, admits, tokenizes, packs, sends steps, acknowledges.
pub(super) struct Consumer<'a> {
    pub(super) cfg: &'a LearnerConfig,
    pub(super) feeder: Feeder,
    pub(super) reader: StreamReader,
    pub(super) tx: Option<mpsc::Sender<Work>>,
    pub(super) events: mpsc::UnboundedReceiver<Event>,
    pub(super) tokenizer: Arc<TextTokenizer>,
    pub(super) tokenizer_path: PathBuf,
    pub(super) metrics: Arc<Metrics>,
    pub(super) progress: Arc<Progress>,
    /// The status report's snapshot (record counts, packing).
    pub(super) live: Arc<Live>,
    pub(super) report: Option<TrainReport>,
    pub(super) last_lag: Option<Instant>,
    /// Start of the records/s window and admissions by kind in it.
    pub(super) rate: (Instant, BTreeMap<&'static str, u64>),
    /// The step after which the last evaluation was sent.
    pub(super) last_eval: Option<u64>,
    /// Whether recorded token ids that could not be used were reported.
    pub(super) warned_unusable_ids: bool,
    /// Recorded assistant turns tokenized by this process, by outcome.
    pub(super) turns: TurnCounts,
    /// Reads which attempt of a rollout the coordinator accepted (`None`: no check).
    pub(super) acceptance: Option<Acceptance>,
    /// `env` records whose rollout has not accepted an attempt yet, with when they were first
    /// held: unacknowledged, checked again every [`RECHECK_EVERY`].
    pub(super) held: Vec<(Entry, Instant)>,
    /// The stream ids of `held` (a claim of one of them is ignored).
    pub(super) held_ids: HashSet<String>,
    pub(super) last_recheck: Instant,
}

/// How often held records are checked again.
const RECHECK_EVERY: Duration = Duration::from_millis(500);

impl Consumer<'_> {
    /// Reads and trains until a stop condition; returns why it stopped.
    pub(super) async fn serve(&mut self, stop: &AtomicBool, mut buffered: VecDeque<Entry>) -> Result<StopReason, ServiceError> {
        let mut last_data = Instant::now();
        let reason = loop {
            self.poll_events().await?;
            if self.feeder.reached_max_steps() {
                break StopReason::MaxSteps;
            }
            if self.feeder.recipe_complete() {
                self.drain(true).await?;
                break StopReason::RecipeComplete;
            }
            if stop.load(Ordering::SeqCst) {
                self.checkpoint_now().await?;
                break StopReason::Shutdown;
            }
            if self.recheck_held().await? {
                last_data = Instant::now();
            }
            let entries: Vec<Entry> = if !buffered.is_empty() {
                buffered.drain(..).collect()
            } else if self.held.len() >= self.cfg.acceptance_max_held {
                // Full: wait for the coordinator to decide before reading more.
                tokio::time::sleep(RECHECK_EVERY).await;
                Vec::new()
            } else {
                match self.reader.next_batch().await {
                    Ok(e) => e,
                    Err(e) if e.recovered() => {
                        tracing::warn!("{e}");
                        self.metrics.group_recreated.inc();
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!("{e}; retrying in 1s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            };
            self.observe().await;
            if entries.is_empty() {
                let idle = last_data.elapsed();
                // Records waiting for the coordinator's decision are data still to come.
                if self.held.is_empty() && self.cfg.until_idle.is_some_and(|limit| idle >= limit) {
                    tracing::info!(idle_s = idle.as_secs(), "the stream is idle: training what arrived, then stopping");
                    self.drain(true).await?;
                    break StopReason::UntilIdle;
                }
                if self.cfg.flush_after_idle.is_some_and(|limit| idle >= limit) && self.feeder.holds_unacknowledged() {
                    tracing::info!(idle_s = idle.as_secs(), "the stream is quiet: training what the packer holds");
                    self.drain(false).await?;
                }
                continue;
            }
            last_data = Instant::now();
            self.ingest(entries).await?;
        };
        Ok(reason)
    }

    /// Checks, admits, tokenizes and packs entries, and sends the steps they fill.
    pub(super) async fn ingest(&mut self, entries: Vec<Entry>) -> Result<(), ServiceError> {
        let entries = self.gate(entries).await;
        self.admit(entries).await
    }

    /// Keeps from `entries` those that may train now: a trainable `env` record only when the
    /// coordinator accepted its attempt ([`acceptance`]). A superseded one is settled (never
    /// trained); one whose rollout has not decided is held.
    pub(super) async fn gate(&mut self, entries: Vec<Entry>) -> Vec<Entry> {
        let Some(acceptance) = self.acceptance.as_mut() else { return entries };
        let mut pass = Vec::with_capacity(entries.len());
        let mut check = Vec::new();
        for e in entries {
            if self.held_ids.contains(&e.id) {
                // Our own held entry, claimed again while it waits.
                continue;
            }
            match &e.record {
                Ok(r) if acceptance::applies(r) && !self.feeder.in_flight(&e.id) => check.push(e),
                _ => pass.push(e),
            }
        }
        if check.is_empty() {
            return pass;
        }
        let records: Vec<_> = check.iter().filter_map(|e| e.record.as_ref().ok()).collect();
        match acceptance.check(&records).await {
            Ok(verdicts) => {
                for (e, v) in check.into_iter().zip(verdicts) {
                    match v {
                        Verdict::Train => pass.push(e),
                        Verdict::Superseded(why) => self.feeder.refuse(e, position::Outcome::Superseded, why),
                        Verdict::Pending => self.hold(e, Instant::now()),
                    }
                }
            }
            Err(err) => {
                tracing::warn!("reading the coordinator's task status: {err}; the records wait and are checked again");
                for e in check {
                    self.hold(e, Instant::now());
                }
            }
        }
        self.metrics.awaiting_acceptance.set(self.held.len() as i64);
        pass
    }

    pub(super) fn hold(&mut self, entry: Entry, since: Instant) {
        self.held_ids.insert(entry.id.clone());
        self.held.push((entry, since));
    }

    /// Checks the held records again (at most every [`RECHECK_EVERY`]): the accepted ones
    /// train, the superseded ones and those held past `acceptance_timeout` are settled. True
    /// when any was decided.
    pub(super) async fn recheck_held(&mut self) -> Result<bool, ServiceError> {
        if self.held.is_empty() || self.last_recheck.elapsed() < RECHECK_EVERY {
            return Ok(false);
        }
        self.last_recheck = Instant::now();
        let Some(acceptance) = self.acceptance.as_mut() else { return Ok(false) };
        let held = std::mem::take(&mut self.held);
        self.held_ids.clear();
        let records: Vec<_> = held.iter().filter_map(|(e, _)| e.record.as_ref().ok()).collect();
        let verdicts = match acceptance.check(&records).await {
            Ok(v) if v.len() == held.len() => v,
            Ok(_) => vec![Verdict::Pending; held.len()],
            Err(err) => {
                tracing::warn!("reading the coordinator's task status: {err}; the held records are checked again");
                vec![Verdict::Pending; held.len()]
            }
        };
        let timeout = self.cfg.acceptance_timeout;
        let mut ready = Vec::new();
        let mut decided = false;
        for ((e, since), v) in held.into_iter().zip(verdicts) {
            match v {
                Verdict::Train => ready.push(e),
                Verdict::Superseded(why) => {
                    decided = true;
                    self.feeder.refuse(e, position::Outcome::Superseded, why);
                }
                Verdict::Pending if since.elapsed() >= timeout => {
                    decided = true;
                    let why = format!(
                        "the coordinator accepted no attempt of rollout {} of task {} within acceptance_timeout ({})",
                        e.record.as_ref().map(|r| r.rollout).unwrap_or_default(),
                        e.record.as_ref().map(|r| r.task_id.as_str()).unwrap_or_default(),
                        humantime::format_duration(timeout)
                    );
                    tracing::warn!("{why}; its record is not trained");
                    self.feeder.refuse(e, position::Outcome::Unaccepted, why);
                }
                Verdict::Pending => self.hold(e, since),
            }
        }
        self.metrics.awaiting_acceptance.set(self.held.len() as i64);
        decided |= !ready.is_empty();
        self.admit(ready).await?;
        Ok(decided)
    }

    /// Admits, tokenizes and packs entries, and sends the steps they fill.
    pub(super) async fn admit(&mut self, entries: Vec<Entry>) -> Result<(), ServiceError> {
        let admitted: Vec<_> = entries.into_iter().filter_map(|e| self.feeder.admit(e)).collect();
        for a in &admitted {
            *self.rate.1.entry(a.record.kind.as_str()).or_default() += 1;
        }
        let (tokenizer, template, tokens) = (self.tokenizer.clone(), self.cfg.template, self.cfg.assistant_tokens);
        let tokenized = blocking(move || {
            admitted
                .into_iter()
                .map(|a| {
                    let encoded = match render(&a.record, template) {
                        Some(r) => tokenizer.encode_record(&r, tokens).map_err(|e| e.to_string()),
                        None => Err("not trainable".to_string()),
                    };
                    (a.serial, a.record.record_id, encoded)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        for (serial, record_id, encoded) in tokenized {
            match encoded {
                Ok(e) => {
                    self.count_turns(&record_id, &e.turns);
                    if self.feeder.push(serial, e.ids, e.mask)? == Pushed::RecipeComplete {
                        continue;
                    }
                }
                Err(reason) => self.feeder.reject(serial, reason),
            }
        }
        self.count_outcomes();
        while let Some(step) = self.feeder.next_step(false) {
            let final_checkpoint = self.feeder.reached_max_steps();
            self.send_step(step, final_checkpoint).await?;
        }
        self.count_outcomes();
        Ok(())
    }

    /// Sends a step, with its checkpoint when one is due.
    pub(super) async fn send_step(&mut self, step: Emitted, final_checkpoint: bool) -> Result<(), ServiceError> {
        let checkpoint = if step.checkpoint_due { Some(self.prepare_checkpoint(final_checkpoint)?) } else { None };
        tracing::debug!(step = step.step, rows = step.rows.len(), records_completed = step.completed, "step queued");
        self.send_trained(step, checkpoint).await
    }

    /// Sends a step, then an evaluation when one falls due after it.
    pub(super) async fn send_trained(&mut self, emitted: Emitted, checkpoint: Option<CheckpointWork>) -> Result<(), ServiceError> {
        let step = emitted.step;
        self.send(Work::Step { step, rows: emitted.rows, groups: emitted.groups, checkpoint }).await?;
        let every = self.cfg.eval_every;
        if every > 0 && step.is_multiple_of(every) {
            self.evaluate(step).await?;
        }
        Ok(())
    }

    /// Sends an evaluation of the weights after `step` (the last step sent to the trainer: a
    /// drain cuts steps one ahead of sending them), when held-out data exists and those weights
    /// were not measured yet.
    pub(super) async fn evaluate(&mut self, step: u64) -> Result<(), ServiceError> {
        if self.cfg.eval_fraction <= 0.0 || step == 0 || self.last_eval == Some(step) {
            return Ok(());
        }
        let groups = self.feeder.eval_set().rows(self.cfg.seq_len, self.tokenizer.pad_id)?;
        if groups.is_empty() {
            return Ok(());
        }
        self.last_eval = Some(step);
        self.send(Work::Evaluate { step, groups }).await
    }

    /// Writes the data files of the checkpoint after the last step handed out.
    pub(super) fn prepare_checkpoint(&mut self, final_checkpoint: bool) -> Result<CheckpointWork, ServiceError> {
        let plan = self.feeder.plan();
        let step = plan.state.step;
        let dir = position::checkpoint_dir(&self.cfg.output_dir, step);
        position::write_data_files(&dir, &plan.state, self.feeder.completed_ids(), &plan.delta, &self.tokenizer_path)?;
        let c = &plan.state.counters;
        let position = DataPosition {
            format: DATA_POSITION_FORMAT.to_string(),
            stream: self.cfg.stream.clone(),
            group: self.cfg.group.clone(),
            data_state: DATA_STATE_FILE.to_string(),
            seen_records: position::SEEN_RECORDS_FILE.to_string(),
            records: position::CHECKPOINT_RECORDS_FILE.to_string(),
            records_trained: c.env_pass + c.env_fail + c.ctx,
            loss: Default::default(),
        };
        Ok(CheckpointWork { step, dir, position, ack: plan.ack, final_checkpoint })
    }

    /// Trains everything the packer holds (padding its last rows) and checkpoints after it.
    pub(super) async fn drain(&mut self, final_checkpoint: bool) -> Result<(), ServiceError> {
        self.feeder.finish_packer()?;
        let mut held: Option<(Emitted, Option<CheckpointWork>)> = None;
        while let Some(step) = self.feeder.next_step(true) {
            if let Some((s, c)) = held.take() {
                self.send_trained(s, c).await?;
            }
            let checkpoint = if step.checkpoint_due { Some(self.prepare_checkpoint(false)?) } else { None };
            held = Some((step, checkpoint));
        }
        self.count_outcomes();
        match held {
            Some((s, c)) => {
                let c = match c {
                    Some(mut c) => {
                        c.final_checkpoint = final_checkpoint;
                        c
                    }
                    None => self.prepare_checkpoint(final_checkpoint)?,
                };
                self.send_trained(s, Some(c)).await?;
            }
            None => self.checkpoint_now().await?,
        }
        Ok(())
    }

    /// Checkpoints at the last step handed out, when there was a step since the last
    /// checkpoint; else acknowledges settled entries (which have no training effect) directly.
    pub(super) async fn checkpoint_now(&mut self) -> Result<(), ServiceError> {
        if self.feeder.steps_since_plan() {
            let c = self.prepare_checkpoint(true)?;
            self.send(Work::Checkpoint(c)).await
        } else {
            let ids = self.feeder.take_settled_without_checkpoint();
            self.ack(ids).await;
            Ok(())
        }
    }

    /// Sends work to the trainer, handling its events while the queue is full.
    pub(super) async fn send(&mut self, work: Work) -> Result<(), ServiceError> {
        let Some(tx) = self.tx.clone() else {
            return Err(ServiceError::Trainer("the trainer's queue is closed".into()));
        };
        loop {
            let event = tokio::select! {
                permit = tx.reserve() => {
                    match permit {
                        Ok(permit) => {
                            self.metrics.queued_steps.inc();
                            self.progress.set_packing(self.feeder.packing_efficiency());
                            permit.send(work);
                            return Ok(());
                        }
                        // The trainer is gone; its last event says why.
                        Err(_) => self.events.recv().await,
                    }
                }
                event = self.events.recv() => event,
            };
            self.on_event(event).await?;
        }
    }

    /// Handles the events already waiting (acknowledging committed checkpoints).
    pub(super) async fn poll_events(&mut self) -> Result<(), ServiceError> {
        while let Ok(event) = self.events.try_recv() {
            self.on_event(Some(event)).await?;
        }
        Ok(())
    }

    pub(super) async fn on_event(&mut self, event: Option<Event>) -> Result<(), ServiceError> {
        match event {
            Some(Event::Checkpointed { step, ack }) => {
                tracing::debug!(step, entries = ack.len(), "acknowledging the entries checkpoint {step} holds");
                self.ack(ack).await;
                Ok(())
            }
            Some(Event::Failed(e)) => Err(ServiceError::Trainer(e)),
            Some(Event::Done(r)) => {
                self.report = Some(*r);
                Ok(())
            }
            Some(Event::Ready { .. }) => Ok(()),
            None => Err(ServiceError::Trainer("the trainer thread stopped".into())),
        }
    }

    /// Acknowledges entries; a failure is logged (after a restart they come back and are
    /// recognised as already trained).
    pub(super) async fn ack(&mut self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        for attempt in 1..=3 {
            match self.reader.ack(&ids).await {
                Ok(()) => {
                    self.metrics.acked.inc_by(ids.len() as u64);
                    self.feeder.acknowledged(&ids);
                    // Acknowledging is what moves the lag; show it in the next progress line.
                    self.refresh_lag().await;
                    return;
                }
                Err(e) if attempt < 3 => {
                    tracing::warn!("acknowledging {} entries: {e}; retrying", ids.len());
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => tracing::error!(
                    "acknowledging {} entries: {e}; they stay pending and are skipped as already trained when re-delivered",
                    ids.len()
                ),
            }
        }
    }

    /// Closes the trainer's queue and waits until it has trained and checkpointed everything.
    pub(super) async fn finish(&mut self) -> Result<TrainReport, ServiceError> {
        self.tx = None;
        while self.report.is_none() {
            let event = self.events.recv().await;
            self.on_event(event).await?;
        }
        // Entries settled after the last checkpoint have no training effect.
        let ids = self.feeder.take_settled_without_checkpoint();
        self.ack(ids).await;
        self.observe().await;
        self.report.take().ok_or_else(|| ServiceError::Trainer("no report".into()))
    }

    /// Counts settled outcomes into the metrics.
    /// Counts a record's recorded assistant turns, and says once when `assistant_tokens =
    /// "recorded"` cannot use a turn's ids (the tokenizer is not the policy's, most likely).
    pub(super) fn count_turns(&mut self, record_id: &str, turns: &[TurnCheck]) {
        if turns.is_empty() {
            return;
        }
        let mut counts = TurnCounts::default();
        counts.add(turns);
        self.metrics.count_turns(&counts);
        self.turns.add(turns);
        let unusable = turns.iter().find(|t| !t.outcome.usable());
        if let Some(turn) = unusable.filter(|_| self.cfg.assistant_tokens == AssistantTokens::Recorded && !self.warned_unusable_ids) {
            self.warned_unusable_ids = true;
            tracing::warn!(
                record = record_id,
                turn = turn.turn,
                outcome = turn.outcome.as_str(),
                "assistant_tokens = \"recorded\": this turn's token ids cannot stand in for its text ({}), so it trains the rendered tokens; \
                 is `tokenizer` the policy's tokenizer.json? agentmill_learner_recorded_turns_total counts every such turn (said once)",
                match turn.outcome {
                    TurnOutcome::OutOfVocab => "an id beyond the tokenizer's vocabulary",
                    TurnOutcome::Unmapped => "a sampled token's text that is no single id's text in the tokenizer",
                    TurnOutcome::OtherText => "the ids are another text than the record's turn",
                    _ => "the turn does not start and end on a token boundary",
                }
            );
        }
    }

    pub(super) fn count_outcomes(&mut self) {
        for (kind, outcome) in self.feeder.take_outcomes() {
            let kind = kind.map(RecordKind::as_str).unwrap_or("unknown");
            if outcome == position::Outcome::Duplicate {
                self.metrics.deduped.inc();
            }
            self.metrics.records.with_label_values(&[kind, outcome.as_str()]).inc();
        }
        let packing = self.feeder.packing_efficiency();
        self.metrics.packing_efficiency.set(packing);
        self.live.counted(self.feeder.counters(), packing);
    }

    pub(super) async fn refresh_lag(&mut self) {
        self.last_lag = Some(Instant::now());
        match self.reader.lag().await {
            Ok(lag) => {
                self.metrics.stream_lag.set(lag as i64);
                self.progress.set_lag(lag);
            }
            Err(e) => tracing::warn!("reading the stream lag: {e}"),
        }
    }

    /// Refreshes the lag (at most once a second) and the records/s gauges (every ~10 s).
    pub(super) async fn observe(&mut self) {
        if self.last_lag.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            self.refresh_lag().await;
        }
        let secs = self.rate.0.elapsed().as_secs_f64();
        if secs >= 10.0 {
            for kind in ["env", "ctx"] {
                let n = self.rate.1.get(kind).copied().unwrap_or(0);
                self.metrics.records_per_second.with_label_values(&[kind]).set(n as f64 / secs);
            }
            self.rate = (Instant::now(), BTreeMap::new());
        }
    }
}
