//! `HostSupervisor`: the root of a worker's actors. It turns the coordinator session's events
//! into episode actors, cancels them when told, reaps containers nobody owns (at start and
//! periodically, each time followed by an image cache pass), and drains on shutdown: no new
//! leases, running episodes finish or are handed back, containers removed.
//!
//! Two actors are vital: the Publisher (without it no record reaches the learner) and the
//! coordinator session (without it no lease comes or is reported). When either stops for good —
//! the Publisher gave up on Redis (`redis_outage_limit`) or was stopped, the session's event stream
//! ended — the supervisor says why (logged at error level, [`HostState::stopped`]) and tells the
//! host through [`HostSupervisor::with_vital_stop`]; the host drains and exits non-zero, so its
//! service manager restarts it instead of it idling as a zombie.
//!
//! Each running job's stage (`pending`, `init`, `run`, `grade`, `publishing`, `synthesizing`) is
//! kept per lease and counted in [`HostState::stages`] and `agentmill_worker_episodes_in_stage`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use actix::prelude::*;
use agentmill_proto::{ExitReason, Task, v1};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::episode::{EpisodeActor, Runner};
use super::job::{JobExit, JobFinished, JobStage, JobStageChanged};
use super::publisher::Publisher;
use super::synth::{SynthActor, SynthSettings};
use crate::episode::EpisodeLease;
use crate::sandbox::docker::DockerEngine;
use crate::sandbox::images::ImageCache;
use crate::session::{SessionEvent, SessionHandle};

/// A copy of the supervisor's state (metrics, tests, operators).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostState {
    /// Episodes running now.
    pub running: usize,
    /// Episodes started since the worker started.
    pub started: u64,
    /// Episodes that ended, by exit (`submitted`, `max_steps`, …, `panicked`, `cancelled`, `failure`).
    pub ended: BTreeMap<String, u64>,
    /// Orphaned containers removed.
    pub reaped: u64,
    /// Leases refused because their task did not parse.
    pub bad_leases: u64,
    /// Draining (no new leases).
    pub draining: bool,
    /// Running jobs by stage (`init`, `run`, …; stages with none left out).
    pub stages: BTreeMap<String, usize>,
    /// Why a vital actor stopped (the host drains and exits), once one did.
    pub stopped: Option<String>,
}

/// How often the supervisor checks that its vital actors still run.
const VITAL_CHECK: Duration = Duration::from_millis(500);

/// Read the state.
#[derive(Debug, Message)]
#[rtype(result = "HostState")]
pub struct ObserveHost;

/// Stop taking leases; let running episodes finish for up to `grace`, then cancel them and hand
/// their leases back. Answers when no episode is left.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Drain {
    /// How long running episodes may take to finish.
    pub grace: Duration,
}

struct Running {
    cancel: CancellationToken,
    episode: String,
    stage: JobStage,
}

/// The supervisor.
pub struct HostSupervisor {
    worker_id: String,
    engine: Option<DockerEngine>,
    runner: Runner,
    session: SessionHandle,
    publisher: Addr<Publisher>,
    running: HashMap<String, Running>,
    state: HostState,
    reap_interval: Duration,
    drain_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    synth: std::sync::Arc<SynthSettings>,
    metrics: std::sync::Arc<crate::metrics::WorkerMetrics>,
    images: Option<ImageCache>,
    vital_stop: Option<tokio::sync::oneshot::Sender<String>>,
}

impl std::fmt::Debug for HostSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSupervisor").field("worker_id", &self.worker_id).field("state", &self.state).finish()
    }
}

impl HostSupervisor {
    /// A supervisor for `worker_id`. `engine` (when the sandbox is Docker) is used to reap orphans.
    pub fn new(worker_id: String, engine: Option<DockerEngine>, runner: Runner, session: SessionHandle, publisher: Addr<Publisher>, reap_interval: Duration) -> HostSupervisor {
        HostSupervisor {
            worker_id,
            engine,
            runner,
            session,
            publisher,
            running: HashMap::new(),
            state: HostState::default(),
            reap_interval,
            drain_waiters: Vec::new(),
            synth: Default::default(),
            metrics: Default::default(),
            images: None,
            vital_stop: None,
        }
    }

    /// Where to say that a vital actor stopped (the Publisher, or the coordinator session's
    /// events): the reason is sent once, and the host drains and exits.
    pub fn with_vital_stop(mut self, tx: tokio::sync::oneshot::Sender<String>) -> HostSupervisor {
        self.vital_stop = Some(tx);
        self
    }

    /// A vital actor stopped: logs why, keeps it in the state and tells the host (once).
    fn vital_stopped(&mut self, why: String) {
        if self.state.stopped.is_some() {
            return;
        }
        error!("{why}: the worker cannot go on; it drains and exits");
        self.state.stopped = Some(why.clone());
        if let Some(tx) = self.vital_stop.take() {
            let _ = tx.send(why);
        }
    }

