//! A task's life: submission, listing, cancel, retry, cordon, and the end of an attempt
//! (a result, or a requeue), each recorded as an event.

use super::*;

impl Core {
    pub(super) fn submit(&mut self, tasks: Vec<NewTask>, reply: oneshot::Sender<SubmitOutcome>, txn: &mut Txn) {
        let now = now_ms();
        let mut outcome = SubmitOutcome::default();
        for mut nt in tasks {
            if self.table.by_id.contains_key(nt.id.as_str()) {
                outcome.existing.push(nt.id);
                continue;
            }
            nt.meta.seq = self.table.next_seq;
            nt.meta.submitted_ms = now;
            let rollouts = (0..nt.meta.rollouts.max(1)).map(|_| Rollout::queued(now)).collect();
            let idx = self.insert_entry(&nt.id, &nt.meta, rollouts, now);
            let key = self.keys.task(&nt.id);
            let meta = serde_json::to_vec(&nt.meta).unwrap_or_default();
            txn.pipe.hset_multiple(&key, &[("spec", nt.spec.as_slice()), ("meta", meta.as_slice())]).ignore();
            txn.pipe.zadd(self.keys.tasks(), &nt.id, nt.meta.seq).ignore();
            txn.writes += 2;
            self.touch(txn, idx);
            for n in 0..nt.meta.rollouts.max(1) {
                self.table.enqueue(idx, n);
                self.event(txn, idx, n, TaskState::Unspecified, "submitted");
            }
            self.metrics.submitted.inc();
            outcome.accepted.push(nt.id);
        }
        txn.outputs.push(Output::reply(reply, outcome));
    }

    pub(super) fn list(&mut self, req: v1::ListTasksRequest, reply: oneshot::Sender<Result<v1::ListTasksResponse, Status>>, txn: &mut Txn) {
        let page_size = match req.page_size {
            0 => 100,
            n => n.min(1000),
        } as usize;
        let start: usize = if req.page_token.is_empty() {
            0
        } else {
            match req.page_token.parse() {
                Ok(n) => n,
                Err(_) => {
                    let _ = reply.send(Err(Status::invalid_argument("page_token: not a token this coordinator issued; start again without one")));
                    return;
                }
            }
        };
        let states: HashSet<i32> = req.states.iter().copied().collect();
        let mut resp = v1::ListTasksResponse::default();
        let mut reads = Vec::new();
        let mut i = start;
        while i < self.table.tasks.len() && resp.tasks.len() < page_size {
            let t = &self.table.tasks[i];
            i += 1;
            if !states.is_empty() && !states.contains(&(t.state() as i32)) {
                continue;
            }
            if !req.labels.iter().all(|(k, v)| t.labels.get(k) == Some(v)) {
                continue;
            }
            resp.tasks.push(t.status_proto());
            let id = t.id.clone();
            reads.push(txn.read_spec(&self.keys, &id));
        }
        if i < self.table.tasks.len() {
            resp.next_page_token = i.to_string();
        }
        txn.outputs.push(Output::List { reply, resp, reads });
    }

    pub(super) fn cancel(&mut self, ids: Vec<String>, reason: String, reply: oneshot::Sender<v1::CancelTasksResponse>, txn: &mut Txn) {
        let reason = if reason.is_empty() { "cancelled by a client".to_string() } else { reason };
        let mut resp = v1::CancelTasksResponse::default();
        for id in ids {
            let Some(&idx) = self.table.by_id.get(id.as_str()) else {
                resp.not_found.push(id);
                continue;
            };
            if self.table.tasks[idx as usize].rollouts.iter().all(Rollout::finished) {
                resp.already_finished.push(id);
                continue;
            }
            for n in 0..self.table.tasks[idx as usize].rollouts.len() as u32 {
                let r = &self.table.tasks[idx as usize].rollouts[n as usize];
                let previous = r.state;
                match previous {
                    TaskState::Queued | TaskState::Unspecified => self.table.dequeue(idx, n),
                    TaskState::Leased | TaskState::Running => {
                        if let Some(lease_id) = r.lease.clone()
                            && let Some(lease) = self.table.leases.remove(&lease_id)
                            && let Some(sid) = lease.session
                        {
                            if let Some(s) = self.sessions.get_mut(&sid) {
                                s.leases.remove(&lease_id);
                            }
                            txn.outputs.push(Output::Send(sid, Out::Cancel(v1::CancelLease { lease_id: lease_id.to_string(), reason: reason.clone() })));
                        }
                    }
                    _ => continue,
                }
                let r = &mut self.table.tasks[idx as usize].rollouts[n as usize];
                r.state = TaskState::Cancelled;
                r.lease = None;
                r.last_error = Some(reason.clone().into_boxed_str());
                self.event(txn, idx, n, previous, &reason);
            }
            self.touch(txn, idx);
            resp.cancelled.push(id);
        }
        txn.outputs.push(Output::reply(reply, resp));
    }

