//! Worker sessions: attaching (and claiming leases back), the messages a worker sends on its
//! lease-bound session, and closing a session that breaks the rules or cannot keep up.

use super::*;

/// Lease ids a heartbeat may list beyond twice its session's capacity (a worker lists the leases
/// it runs and those whose results wait for an answer); more closes the session.
const HEARTBEAT_MARGIN: usize = 64;

pub(super) struct Session {
    pub(super) worker: Arc<str>,
    /// The credential it attached with.
    pub(super) credential: Arc<str>,
    pub(super) host: String,
    pub(super) labels: Labels,
    pub(super) capacity: v1::Capacity,
    /// Leases it may hold at once: the capacity it registered (episodes, at least 1, plus synth).
    pub(super) cap: u32,
    pub(super) cached_images: HashSet<String>,
    /// Leases asked for and not yet sent; never above `cap`.
    pub(super) credits: u32,
    pub(super) leases: HashSet<Arc<str>>,
    pub(super) tx: SessionTx,
    pub(super) connected_ms: i64,
    pub(super) last_heartbeat_ms: i64,
    pub(super) backpressured: bool,
    /// Shutting down: sent no new leases.
    pub(super) draining: bool,
}

impl Session {
    /// Leases it may still be sent: its capacity less the leases it holds.
    pub(super) fn room(&self) -> u32 {
        self.cap.saturating_sub(self.leases.len() as u32)
    }
}

/// The most leases a session may hold: the episodes it registered (at least one, as the worker
/// counts its slots) plus its synthesis slots.
pub(super) fn session_cap(c: &v1::Capacity) -> u32 {
    c.episodes.max(1).saturating_add(c.synth)
}

impl Core {
    pub(super) fn attach(&mut self, sid: u64, reg: v1::Register, tx: SessionTx, credential: Arc<str>, txn: &mut Txn) {
        let worker: Arc<str> = Arc::from(reg.worker_id.as_str());
        // A worker that reconnects replaces its old session. From another host it is a second
        // worker with the same id: the two replace each other's sessions, so say so loudly. A
        // session of another credential is not replaced: that would hand its leases over.
        let old: Vec<u64> = self.sessions.iter().filter(|(_, s)| s.worker == worker).map(|(id, _)| *id).collect();
        if let Some(other) = old.iter().filter_map(|id| self.sessions.get(id)).find(|s| s.credential != credential) {
            warn!(worker = %worker, "refused an attach as worker {worker} with credential {credential}: it is attached with credential {}", other.credential);
            let _ = tx.try_send(Err(Status::permission_denied(format!(
                "worker id {worker} is attached with another credential ({}); a credential cannot take over another's session",
                other.credential
            ))));
            return;
        }
        for id in old {
            let Some(s) = self.sessions.remove(&id) else { continue };
            self.release_session_leases(&s);
            if s.host != reg.host {
                self.metrics.worker_id_conflicts.inc();
                warn!(
                    worker = %worker,
                    "worker id {worker} attached from host {:?} while its session from host {:?} was open: two workers share \
                     this id and each replaces the other's session; give each worker its own worker_id",
                    reg.host,
                    s.host
                );
            }
        }
        let now = now_ms();
        let mut session = Session {
            worker: worker.clone(),
            credential: credential.clone(),
            host: reg.host,
            labels: reg.labels.into_iter().collect(),
            capacity: reg.capacity.unwrap_or_default(),
            cap: session_cap(&reg.capacity.unwrap_or_default()),
            cached_images: reg.cached_images.into_iter().collect(),
            credits: 0,
            leases: HashSet::new(),
            tx,
            connected_ms: now,
            last_heartbeat_ms: now,
            backpressured: false,
            draining: false,
        };
        txn.outputs.push(Output::Send(
            sid,
            Out::Registered(v1::Registered {
                session_id: sid.to_string(),
                heartbeat_interval_ms: self.cfg.heartbeat_interval.as_millis() as u32,
                lease_ttl_ms: self.cfg.lease_ttl.as_millis() as u32,
                coordinator_version: agentmill_proto::VERSION.to_string(),
            }),
        ));
        // Leases the worker still runs: keep the live ones, tell it to drop the rest.
        for lease_id in reg.held_leases {
            match self.table.leases.get_mut(lease_id.as_str()) {
                // Only the worker id the lease was granted to, with the credential it was granted
                // to (any credential bound to the id, after a coordinator restart).
                Some(l) if l.worker == worker && l.credential.as_ref().is_none_or(|c| *c == credential) => {
                    l.session = Some(sid);
                    l.credential = Some(credential.clone());
                    l.deadline_ms = now + self.cfg.lease_ttl.as_millis() as i64;
                    session.leases.insert(Arc::from(lease_id.as_str()));
                }
                _ => txn.outputs.push(Output::Send(
                    sid,
                    Out::Cancel(v1::CancelLease { lease_id, reason: "the lease expired or was superseded while the worker was away".into() }),
                )),
            }
        }
        // Leases of this worker that it did not claim (e.g. a restarted worker) stay until they expire.
        info!(worker = %worker, session = sid, held = session.leases.len(), "worker attached");
        self.sessions.insert(sid, session);
        self.metrics.workers_connected.set(self.sessions.len() as i64);
    }

    /// The lease named by a worker's message, if it is live and held by this very session (it
    /// was granted on it, or claimed back by the same worker id and credential at Register).
    pub(super) fn live_lease(&self, sid: u64, lease_id: &str) -> Option<(Arc<str>, TaskIdx, u32)> {
        let s = self.sessions.get(&sid)?;
        let (k, l) = self.table.leases.get_key_value(lease_id)?;
        (l.session == Some(sid) && l.worker == s.worker).then(|| (k.clone(), l.task, l.rollout))
    }

