//! The task store: loading it from Redis at start, adding a task to the table, and writing a
//! batch's effects in one pipeline before anyone is answered (group commit).

use super::*;

impl Core {
    /// Rebuilds memory from Redis: every task, its rollouts, its queue position; leases that were
    /// live get a fresh TTL so their workers can reconnect and renew them.
    pub(super) async fn load(&mut self) -> Result<(), redis::RedisError> {
        const CHUNK: isize = 2000;
        let now = now_ms();
        let cordoned: Vec<String> = redis::cmd("SMEMBERS").arg(self.keys.cordoned()).query_async(&mut self.redis).await?;
        self.cordoned = cordoned.iter().map(|w| Arc::from(w.as_str())).collect();
        let mut start: isize = 0;
        loop {
            let ids: Vec<String> = redis::cmd("ZRANGE").arg(self.keys.tasks()).arg(start).arg(start + CHUNK - 1).query_async(&mut self.redis).await?;
            if ids.is_empty() {
                break;
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET").arg(self.keys.task(id)).arg("meta").arg("status");
            }
            type MetaAndStatus = (Option<Vec<u8>>, Option<Vec<u8>>);
            let rows: Vec<MetaAndStatus> = pipe.query_async(&mut self.redis).await?;
            for (id, (meta, status)) in ids.iter().zip(rows) {
                let (Some(meta), Some(status)) = (meta, status) else {
                    warn!(task = %id, "task hash is incomplete in Redis; skipped");
                    continue;
                };
                let (Ok(meta), Ok(status)) = (serde_json::from_slice::<TaskMeta>(&meta), v1::TaskStatus::decode(&status[..])) else {
                    warn!(task = %id, "task hash does not decode; skipped");
                    continue;
                };
                let idx = self.insert_entry(id, &meta, status.rollouts.iter().map(|r| Rollout::from_proto(r, now)).collect(), status.updated_at_unix_ms);
                for n in 0..self.table.tasks[idx as usize].rollouts.len() as u32 {
                    let r = &self.table.tasks[idx as usize].rollouts[n as usize];
                    match r.state {
                        TaskState::Queued | TaskState::Unspecified => self.table.enqueue(idx, n),
                        TaskState::Leased | TaskState::Running => {
                            if let (Some(lease), Some(worker)) = (r.lease.clone(), r.worker.clone()) {
                                let deadline_ms = now + self.cfg.lease_ttl.as_millis() as i64;
                                self.table.leases.insert(lease, Lease { task: idx, rollout: n, attempt: r.attempt, worker, session: None, credential: None, deadline_ms });
                            } else {
                                self.table.tasks[idx as usize].rollouts[n as usize] =
                                    Rollout { attempt: r.attempt, failures: r.failures, handbacks: r.handbacks, ..Rollout::queued(now) };
                                self.table.enqueue(idx, n);
                            }
                        }
                        _ => {}
                    }
                }
            }
            start += CHUNK;
        }
        Ok(())
    }

    pub(super) fn insert_entry(&mut self, id: &str, meta: &TaskMeta, rollouts: Vec<Rollout>, updated_ms: i64) -> TaskIdx {
        let idx = self.table.tasks.len() as TaskIdx;
        let id: Arc<str> = Arc::from(id);
        let image = self.table.interner.str(&meta.image);
        let labels = self.table.interner.labels(meta.labels.clone());
        let selector = self.table.interner.labels(meta.worker_selector.clone());
        self.table.tasks.push(TaskEntry {
            id: id.clone(),
            seq: meta.seq,
            submitted_ms: meta.submitted_ms,
            updated_ms,
            priority: meta.priority,
            image,
            labels,
            selector,
            rollouts,
        });
        self.table.by_id.insert(id, idx);
        self.counts.changed.push(idx);
        self.table.next_seq = self.table.next_seq.max(meta.seq + 1);
        idx
    }

    /// Writes the batch, then answers. Redis errors are retried (with backoff) rather than
    /// answered: the coordinator cannot promise anything it could not store.
    pub(super) async fn flush(&mut self, mut txn: Txn) {
        for idx in std::mem::take(&mut txn.dirty) {
            let t = &self.table.tasks[idx as usize];
            txn.pipe.hset(self.keys.task(&t.id), "status", t.status_proto().encode_to_vec()).ignore();
            txn.writes += 1;
        }
        let mut specs: Vec<Option<Vec<u8>>> = Vec::new();
        if txn.writes + txn.reads > 0 {
            let started = Instant::now();
            let mut backoff = Duration::from_millis(50);
            loop {
                match txn.pipe.query_async::<Vec<Option<Vec<u8>>>>(&mut self.redis).await {
                    Ok(v) => {
                        specs = v;
                        break;
                    }
                    Err(e) => {
                        error!("writing to Redis failed ({e}); retrying in {backoff:?} — requests wait until the store answers");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            self.metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
        }
        let spec = |i: usize| -> Option<v1::TaskSpec> { specs.get(i).and_then(|b| b.as_deref()).and_then(|b| v1::TaskSpec::decode(b).ok()) };
        for out in txn.outputs {
            match out {
                Output::Reply(send) => send(),
                Output::Lease { session, mut grant, read } => {
                    grant.task = spec(read);
                    if grant.task.is_none() {
                        error!(lease = %grant.lease_id, "task spec missing in Redis; the lease will expire and the rollout retry");
                    }
                    self.send(session, Out::Lease(grant));
                }
                Output::Get { reply, mut status, read } => {
                    status.task = spec(read);
                    let _ = reply.send(Ok(status));
                }
                Output::List { reply, mut resp, reads } => {
                    for (t, read) in resp.tasks.iter_mut().zip(reads) {
                        t.task = spec(read);
                    }
                    let _ = reply.send(Ok(resp));
                }
                Output::Send(session, msg) => self.send(session, msg),
            }
        }
        for e in txn.events {
            let _ = self.events.send(e);
        }
    }
}