    /// Recounts the running jobs by stage into the state and the gauge.
    fn count_stages(&mut self) {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in self.running.values() {
            *counts.entry(r.stage.as_str().to_string()).or_default() += 1;
        }
        for stage in JobStage::ALL {
            self.metrics.in_stage.with_label_values(&[stage.as_str()]).set(counts.get(stage.as_str()).copied().unwrap_or(0) as i64);
        }
        self.state.stages = counts;
    }

    /// The host's image cache, kept within its budget after every reaper pass.
    pub fn with_images(mut self, images: Option<ImageCache>) -> HostSupervisor {
        self.images = images;
        self
    }

    /// The metrics this supervisor sets (shared with the `/metrics` endpoint).
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::WorkerMetrics>) -> HostSupervisor {
        self.metrics = metrics;
        self
    }

    /// How synthesis jobs (`kind = synth`) are run on this host.
    pub fn with_synth(mut self, settings: SynthSettings) -> HostSupervisor {
        self.synth = std::sync::Arc::new(settings);
        self
    }

    /// Removes containers with this worker's label that no running episode owns. The list is
    /// compared with the running episodes when it arrives (an episode is registered before its
    /// container exists), so a container started meanwhile is never mistaken for an orphan.
    /// Then the image cache's pass: an orphan removed may have held the image it can now evict.
    fn reap(&mut self, ctx: &mut Context<Self>) {
        let Some(engine) = self.engine.clone() else { return };
        let worker = self.worker_id.clone();
        let listed = async move {
            let containers = engine.containers_by_episode(&worker).await;
            // Episodes' egress networks, listed after the containers (a network whose proxy is an
            // orphan is one too).
            let networks = engine.networks_by_episode(&worker).await.unwrap_or_else(|e| {
                warn!("listing networks for reaping failed: {e}");
                Vec::new()
            });
            containers.map(|c| (c, networks))
        };
        ctx.spawn(listed.into_actor(self).map(|res, act, ctx| {
            let (list, networks) = match res {
                Ok(l) => l,
                Err(e) => return warn!("listing containers for reaping failed: {e}"),
            };
            act.metrics.containers_alive.set(list.len() as i64);
            let live: HashSet<&str> = act.running.values().map(|r| r.episode.as_str()).collect();
            let orphans: Vec<String> = list
                .into_iter()
                .filter(|(_, episode)| !live.contains(crate::sandbox::docker::owning_episode(episode)))
                .map(|(id, _)| id)
                .collect();
            let orphan_networks: Vec<String> = networks
                .into_iter()
                .filter(|(_, episode)| !live.contains(crate::sandbox::docker::owning_episode(episode)))
                .map(|(name, _)| name)
                .collect();
            if !orphans.is_empty() {
                info!(orphans = orphans.len(), "reaping orphaned containers");
                act.state.reaped += orphans.len() as u64;
                act.metrics.reaped.inc_by(orphans.len() as u64);
            }
            let Some(engine) = act.engine.clone() else { return };
            let images = act.images.clone();
            ctx.spawn(
                async move {
                    for id in orphans {
                        engine.remove_by_id(&id).await;
                    }
                    for name in orphan_networks {
                        engine.remove_network_by_name(&name).await;
                    }
                    if let Some(images) = images
                        && let Err(e) = images.evict_to_budget().await
                    {
                        warn!("image cache pass failed: {e}");
                    }
                }
                .into_actor(act),
            );
        }));
    }

    fn on_lease(&mut self, grant: v1::LeaseGrant, ctx: &mut Context<Self>) {
        let lease = grant.lease_id.clone();
        if self.state.draining {
            self.session.release(&lease, "the worker is draining");
            return;
        }
        let task = match grant.task.as_ref().map(Task::try_from) {
            Some(Ok(t)) => t,
            Some(Err(errors)) => {
                let why: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect();
                self.refuse(&lease, format!("the leased task does not parse: {}", why.join("; ")));
                return;
            }
            None => {
                self.refuse(&lease, "the lease carried no task".into());
                return;
            }
        };
        let cancel = CancellationToken::new();
        if task.kind == agentmill_proto::TaskKind::Synth {
            SynthActor::new(
                lease.clone(),
                self.worker_id.clone(),
                task,
                self.synth.clone(),
                self.session.clone(),
                self.publisher.clone(),
                Box::new(ctx.address()),
                cancel.clone(),
            )
            .start();
            self.state.started += 1;
            self.metrics.started.inc();
            self.running.insert(lease, Running { cancel, episode: grant.episode_id.clone(), stage: JobStage::Synthesizing });
            self.state.running = self.running.len();
            self.count_stages();
            return;
        }
        let id = EpisodeLease { episode: grant.episode_id.clone(), rollout: grant.rollout, attempt: grant.attempt, queued_at_unix_ms: grant.queued_at_unix_ms };
        let actor = EpisodeActor::new(
            lease.clone(),
            self.worker_id.clone(),
            task,
            id.clone(),
            self.runner.clone(),
            self.session.clone(),
            self.publisher.clone(),
            Box::new(ctx.address()),
            cancel.clone(),
        );
        // The actor lives as long as its episode future; the token is how it is stopped.
        actor.start();
        self.state.started += 1;
        self.metrics.started.inc();
        self.running.insert(lease, Running { cancel, episode: id.episode, stage: JobStage::Pending });
        self.state.running = self.running.len();
        self.metrics.running.set(self.running.len() as i64);
        self.count_stages();
    }

    /// Reports a lease that cannot run as an infra failure (the coordinator retries elsewhere).
    fn refuse(&mut self, lease: &str, why: String) {
        error!(lease, "{why}");
        self.state.bad_leases += 1;
        self.session.result(
            lease,
            v1::EpisodeResult { exit_reason: v1::ExitReason::InfraError as i32, error: why, ..Default::default() },
        );
    }

    fn maybe_drained(&mut self) {
        if self.state.draining && self.running.is_empty() {
            for w in self.drain_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }
}

