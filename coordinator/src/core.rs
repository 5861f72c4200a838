//! The coordinator's core: one task that owns the task table, the worker sessions and the
//! leases, and persists every change to Redis before anyone hears of it.
//!
//! Requests arrive on a bounded channel. The core takes a batch of them, applies them to memory,
//! grants leases to workers with credits, writes the batch's effects in one Redis pipeline
//! (group commit), and only then answers, sends the leases and publishes events. So nothing a
//! client or worker was told can be lost by a crash, and one Redis round trip serves thousands
//! of requests. Specs stay in Redis and are read in the same pipeline that grants their lease.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentmill_proto::v1::{self, CoordinatorMessage, Stage, TaskState, coordinator_message::Msg as Out, worker_message::Msg as In};
use prost::Message as _;
use redis::aio::ConnectionManager;
use tokio::sync::{broadcast, mpsc, oneshot};
use tonic::Status;
use tracing::{debug, error, info, warn};

use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::state::{Labels, Lease, Rollout, TaskEntry, TaskIdx, TaskMeta, TaskTable};

/// How far into a priority band the scheduler looks for a task whose image a worker holds.
const IMAGE_LOOKAHEAD: usize = 32;
/// Lease ids a heartbeat may list beyond twice its session's capacity (a worker lists the leases
/// it runs and those whose results wait for an answer); more closes the session.
const HEARTBEAT_MARGIN: usize = 64;
/// Requests applied per group commit at most.
const MAX_BATCH_COMMANDS: usize = 4096;
/// A gap this long between two turns of the core (a Redis write that hung, a starved process)
/// is a stall: every lease deadline is pushed back by it.
const STALL: Duration = Duration::from_secs(1);

/// Settings the core needs.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Lease lifetime without a heartbeat.
    pub lease_ttl: Duration,
    /// Heartbeat interval asked of workers.
    pub heartbeat_interval: Duration,
    /// Attempts per rollout before `failed`.
    pub max_attempts: u32,
    /// Hand-backs per rollout before `failed` (0: no limit).
    pub max_handbacks: u32,
    /// Redis key namespace.
    pub namespace: String,
    /// Events buffered for watchers.
    pub watch_buffer: usize,
    /// Messages a worker session may leave unread before it is closed.
    pub session_buffer: usize,
}

/// A validated task ready to be stored.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// The id.
    pub id: String,
    /// The scheduler's view.
    pub meta: TaskMeta,
    /// `v1::TaskSpec` encoded.
    pub spec: Vec<u8>,
}

/// What a submission did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubmitOutcome {
    /// Newly queued.
    pub accepted: Vec<String>,
    /// Already known (not queued again).
    pub existing: Vec<String>,
}

/// A worker session's outbound channel, bounded by `session_buffer`: a session that leaves that
/// many messages unread is closed rather than buffered without end.
pub type SessionTx = mpsc::Sender<Result<CoordinatorMessage, Status>>;

/// A request to the core.
#[derive(Debug)]
pub enum Command {
    /// Store tasks (idempotent by id).
    Submit(Vec<NewTask>, oneshot::Sender<SubmitOutcome>),
    /// One task with its spec.
    Get(String, oneshot::Sender<Result<v1::TaskStatus, Status>>),
    /// A page of tasks.
    List(v1::ListTasksRequest, oneshot::Sender<Result<v1::ListTasksResponse, Status>>),
    /// Cancel tasks.
    Cancel(Vec<String>, String, oneshot::Sender<v1::CancelTasksResponse>),
    /// Run failed and cancelled rollouts again.
    Retry(Vec<String>, String, oneshot::Sender<v1::RetryTasksResponse>),
    /// Cordon (or, with `true`, uncordon) worker ids.
    Cordon(Vec<String>, bool, oneshot::Sender<v1::CordonWorkersResponse>),
    /// Counts and rates.
    Stats(oneshot::Sender<v1::ClusterStatsResponse>),
    /// A worker registered on a new session, with the name of the credential it attached with.
    Attach(u64, v1::Register, SessionTx, Arc<str>),
    /// A message on a session.
    Worker(u64, In),
    /// A session ended.
    Detach(u64),
}

/// A cheap handle to the core.
#[derive(Debug, Clone)]
pub struct CoreHandle {
    tx: mpsc::Sender<Command>,
    events: broadcast::Sender<v1::TaskEvent>,
    /// The metrics the core sets.
    pub metrics: Arc<Metrics>,
    /// Settings, for the service.
    pub config: Arc<CoreConfig>,
}