    /// Puts every failed or cancelled rollout of the tasks back in the queue with the next attempt
    /// and no failures counted; done and in-flight rollouts are left as they are.
    pub(super) fn retry(&mut self, ids: Vec<String>, reason: String, reply: oneshot::Sender<v1::RetryTasksResponse>, txn: &mut Txn) {
        let reason = if reason.is_empty() { "retried by a client".to_string() } else { format!("retried: {reason}") };
        let now = now_ms();
        let mut resp = v1::RetryTasksResponse::default();
        for id in ids {
            let Some(&idx) = self.table.by_id.get(id.as_str()) else {
                resp.not_found.push(id);
                continue;
            };
            let mut retried = false;
            for n in 0..self.table.tasks[idx as usize].rollouts.len() as u32 {
                let r = &mut self.table.tasks[idx as usize].rollouts[n as usize];
                let previous = r.state;
                if !matches!(previous, TaskState::Failed | TaskState::Cancelled) {
                    continue;
                }
                r.state = TaskState::Queued;
                r.attempt += 1;
                r.failures = 0;
                r.handbacks = 0;
                r.stage = Stage::Unspecified;
                r.worker = None;
                r.lease = None;
                r.queued_ms = now;
                r.last_error = Some(reason.clone().into_boxed_str());
                self.table.enqueue(idx, n);
                self.event(txn, idx, n, previous, &reason);
                retried = true;
            }
            if retried {
                self.touch(txn, idx);
                resp.retried.push(id);
            } else {
                resp.nothing_to_retry.push(id);
            }
        }
        txn.outputs.push(Output::reply(reply, resp));
    }

    /// Cordons (or uncordons) worker ids, in memory and in `{ns}:cordoned`.
    pub(super) fn cordon(&mut self, ids: Vec<String>, uncordon: bool, reply: oneshot::Sender<v1::CordonWorkersResponse>, txn: &mut Txn) {
        let key = self.keys.cordoned();
        for id in ids {
            if uncordon {
                self.cordoned.remove(id.as_str());
                txn.pipe.srem(&key, &id).ignore();
            } else {
                txn.pipe.sadd(&key, &id).ignore();
                self.cordoned.insert(Arc::from(id.as_str()));
            }
            txn.writes += 1;
        }
        let resp = v1::CordonWorkersResponse { cordoned: self.cordoned.iter().map(|w| w.to_string()).collect() };
        txn.outputs.push(Output::reply(reply, resp));
    }