impl Actor for HostSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        self.reap(ctx);
        ctx.run_interval(self.reap_interval, |act, ctx| act.reap(ctx));
        ctx.run_interval(VITAL_CHECK, |act, _| {
            if !act.publisher.connected() {
                act.vital_stopped("the Publisher stopped (Redis failed past redis_outage_limit, or the actor was stopped); no record can be published".into());
            }
        });
    }
}

impl StreamHandler<SessionEvent> for HostSupervisor {
    fn handle(&mut self, ev: SessionEvent, ctx: &mut Self::Context) {
        match ev {
            SessionEvent::Lease(grant) => self.on_lease(grant, ctx),
            SessionEvent::Cancel(c) => {
                if let Some(r) = self.running.get(&c.lease_id) {
                    info!(lease = %c.lease_id, reason = %c.reason, "cancelling the episode");
                    r.cancel.cancel();
                }
            }
            SessionEvent::Refused { lease_id, reason } => warn!(lease = %lease_id, "the coordinator refused a result: {reason}"),
            SessionEvent::Connected { session_id } => info!(session = %session_id, "connected to the coordinator"),
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {
        self.vital_stopped("the coordinator session's event stream ended; no lease can be taken or reported".into());
    }
}

impl Handler<JobFinished> for HostSupervisor {
    type Result = ();

    fn handle(&mut self, msg: JobFinished, _ctx: &mut Self::Context) {
        self.running.remove(&msg.lease_id);
        self.state.running = self.running.len();
        self.metrics.running.set(self.running.len() as i64);
        self.count_stages();
        if let Some(t) = &msg.timing {
            self.metrics.observe_timing(t);
        }
        if msg.exit == JobExit::Success(ExitReason::SandboxError) {
            self.metrics.sandbox_errors.inc();
        }
        let key = match &msg.exit {
            JobExit::Success(r) => r.as_str().to_string(),
            JobExit::Cancelled => ExitReason::Cancelled.as_str().to_string(),
            JobExit::Panicked(m) => {
                error!(lease = %msg.lease_id, "an episode panicked ({m}); reported as infra_error, the host goes on");
                "panicked".to_string()
            }
            JobExit::Failure(m) => {
                error!(lease = %msg.lease_id, "an episode failed to finish: {m}");
                "failure".to_string()
            }
        };
        self.metrics.ended.with_label_values(&[&key]).inc();
        *self.state.ended.entry(key).or_default() += 1;
        self.maybe_drained();
    }
}

impl Handler<JobStageChanged> for HostSupervisor {
    type Result = ();

    fn handle(&mut self, msg: JobStageChanged, _ctx: &mut Self::Context) {
        if let Some(r) = self.running.get_mut(&msg.lease_id) {
            r.stage = msg.stage;
            self.count_stages();
        }
    }
}

impl Handler<ObserveHost> for HostSupervisor {
    type Result = MessageResult<ObserveHost>;

    fn handle(&mut self, _: ObserveHost, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.state.clone())
    }
}

impl Handler<Drain> for HostSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Drain, ctx: &mut Self::Context) -> Self::Result {
        info!(running = self.running.len(), grace = ?msg.grace, "draining: no new leases");
        self.state.draining = true;
        self.session.drain();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.drain_waiters.push(tx);
        self.maybe_drained();
        // Past the grace period, cancel what still runs and hand the leases back.
        ctx.run_later(msg.grace, |act, _| {
            for (lease, r) in &act.running {
                warn!(lease, "drain grace over: cancelling the episode and handing the lease back");
                act.session.release(lease, "the worker shut down");
                r.cancel.cancel();
            }
        });
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
