//! The worker's session with the coordinator (`Attach`): register, ask for work with credits,
//! heartbeat the leases it runs, report progress and results — and survive the coordinator
//! going away.
//!
//! [`WorkerSession::start`] runs the connection in a background task and hands back a
//! [`SessionHandle`] (to report) and a receiver of [`SessionEvent`]s (leases granted, leases
//! cancelled). The connection reconnects with exponential backoff and jitter; on every
//! (re)connect it registers with the leases it still holds, asks for credits equal to its free
//! slots, and resends every result the coordinator has not acknowledged — so a coordinator
//! restart loses no result and no lease, and a result is recorded exactly once (the coordinator
//! refuses a second result on the same lease).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use agentmill_proto::v1::{
    self, Capacity, CoordinatorMessage, WorkerMessage, coordinator_message::Msg as Out,
    worker_message::Msg as In,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use agentmill_proto::connect;
use tracing::{debug, info, warn};

/// How to reach the coordinator and what to tell it about this worker.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `http://host:port` (or https).
    pub addr: String,
    /// Bearer token, when the coordinator wants one.
    pub token: Option<String>,
    /// PEM CA certificate to trust for an `https://` address (the system's roots are trusted too).
    pub ca_cert: Option<std::path::PathBuf>,
    /// Stable id of this worker (survives restarts, so orphans can be found).
    pub worker_id: String,
    /// Host name, for operators.
    pub host: String,
    /// Concurrent episodes per stage.
    pub capacity: Capacity,
    /// Labels for affinity.
    pub labels: BTreeMap<String, String>,
    /// Images this host holds.
    pub cached_images: Vec<String>,
    /// Longest wait between reconnect attempts.
    pub max_backoff: Duration,
}

/// What the coordinator tells the worker.
#[derive(Debug, Clone, PartialEq)]
#[expect(clippy::large_enum_variant, reason = "one event per lease: boxing the grant would save nothing measurable")]
pub enum SessionEvent {
    /// Run this episode.
    Lease(v1::LeaseGrant),
    /// Stop this episode (cancelled, expired, or superseded); do not report it.
    Cancel(v1::CancelLease),
    /// A result was refused (the lease was no longer live): nothing was recorded.
    Refused { lease_id: String, reason: String },
    /// (Re)connected and registered.
    Connected { session_id: String },
}

enum Cmd {
    Progress(v1::Progress),
    Result(String, v1::EpisodeResult),
    Release(String, String),
    Backpressure(bool),
    Drain,
    CachedImages(Vec<String>),
}

/// Reports from the worker's episodes to the coordinator. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::Progress(p) => write!(f, "Progress({})", p.lease_id),
            Cmd::Result(l, _) => write!(f, "Result({l})"),
            Cmd::Release(l, _) => write!(f, "Release({l})"),
            Cmd::Backpressure(b) => write!(f, "Backpressure({b})"),
            Cmd::Drain => write!(f, "Drain"),
            Cmd::CachedImages(images) => write!(f, "CachedImages({})", images.len()),
        }
    }
}

impl SessionHandle {
    /// The episode on `lease_id` reached `stage`.
    pub fn progress(&self, lease_id: &str, stage: v1::Stage, detail: impl Into<String>, step: u32) {
        let _ = self.tx.send(Cmd::Progress(v1::Progress { lease_id: lease_id.to_string(), stage: stage as i32, detail: detail.into(), step }));
    }

    /// The episode on `lease_id` finished; kept and resent until the coordinator answers.
    pub fn result(&self, lease_id: &str, result: v1::EpisodeResult) {
        let _ = self.tx.send(Cmd::Result(lease_id.to_string(), result));
    }

    /// Hands a lease back unfinished (draining).
    pub fn release(&self, lease_id: &str, reason: impl Into<String>) {
        let _ = self.tx.send(Cmd::Release(lease_id.to_string(), reason.into()));
    }

    /// Stop (or resume) taking leases: the learner lags behind.
    pub fn set_backpressured(&self, on: bool) {
        let _ = self.tx.send(Cmd::Backpressure(on));
    }

    /// Stop taking leases for good (the worker is shutting down): no more credits, and the
    /// coordinator is told at once (a heartbeat with `draining`), so it sends no lease that
    /// would only be handed back.
    pub fn drain(&self) {
        let _ = self.tx.send(Cmd::Drain);
    }

    /// The images now present on the host. When they differ from the last report, the
    /// coordinator is told at once (a heartbeat), so its scheduler prefers this worker for them.
    pub fn set_cached_images(&self, images: Vec<String>) {
        let _ = self.tx.send(Cmd::CachedImages(images));
    }
}