    /// Records a result on a live lease: the model's outcome ends the rollout; an infra failure
    /// is retried until the attempts run out.
    pub(super) fn finish(&mut self, idx: TaskIdx, n: u32, result: v1::EpisodeResult, txn: &mut Txn) {
        let exit = v1::ExitReason::try_from(result.exit_reason).unwrap_or(v1::ExitReason::Unspecified);
        let infra = matches!(
            exit,
            v1::ExitReason::PolicyError | v1::ExitReason::SandboxError | v1::ExitReason::InfraError | v1::ExitReason::Unspecified
        );
        let now = now_ms();
        if exit == v1::ExitReason::Cancelled {
            let reason = format!("the worker cancelled the episode: {}", result.error);
            self.requeue(idx, n, &reason, false, txn);
            return;
        }
        if infra {
            let reason = format!("{}: {}", exit.name(), result.error);
            self.requeue(idx, n, &reason, true, txn);
            return;
        }
        let resolution = v1::Resolution::try_from(result.resolution).unwrap_or(v1::Resolution::Unspecified);
        let res_name = resolution.name().to_string();
        let exit_name = exit.name().to_string();
        *self.stats.by_resolution.entry(res_name.clone()).or_default() += 1;
        *self.stats.by_exit.entry(exit_name.clone()).or_default() += 1;
        self.stats.record_finish(now);
        self.metrics.results.with_label_values(&[&res_name, &exit_name]).inc();
        let r = &mut self.table.tasks[idx as usize].rollouts[n as usize];
        let previous = r.state;
        r.state = TaskState::Done;
        r.lease = None;
        r.result = Some(Box::new(result));
        self.touch(txn, idx);
        self.event(txn, idx, n, previous, "result");
    }

    /// Puts a rollout back in the queue with the next attempt, or fails it when `counts` (the
    /// attempt failed, rather than being handed back) and `max_attempts` attempts have failed,
    /// or when it was handed back `max_handbacks` times (a record that can never be published
    /// would otherwise go round the workers forever).
    pub(super) fn requeue(&mut self, idx: TaskIdx, n: u32, reason: &str, counts: bool, txn: &mut Txn) {
        let now = now_ms();
        let max = self.cfg.max_attempts;
        let max_handbacks = self.cfg.max_handbacks;
        let r = &mut self.table.tasks[idx as usize].rollouts[n as usize];
        let previous = r.state;
        r.lease = None;
        r.stage = Stage::Unspecified;
        r.last_error = Some(reason.to_string().into_boxed_str());
        if counts {
            r.failures += 1;
        } else {
            r.handbacks += 1;
        }
        let handed_back_too_often = !counts && max_handbacks > 0 && r.handbacks >= max_handbacks;
        if handed_back_too_often {
            self.metrics.handback_failures.inc();
        }
        if (counts && r.failures >= max) || handed_back_too_often {
            r.state = TaskState::Failed;
            let why = if counts {
                format!("failed after {} attempts; last: {reason}", r.failures)
            } else {
                format!(
                    "failed after {} hand-backs without a result (max_handbacks; a record that cannot be published, or workers that \
                     keep giving it back); last: {reason}",
                    r.handbacks
                )
            };
            r.last_error = Some(why.clone().into_boxed_str());
            self.touch(txn, idx);
            self.event(txn, idx, n, previous, &why);
            return;
        }
        r.attempt += 1;
        r.state = TaskState::Queued;
        r.worker = None;
        r.queued_ms = now;
        self.table.enqueue(idx, n);
        self.touch(txn, idx);
        self.event(txn, idx, n, previous, reason);
    }

    pub(super) fn event(&mut self, txn: &mut Txn, idx: TaskIdx, n: u32, previous: TaskState, reason: &str) {
        let t = &self.table.tasks[idx as usize];
        let r = &t.rollouts[n as usize];
        self.event_seq += 1;
        txn.events.push(v1::TaskEvent {
            seq: self.event_seq,
            task_id: t.id.to_string(),
            rollout: n,
            attempt: r.attempt,
            state: r.state as i32,
            previous_state: previous as i32,
            stage: r.stage as i32,
            worker_id: r.worker.as_deref().unwrap_or_default().to_string(),
            reason: reason.to_string(),
            at_unix_ms: now_ms(),
            result: r.result.as_deref().cloned(),
            dropped_before: 0,
        });
    }

    pub(super) fn touch(&mut self, txn: &mut Txn, idx: TaskIdx) {
        self.table.tasks[idx as usize].updated_ms = now_ms();
        self.counts.changed.push(idx);
        txn.dirty.insert(idx);
    }
}
