//! Handing out leases and taking them back: dispatch to sessions with credits, expiry of leases
//! whose worker stopped heartbeating, and the stall rule that moves every deadline back.

use super::*;

/// How far into a priority band the scheduler looks for a task whose image a worker holds.
const IMAGE_LOOKAHEAD: usize = 32;

impl Core {
    /// Grants leases to sessions with credits, one per session per round so work spreads.
    pub(super) fn dispatch(&mut self, txn: &mut Txn) {
        if self.table.queues.is_empty() {
            return;
        }
        let now = now_ms();
        let ttl = self.cfg.lease_ttl.as_millis() as i64;
        let mut eligible: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.credits > 0 && s.room() > 0 && !s.backpressured && !s.draining && !self.cordoned.contains(&s.worker))
            .map(|(id, _)| *id)
            .collect();
        while !eligible.is_empty() && !self.table.queues.is_empty() {
            eligible.retain(|sid| {
                let Some(s) = self.sessions.get_mut(sid) else { return false };
                let cached = |image: &str| s.cached_images.contains(image);
                let Some(key) = self.table.pick(&s.labels, &cached, IMAGE_LOOKAHEAD) else { return false };
                let (idx, n) = (key.task, key.rollout);
                let lease_id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string().as_str());
                let t = &mut self.table.tasks[idx as usize];
                let r = &mut t.rollouts[n as usize];
                let previous = r.state;
                r.state = TaskState::Leased;
                r.worker = Some(s.worker.clone());
                r.lease = Some(lease_id.clone());
                r.stage = Stage::Unspecified;
                let attempt = r.attempt;
                self.metrics.dispatch_latency.observe((now - r.queued_ms).max(0) as f64 / 1000.0);
                let grant = v1::LeaseGrant {
                    lease_id: lease_id.to_string(),
                    task: None,
                    attempt,
                    rollout: n,
                    deadline_unix_ms: now + ttl,
                    episode_id: format!("{}-r{n}-a{attempt}", t.id),
                    queued_at_unix_ms: r.queued_ms,
                };
                let task_id = t.id.clone();
                self.table.leases.insert(lease_id.clone(), Lease { task: idx, rollout: n, attempt, worker: s.worker.clone(), session: Some(*sid), credential: Some(s.credential.clone()), deadline_ms: now + ttl });
                s.credits -= 1;
                s.leases.insert(lease_id);
                let credits_left = s.credits.min(s.room());
                self.stats.leases_granted += 1;
                self.metrics.leases_granted.inc();
                let read = txn.read_spec(&self.keys, &task_id);
                txn.outputs.push(Output::Lease { session: *sid, grant, read });
                txn.dirty.insert(idx);
                self.counts.changed.push(idx);
                self.table.tasks[idx as usize].updated_ms = now;
                self.event(txn, idx, n, previous, "leased");
                credits_left > 0
            });
        }
    }

    pub(super) fn expire_leases(&mut self, txn: &mut Txn) {
        let now = now_ms();
        let expired: Vec<Arc<str>> = self.table.leases.iter().filter(|(_, l)| l.deadline_ms < now).map(|(k, _)| k.clone()).collect();
        for lease_id in expired {
            let Some(l) = self.table.leases.remove(&lease_id) else { continue };
            if let Some(sid) = l.session {
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.leases.remove(&lease_id);
                }
                txn.outputs.push(Output::Send(sid, Out::Cancel(v1::CancelLease { lease_id: lease_id.to_string(), reason: "lease expired (no heartbeat)".into() })));
            }
            self.stats.leases_expired += 1;
            self.metrics.leases_expired.inc();
            warn!(lease = %lease_id, worker = %l.worker, "lease expired: the worker stopped heartbeating");
            let reason = format!("lease expired: worker {} stopped heartbeating", l.worker);
            self.requeue(l.task, l.rollout, &reason, true, txn);
        }
    }

    /// Moves every live lease's deadline `by` later (after a stall of that length).
    pub(super) fn push_back_deadlines(&mut self, by: Duration) {
        let ms = by.as_millis() as i64;
        for l in self.table.leases.values_mut() {
            l.deadline_ms += ms;
        }
        self.metrics.core_stalls.inc();
        warn!(
            stall_ms = ms,
            leases = self.table.leases.len(),
            "the coordinator could not turn for {by:?} (Redis did not answer, or the process was starved); every lease's deadline moves back as long"
        );
    }
}