/// Image names sorted and without repeats, so two listings compare equal when they hold the same.
fn normalized(mut images: Vec<String>) -> Vec<String> {
    images.sort();
    images.dedup();
    images
}

/// The session's background task.
#[derive(Debug)]
pub struct WorkerSession {
    cfg: SessionConfig,
    /// Leases granted and not yet finished.
    active: HashSet<String>,
    /// Results sent but not acknowledged, by lease.
    unacked: HashMap<String, v1::EpisodeResult>,
    backpressured: bool,
    /// Draining: credits are held back for good.
    draining: bool,
    /// `cfg.cached_images` changed since the coordinator last heard them.
    images_changed: bool,
    /// Credits held back while back-pressured, given when it clears.
    owed: u32,
    events: mpsc::UnboundedSender<SessionEvent>,
}

impl WorkerSession {
    /// Starts the session in the background.
    pub fn start(mut cfg: SessionConfig) -> (SessionHandle, mpsc::UnboundedReceiver<SessionEvent>) {
        cfg.cached_images = normalized(cfg.cached_images);
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let session = WorkerSession { cfg, active: HashSet::new(), unacked: HashMap::new(), backpressured: false, draining: false, images_changed: false, owed: 0, events: ev_tx };
        tokio::spawn(session.run(cmd_rx));
        (SessionHandle { tx: cmd_tx }, ev_rx)
    }

    fn free_slots(&self) -> u32 {
        self.cfg.capacity.episodes.max(1).saturating_sub((self.active.len() + self.unacked.len()) as u32)
    }

    /// Asks for `n` more leases, or holds them back while back-pressured.
    fn credit(&mut self, n: u32, send: &impl Fn(In)) {
        if n == 0 {
            return;
        }
        if self.backpressured || self.draining {
            self.owed += n;
        } else {
            send(In::Credit(v1::Credit { n }));
        }
    }

