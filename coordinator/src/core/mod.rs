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

mod dispatch;
mod lifecycle;
mod sessions;
mod stats;
mod store;

use sessions::Session;
use stats::{StateCounts, Stats};

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
}