    pub(super) fn worker_message(&mut self, sid: u64, msg: In, txn: &mut Txn) {
        let now = now_ms();
        match msg {
            In::Register(_) => {
                txn.outputs.push(Output::Send(sid, Out::Ack(v1::ResultAck { lease_id: String::new(), accepted: false, reason: "already registered on this session".into() })));
            }
            In::Heartbeat(hb) => {
                let ttl = self.cfg.lease_ttl.as_millis() as i64;
                let Some(s) = self.sessions.get_mut(&sid) else { return };
                let limit = 2 * s.cap as usize + HEARTBEAT_MARGIN;
                if hb.active_leases.len() > limit {
                    let why = format!(
                        "heartbeat: lists {} lease ids; a session of capacity {} holds {} and may list at most {limit} (twice its capacity + {HEARTBEAT_MARGIN}); the session is closed",
                        hb.active_leases.len(),
                        s.cap,
                        s.leases.len()
                    );
                    self.close_session(sid, Some(Status::invalid_argument(why)));
                    return;
                }
                s.last_heartbeat_ms = now;
                s.backpressured = hb.backpressured;
                s.draining = hb.draining;
                if hb.cached_images_sent || !hb.cached_images.is_empty() {
                    s.cached_images = hb.cached_images.into_iter().collect();
                }
                let worker = s.worker.clone();
                for lease_id in hb.active_leases {
                    // A heartbeat renews the leases this session holds; it does not claim others
                    // (a reconnected worker claims its leases back in Register's held_leases).
                    match self.table.leases.get_mut(lease_id.as_str()) {
                        Some(l) if l.worker == worker && l.session == Some(sid) => {
                            l.deadline_ms = now + ttl;
                        }
                        _ => txn.outputs.push(Output::Send(sid, Out::Cancel(v1::CancelLease { lease_id, reason: "unknown or expired lease".into() }))),
                    }
                }
            }
            In::Credit(c) => {
                // Credits beyond the registered capacity are dropped: a session never holds more
                // leases than it said it can run (see `dispatch`).
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.credits = s.credits.saturating_add(c.n).min(s.cap);
                }
            }
            In::Progress(p) => match self.live_lease(sid, &p.lease_id) {
                Some((_, idx, n)) => {
                    let stage = Stage::try_from(p.stage).unwrap_or(Stage::Unspecified);
                    let r = &mut self.table.tasks[idx as usize].rollouts[n as usize];
                    let previous = r.state;
                    if r.stage != stage || previous != TaskState::Running {
                        r.state = TaskState::Running;
                        r.stage = stage;
                        self.touch(txn, idx);
                        self.event(txn, idx, n, previous, &p.detail);
                    }
                }
                None => txn.outputs.push(Output::Send(sid, Out::Cancel(v1::CancelLease { lease_id: p.lease_id, reason: "unknown or expired lease".into() }))),
            },
            In::Result(res) => match self.live_lease(sid, &res.lease_id) {
                Some((lease_id, idx, n)) => {
                    self.table.leases.remove(&lease_id);
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.leases.remove(&lease_id);
                    }
                    self.finish(idx, n, res.result.unwrap_or_default(), txn);
                    txn.outputs.push(Output::Send(sid, Out::Ack(v1::ResultAck { lease_id: res.lease_id, accepted: true, reason: String::new() })));
                }
                None => {
                    self.stats.stale_results += 1;
                    self.metrics.stale_results.inc();
                    warn!(lease = %res.lease_id, "refused a result on a lease that expired, was superseded or was cancelled");
                    txn.outputs.push(Output::Send(
                        sid,
                        Out::Ack(v1::ResultAck {
                            lease_id: res.lease_id,
                            accepted: false,
                            reason: "the lease expired, was superseded or was cancelled; the result was not recorded".into(),
                        }),
                    ));
                }
            },
            In::Release(rel) => {
                if let Some((lease_id, idx, n)) = self.live_lease(sid, &rel.lease_id) {
                    self.table.leases.remove(&lease_id);
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.leases.remove(&lease_id);
                    }
                    let reason = format!("released by the worker: {}", rel.reason);
                    self.requeue(idx, n, &reason, false, txn);
                }
            }
        }
    }

    /// A closed session's leases live on until their deadline, held by no session: the worker
    /// may claim them back when it attaches again (Register's held_leases).
    pub(super) fn release_session_leases(&mut self, s: &Session) {
        for lease in &s.leases {
            if let Some(l) = self.table.leases.get_mut(lease) {
                l.session = None;
            }
        }
    }

    pub(super) fn send(&mut self, session: u64, msg: Out) {
        let Some(s) = self.sessions.get(&session) else { return };
        match s.tx.try_send(Ok(CoordinatorMessage { msg: Some(msg) })) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => debug!(session, "session closed before a message could be sent"),
            Err(mpsc::error::TrySendError::Full(_)) => {
                error!(
                    worker = %s.worker,
                    session,
                    "worker {} left {} messages unread on its session (session_buffer): the session is closed as one that cannot keep up; \
                     its leases live until their deadline unless it attaches again and claims them",
                    s.worker,
                    self.cfg.session_buffer
                );
                self.close_session(session, None);
            }
        }
    }

    /// Ends a session as a disconnect would (its leases live on until their deadline, for the
    /// worker to claim back), telling it why when `error` is given and its channel has room.
    pub(super) fn close_session(&mut self, sid: u64, error: Option<Status>) {
        let Some(s) = self.sessions.remove(&sid) else { return };
        if let Some(e) = error {
            warn!(worker = %s.worker, session = sid, "session closed: {}", e.message());
            let _ = s.tx.try_send(Err(e));
        }
        self.release_session_leases(&s);
        self.metrics.workers_connected.set(self.sessions.len() as i64);
    }
}