    /// The heartbeat: leases to renew, whether to send more, and the host's images when they
    /// changed since the last report.
    fn heartbeat(&mut self) -> v1::Heartbeat {
        let cached_images_sent = std::mem::take(&mut self.images_changed);
        v1::Heartbeat {
            active_leases: self.active.iter().chain(self.unacked.keys()).cloned().collect(),
            backpressured: self.backpressured,
            cached_images: if cached_images_sent { self.cfg.cached_images.clone() } else { Vec::new() },
            draining: self.draining,
            cached_images_sent,
        }
    }

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let mut backoff = Duration::from_millis(100);
        // A failing coordinator is reported when the error changes and then once a minute, so an
        // unreachable address, a wrong token or a TLS mismatch is visible at the default level.
        let mut last_warned: Option<(String, tokio::time::Instant)> = None;
        loop {
            match self.connect_once(&mut cmds).await {
                Ok(Stop::HandleDropped) => return,
                Ok(Stop::Disconnected) => {
                    backoff = Duration::from_millis(100);
                    last_warned = None;
                }
                Err(e) => {
                    let text = format!("{}: {}", e.code(), e.message());
                    let repeat = last_warned.as_ref().is_some_and(|(t, at)| *t == text && at.elapsed() < Duration::from_secs(60));
                    if repeat {
                        debug!(worker = %self.cfg.worker_id, "coordinator session failed: {text}");
                    } else {
                        warn!(worker = %self.cfg.worker_id, coordinator = %self.cfg.addr, "cannot attach to the coordinator (retrying): {text}");
                        last_warned = Some((text, tokio::time::Instant::now()));
                    }
                }
            }
            let jitter = Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64 / 2));
            tokio::time::sleep(backoff + jitter).await;
            backoff = (backoff * 2).min(self.cfg.max_backoff);
        }
    }

    async fn connect_once(&mut self, cmds: &mut mpsc::UnboundedReceiver<Cmd>) -> Result<Stop, tonic::Status> {
        let target = connect::Target {
            addr: &self.cfg.addr,
            ca_cert: self.cfg.ca_cert.as_deref(),
            token: self.cfg.token.as_deref(),
            connect_timeout: Duration::from_secs(5),
        };
        let mut client = connect::connect(target).await.map_err(|e| match e {
            e if e.is_settings() => tonic::Status::invalid_argument(e.to_string()),
            e => tonic::Status::unavailable(e.to_string()),
        })?;

        let (out_tx, out_rx) = mpsc::unbounded_channel::<WorkerMessage>();
        let send = |m: In| {
            let _ = out_tx.send(WorkerMessage { msg: Some(m) });
        };
        // Credits are per session: a new session starts from zero at the coordinator. The images
        // go with the registration.
        self.owed = 0;
        self.images_changed = false;
        send(In::Register(v1::Register {
            worker_id: self.cfg.worker_id.clone(),
            host: self.cfg.host.clone(),
            capacity: Some(self.cfg.capacity),
            labels: self.cfg.labels.clone().into_iter().collect(),
            cached_images: self.cfg.cached_images.clone(),
            version: agentmill_proto::VERSION.to_string(),
            held_leases: self.active.iter().chain(self.unacked.keys()).cloned().collect(),
        }));
        let mut inbound = client.attach(UnboundedReceiverStream::new(out_rx)).await?.into_inner();
        let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
        let mut registered = false;
        loop {
            tokio::select! {
                msg = inbound.message() => {
                    let Some(CoordinatorMessage { msg: Some(msg) }) = msg? else {
                        info!(worker = %self.cfg.worker_id, "coordinator closed the session; reconnecting");
                        return Ok(Stop::Disconnected);
                    };
                    match msg {
                        Out::Registered(r) => {
                            registered = true;
                            heartbeat = tokio::time::interval(Duration::from_millis(u64::from(r.heartbeat_interval_ms.max(100))));
                            info!(worker = %self.cfg.worker_id, session = %r.session_id, "registered with the coordinator");
                            for (lease_id, result) in &self.unacked {
                                send(In::Result(v1::Result { lease_id: lease_id.clone(), result: Some(result.clone()) }));
                            }
                            let free = self.free_slots();
                            self.credit(free, &send);
                            let _ = self.events.send(SessionEvent::Connected { session_id: r.session_id });
                        }
                        Out::Lease(grant) => {
                            self.active.insert(grant.lease_id.clone());
                            let _ = self.events.send(SessionEvent::Lease(grant));
                        }
                        Out::Cancel(c) => {
                            // A cancel of a lease whose result waits for its ack (a coordinator
                            // restarted without the lease) is that result's refusal: the refusal
                            // that follows finds nothing pending, so the slot comes back here.
                            if self.unacked.remove(&c.lease_id).is_some() {
                                warn!(lease = %c.lease_id, "coordinator dropped a result: {}", c.reason);
                                let _ = self.events.send(SessionEvent::Refused { lease_id: c.lease_id, reason: c.reason });
                                self.credit(1, &send);
                            } else {
                                let was_active = self.active.remove(&c.lease_id);
                                let _ = self.events.send(SessionEvent::Cancel(c));
                                if was_active {
                                    self.credit(1, &send);
                                }
                            }
                        }
                        Out::Ack(ack) => {
                            if self.unacked.remove(&ack.lease_id).is_some() {
                                if !ack.accepted {
                                    warn!(lease = %ack.lease_id, "coordinator refused a result: {}", ack.reason);
                                    let _ = self.events.send(SessionEvent::Refused { lease_id: ack.lease_id, reason: ack.reason });
                                }
                                self.credit(1, &send);
                            }
                        }
                    }
                }
                cmd = cmds.recv() => {
                    let Some(cmd) = cmd else { return Ok(Stop::HandleDropped) };
                    // A change the coordinator must hear before its next lease grant goes out in
                    // a heartbeat at once, not at the next tick.
                    let mut tell_now = false;
                    match cmd {
                        Cmd::Progress(p) => send(In::Progress(p)),
                        Cmd::Result(lease_id, result) => {
                            // A lease no longer active was cancelled (its slot already came back)
                            // or handed back: the coordinator would refuse the result, and its
                            // refusal would return the slot a second time.
                            if self.active.remove(&lease_id) {
                                self.unacked.insert(lease_id.clone(), result.clone());
                                send(In::Result(v1::Result { lease_id, result: Some(result) }));
                            } else {
                                debug!(lease = %lease_id, "result on a cancelled lease not sent");
                            }
                        }
                        Cmd::Release(lease_id, reason) => {
                            if self.active.remove(&lease_id) {
                                send(In::Release(v1::Release { lease_id, reason }));
                                self.credit(1, &send);
                            }
                        }
                        Cmd::Backpressure(on) => {
                            tell_now = self.backpressured != on;
                            self.backpressured = on;
                            if !on {
                                let owed = std::mem::take(&mut self.owed);
                                self.credit(owed, &send);
                            }
                        }
                        Cmd::Drain => {
                            tell_now = !self.draining;
                            self.draining = true;
                        }
                        Cmd::CachedImages(images) => {
                            let images = normalized(images);
                            if images != self.cfg.cached_images {
                                self.cfg.cached_images = images;
                                self.images_changed = true;
                                tell_now = true;
                            }
                        }
                    }
                    if tell_now && registered {
                        send(In::Heartbeat(self.heartbeat()));
                    }
                }
                _ = heartbeat.tick(), if registered => {
                    send(In::Heartbeat(self.heartbeat()));
                }
            }
        }
    }
}

enum Stop {
    HandleDropped,
    Disconnected,
}