impl CoreHandle {
    /// Sends a command; fails when the core has stopped.
    pub async fn send(&self, cmd: Command) -> Result<(), Status> {
        self.tx.send(cmd).await.map_err(|_| Status::unavailable("the coordinator is shutting down"))
    }

    /// Sends a command and waits for its answer.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| Status::unavailable("the coordinator is shutting down"))
    }

    /// A live feed of events.
    pub fn subscribe(&self) -> broadcast::Receiver<v1::TaskEvent> {
        self.events.subscribe()
    }
}

struct Session {
    worker: Arc<str>,
    /// The credential it attached with.
    credential: Arc<str>,
    host: String,
    labels: Labels,
    capacity: v1::Capacity,
    /// Leases it may hold at once: the capacity it registered (episodes, at least 1, plus synth).
    cap: u32,
    cached_images: HashSet<String>,
    /// Leases asked for and not yet sent; never above `cap`.
    credits: u32,
    leases: HashSet<Arc<str>>,
    tx: SessionTx,
    connected_ms: i64,
    last_heartbeat_ms: i64,
    backpressured: bool,
    /// Shutting down: sent no new leases.
    draining: bool,
}

impl Session {
    /// Leases it may still be sent: its capacity less the leases it holds.
    fn room(&self) -> u32 {
        self.cap.saturating_sub(self.leases.len() as u32)
    }
}

/// The most leases a session may hold: the episodes it registered (at least one, as the worker
/// counts its slots) plus its synthesis slots.
fn session_cap(c: &v1::Capacity) -> u32 {
    c.episodes.max(1).saturating_add(c.synth)
}

enum Output {
    /// An answer ready before the write, sent once the write landed.
    Reply(Box<dyn FnOnce() + Send>),
    Lease { session: u64, grant: v1::LeaseGrant, read: usize },
    Get { reply: oneshot::Sender<Result<v1::TaskStatus, Status>>, status: v1::TaskStatus, read: usize },
    List { reply: oneshot::Sender<Result<v1::ListTasksResponse, Status>>, resp: v1::ListTasksResponse, reads: Vec<usize> },
    Send(u64, Out),
}

impl Output {
    fn reply<T: Send + 'static>(to: oneshot::Sender<T>, answer: T) -> Output {
        Output::Reply(Box::new(move || {
            let _ = to.send(answer);
        }))
    }
}

/// The effects of one batch, written in one pipeline.
struct Txn {
    pipe: redis::Pipeline,
    writes: usize,
    dirty: HashSet<TaskIdx>,
    reads: usize,
    outputs: Vec<Output>,
    events: Vec<v1::TaskEvent>,
}

impl Txn {
    fn new() -> Txn {
        Txn { pipe: redis::pipe(), writes: 0, dirty: HashSet::new(), reads: 0, outputs: Vec::new(), events: Vec::new() }
    }

    fn read_spec(&mut self, keys: &Keys, id: &str) -> usize {
        self.pipe.hget(keys.task(id), "spec");
        self.reads += 1;
        self.reads - 1
    }
}

/// Counters and the episode-rate window.
#[derive(Default)]
struct Stats {
    buckets: Vec<(i64, u64)>,
    by_resolution: BTreeMap<String, u64>,
    by_exit: BTreeMap<String, u64>,
    leases_granted: u64,
    leases_expired: u64,
    stale_results: u64,
}

impl Stats {
    const WINDOW: usize = 600;

    fn record_finish(&mut self, now_ms: i64) {
        if self.buckets.is_empty() {
            self.buckets = vec![(i64::MIN, 0); Self::WINDOW];
        }
        let sec = now_ms.div_euclid(1000);
        let slot = &mut self.buckets[sec.rem_euclid(Self::WINDOW as i64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += 1;
    }

    fn rate(&self, now_ms: i64, secs: i64) -> f64 {
        let now = now_ms.div_euclid(1000);
        let n: u64 = self.buckets.iter().filter(|(s, _)| *s > now - secs && *s <= now).map(|(_, c)| c).sum();
        n as f64 / secs as f64
    }
}

/// The core's state.
struct Core {
    cfg: Arc<CoreConfig>,
    keys: Keys,
    redis: ConnectionManager,
    table: TaskTable,
    sessions: BTreeMap<u64, Session>,
    events: broadcast::Sender<v1::TaskEvent>,
    event_seq: u64,
    stats: Stats,
    metrics: Arc<Metrics>,
    /// Worker ids sent no new leases (`{ns}:cordoned`).
    cordoned: BTreeSet<Arc<str>>,
    /// Tasks by state, kept up to date from `changed` ([`Core::state_counts`]).
    counts: StateCounts,
}

/// Tasks by state, kept incrementally: each task's state as last counted, and the tasks that
/// may have changed since. `ClusterStats` and `/api/stats` then cost the changes, not a scan of
/// the task table.
#[derive(Default)]
struct StateCounts {
    by_state: HashMap<TaskState, u64>,
    counted: Vec<Option<TaskState>>,
    changed: Vec<TaskIdx>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Loads the task store from Redis and starts the core. Returns its handle.
pub async fn start(cfg: CoreConfig, redis: ConnectionManager, metrics: Arc<Metrics>) -> Result<CoreHandle, redis::RedisError> {
    let cfg = Arc::new(cfg);
    let keys = Keys::new(&cfg.namespace);
    let (events, _) = broadcast::channel(cfg.watch_buffer.max(16));
    let mut core = Core {
        cfg: cfg.clone(),
        keys,
        redis,
        table: TaskTable::default(),
        sessions: BTreeMap::new(),
        events: events.clone(),
        event_seq: 0,
        stats: Stats::default(),
        metrics: metrics.clone(),
        cordoned: BTreeSet::new(),
        counts: StateCounts::default(),
    };
    let started = Instant::now();
    core.load().await?;
    info!(
        tasks = core.table.tasks.len(),
        queued = core.table.queued_len(),
        leases = core.table.leases.len(),
        "task store loaded from Redis in {:?}",
        started.elapsed()
    );
    let (tx, rx) = mpsc::channel(65_536);
    tokio::spawn(core.run(rx));
    Ok(CoreHandle { tx, events, metrics, config: cfg })
}

impl Core {
    /// Rebuilds memory from Redis: every task, its rollouts, its queue position; leases that were
    /// live get a fresh TTL so their workers can reconnect and renew them.
    async fn load(&mut self) -> Result<(), redis::RedisError> {
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

    fn insert_entry(&mut self, id: &str, meta: &TaskMeta, rollouts: Vec<Rollout>, updated_ms: i64) -> TaskIdx {
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

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut gauges_at = Instant::now();
        let mut last_turn = Instant::now();
        loop {
            let mut txn = Txn::new();
            let cmd = tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => Some(cmd),
                    None => break,
                },
                _ = tick.tick() => None,
            };
            // While the core could not turn (a Redis write that hung: an outage, a failover),
            // workers could not renew their leases: that time does not count against them.
            let gap = last_turn.elapsed();
            last_turn = Instant::now();
            if gap >= STALL {
                self.push_back_deadlines(gap);
            }
            let ticked = cmd.is_none();
            let mut n = 0;
            if let Some(cmd) = cmd {
                self.apply(cmd, &mut txn);
                n = 1;
            }
            // Every message waiting (the heartbeats queued during a stall above all) is applied
            // before any lease is judged expired.
            let mut more = false;
            while n < MAX_BATCH_COMMANDS {
                match rx.try_recv() {
                    Ok(cmd) => {
                        self.apply(cmd, &mut txn);
                        n += 1;
                    }
                    Err(_) => break,
                }
                more = n == MAX_BATCH_COMMANDS;
            }
            if ticked && !more {
                self.expire_leases(&mut txn);
            }
            if ticked && gauges_at.elapsed() >= Duration::from_secs(1) {
                self.refresh_gauges();
                gauges_at = Instant::now();
            }
            self.dispatch(&mut txn);
            self.flush(txn).await;
        }
        info!("coordinator core stopped");
    }

    fn apply(&mut self, cmd: Command, txn: &mut Txn) {
        match cmd {
            Command::Submit(tasks, reply) => self.submit(tasks, reply, txn),
            Command::Get(id, reply) => match self.table.by_id.get(id.as_str()) {
                Some(&idx) => {
                    let status = self.table.tasks[idx as usize].status_proto();
                    let read = txn.read_spec(&self.keys, &id);
                    txn.outputs.push(Output::Get { reply, status, read });
                }
                None => {
                    let _ = reply.send(Err(Status::not_found(format!("task {id:?} is not known to this coordinator"))));
                }
            },
            Command::List(req, reply) => self.list(req, reply, txn),
            Command::Cancel(ids, reason, reply) => self.cancel(ids, reason, reply, txn),
            Command::Retry(ids, reason, reply) => self.retry(ids, reason, reply, txn),
            Command::Cordon(ids, uncordon, reply) => self.cordon(ids, uncordon, reply, txn),
            Command::Stats(reply) => {
                let stats = self.cluster_stats();
                let _ = reply.send(stats);
            }
            Command::Attach(sid, reg, tx, credential) => self.attach(sid, reg, tx, credential, txn),
            Command::Worker(sid, msg) => self.worker_message(sid, msg, txn),
            Command::Detach(sid) => {
                if let Some(s) = self.sessions.remove(&sid) {
                    info!(worker = %s.worker, leases = s.leases.len(), "worker detached; its leases live until their deadline");
                    self.release_session_leases(&s);
                    self.metrics.workers_connected.set(self.sessions.len() as i64);
                }
            }
        }
    }

    /// A closed session's leases live on until their deadline, held by no session: the worker
    /// may claim them back when it attaches again (Register's held_leases).
    fn release_session_leases(&mut self, s: &Session) {
        for lease in &s.leases {
            if let Some(l) = self.table.leases.get_mut(lease) {
                l.session = None;
            }
        }
    }

    fn event(&mut self, txn: &mut Txn, idx: TaskIdx, n: u32, previous: TaskState, reason: &str) {
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

    fn touch(&mut self, txn: &mut Txn, idx: TaskIdx) {
        self.table.tasks[idx as usize].updated_ms = now_ms();
        self.counts.changed.push(idx);
        txn.dirty.insert(idx);
    }

    fn submit(&mut self, tasks: Vec<NewTask>, reply: oneshot::Sender<SubmitOutcome>, txn: &mut Txn) {
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

    fn list(&mut self, req: v1::ListTasksRequest, reply: oneshot::Sender<Result<v1::ListTasksResponse, Status>>, txn: &mut Txn) {
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

    fn cancel(&mut self, ids: Vec<String>, reason: String, reply: oneshot::Sender<v1::CancelTasksResponse>, txn: &mut Txn) {
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
    fn retry(&mut self, ids: Vec<String>, reason: String, reply: oneshot::Sender<v1::RetryTasksResponse>, txn: &mut Txn) {
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
    fn cordon(&mut self, ids: Vec<String>, uncordon: bool, reply: oneshot::Sender<v1::CordonWorkersResponse>, txn: &mut Txn) {
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

    fn attach(&mut self, sid: u64, reg: v1::Register, tx: SessionTx, credential: Arc<str>, txn: &mut Txn) {
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
    fn live_lease(&self, sid: u64, lease_id: &str) -> Option<(Arc<str>, TaskIdx, u32)> {
        let s = self.sessions.get(&sid)?;
        let (k, l) = self.table.leases.get_key_value(lease_id)?;
        (l.session == Some(sid) && l.worker == s.worker).then(|| (k.clone(), l.task, l.rollout))
    }

    fn worker_message(&mut self, sid: u64, msg: In, txn: &mut Txn) {
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

    /// Records a result on a live lease: the model's outcome ends the rollout; an infra failure
    /// is retried until the attempts run out.
    fn finish(&mut self, idx: TaskIdx, n: u32, result: v1::EpisodeResult, txn: &mut Txn) {
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
            let reason = format!("{}: {}", exit.as_str_name().trim_start_matches("EXIT_REASON_").to_lowercase(), result.error);
            self.requeue(idx, n, &reason, true, txn);
            return;
        }
        let resolution = v1::Resolution::try_from(result.resolution).unwrap_or(v1::Resolution::Unspecified);
        let res_name = resolution.as_str_name().trim_start_matches("RESOLUTION_").to_string();
        let exit_name = exit.as_str_name().trim_start_matches("EXIT_REASON_").to_lowercase();
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
    fn requeue(&mut self, idx: TaskIdx, n: u32, reason: &str, counts: bool, txn: &mut Txn) {
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

    /// Moves every live lease's deadline `by` later (after a stall of that length).
    fn push_back_deadlines(&mut self, by: Duration) {
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

    fn expire_leases(&mut self, txn: &mut Txn) {
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

    /// Grants leases to sessions with credits, one per session per round so work spreads.
    fn dispatch(&mut self, txn: &mut Txn) {
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
                let (idx, n) = (key.3, key.2);
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

    /// Tasks by state, exact: the tasks changed since the last call are moved from the state
    /// they were counted in to the one they are in (every change of a rollout goes through
    /// `touch` or `dispatch`, which note the task).
    fn state_counts(&mut self) -> &HashMap<TaskState, u64> {
        let c = &mut self.counts;
        if c.counted.len() < self.table.tasks.len() {
            c.counted.resize(self.table.tasks.len(), None);
        }
        self.metrics.task_recounts.inc_by(c.changed.len() as u64);
        for idx in c.changed.drain(..) {
            let now = self.table.tasks[idx as usize].state();
            let slot = &mut c.counted[idx as usize];
            if *slot == Some(now) {
                continue;
            }
            if let Some(before) = slot.replace(now)
                && let Some(n) = c.by_state.get_mut(&before)
            {
                *n = n.saturating_sub(1);
            }
            *c.by_state.entry(now).or_default() += 1;
        }
        &c.by_state
    }

    fn cluster_stats(&mut self) -> v1::ClusterStatsResponse {
        let now = now_ms();
        let tasks_by_state: HashMap<String, u64> =
            self.state_counts().iter().filter(|(_, n)| **n > 0).map(|(s, n)| (state_name(*s), *n)).collect();
        v1::ClusterStatsResponse {
            tasks_by_state,
            workers: self
                .sessions
                .values()
                .map(|s| v1::WorkerInfo {
                    worker_id: s.worker.to_string(),
                    host: s.host.clone(),
                    labels: s.labels.clone().into_iter().collect(),
                    capacity: Some(s.capacity),
                    active_leases: s.leases.len() as u32,
                    credits: s.credits.min(s.room()),
                    connected_at_unix_ms: s.connected_ms,
                    last_heartbeat_unix_ms: s.last_heartbeat_ms,
                    draining: s.draining,
                    backpressured: s.backpressured,
                    cached_images: s.cached_images.len() as u32,
                    cordoned: self.cordoned.contains(&s.worker),
                })
                .collect(),
            cordoned_workers: self.cordoned.iter().map(|w| w.to_string()).collect(),
            episodes_per_s_1m: self.stats.rate(now, 60),
            episodes_per_s_10m: self.stats.rate(now, 600),
            results_by_resolution: self.stats.by_resolution.clone().into_iter().collect(),
            results_by_exit_reason: self.stats.by_exit.clone().into_iter().collect(),
            leases_granted: self.stats.leases_granted,
            leases_expired: self.stats.leases_expired,
            stale_results_refused: self.stats.stale_results,
            // The stream and learner figures are filled in by the observer (observe.rs).
            ..Default::default()
        }
    }

    fn refresh_gauges(&mut self) {
        let counts = self.state_counts().clone();
        for s in [TaskState::Queued, TaskState::Leased, TaskState::Running, TaskState::Done, TaskState::Failed, TaskState::Cancelled] {
            self.metrics.tasks.with_label_values(&[&state_name(s)]).set(counts.get(&s).copied().unwrap_or(0) as i64);
        }
        self.metrics.queued_rollouts.set(self.table.queued_len() as i64);
    }

    /// Writes the batch, then answers. Redis errors are retried (with backoff) rather than
    /// answered: the coordinator cannot promise anything it could not store.
    async fn flush(&mut self, mut txn: Txn) {
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

    fn send(&mut self, session: u64, msg: Out) {
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
    fn close_session(&mut self, sid: u64, error: Option<Status>) {
        let Some(s) = self.sessions.remove(&sid) else { return };
        if let Some(e) = error {
            warn!(worker = %s.worker, session = sid, "session closed: {}", e.message());
            let _ = s.tx.try_send(Err(e));
        }
        self.release_session_leases(&s);
        self.metrics.workers_connected.set(self.sessions.len() as i64);
    }
}

/// The lower-case name of a task state (`queued`, `leased`, ...).
pub fn state_name(s: TaskState) -> String {
    s.as_str_name().trim_start_matches("TASK_STATE_").to_lowercase()
}
