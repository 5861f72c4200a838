//! The cluster's live view: the trajectory stream, the learner and the task counts, sampled
//! every `history_interval` into a bounded history.
//!
//! The core knows tasks, leases and workers; the stream and the learner live in Redis. The
//! observer ([`spawn`]) is a background task with its own Redis connection that, on every tick,
//! reads the stream's length (`XLEN`), the learner group's lag (`XINFO GROUPS`) and the
//! learner's report (`<stream>:learner`), asks the core for its stats, and records
//! the latest figures and one [`Sample`] in the shared [`ClusterView`]. Readers — the
//! `ClusterStats` RPC, the status page's `/api/stats` and `/api/history` — only take a short lock
//! on that view, so a slow or absent Redis never stalls them: a Redis error is logged (at most
//! once a minute) and leaves the last figures in place.
//!
//! A learner report older than [`LEARNER_STATUS_MAX_AGE`] is dropped wherever figures are served
//! ([`merge`]), so a learner that stopped does not look alive while Redis is unreachable.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use agentmill_proto::stream::{self, LearnerStatus};
use agentmill_proto::v1;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tonic::Status;
use tracing::{info, warn};

use crate::core::{Command, CoreHandle};
use crate::metrics::Metrics;

/// A learner report older than this is not shown: the learner has stopped or lost Redis.
pub const LEARNER_STATUS_MAX_AGE: Duration = Duration::from_secs(60);

/// The longest one round of Redis reads may take before it counts as an error.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// A failing Redis is reported at most this often.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

/// What the observer watches and how often.
#[derive(Debug, Clone)]
pub struct ObserveConfig {
    /// The trajectory stream.
    pub stream: String,
    /// The learner's consumer group on it.
    pub learner_group: String,
    /// Time between two samples.
    pub interval: Duration,
    /// Delete the entries every consumer group has acknowledged, on every tick.
    pub trim_acknowledged: bool,
    /// Acknowledged entries younger than this are kept.
    pub retain_acknowledged: Duration,
}

/// The last figures read from Redis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamFigures {
    /// Entries in the stream.
    pub stream_length: u64,
    /// Entries the learner group has not acknowledged (undelivered + pending).
    pub stream_lag: u64,
    /// The learner's last report, as read (its age is checked when served).
    pub learner: Option<LearnerStatus>,
}

/// The learner's figures in one [`Sample`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LearnerSample {
    /// Optimizer steps completed.
    pub step: u64,
    /// Real tokens trained over the run.
    pub tokens_trained: u64,
    /// Training throughput.
    pub tokens_per_s: f64,
    /// The last step's loss.
    pub loss: f64,
    /// Model FLOPs utilisation, 0..1.
    pub mfu: f64,
}

/// One point of the history (one element of `/api/history`'s `samples`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was taken (Unix ms).
    pub t_unix_ms: i64,
    /// Tasks by state (`queued`, `leased`, `running`, `done`, `failed`, `cancelled`).
    pub tasks_by_state: BTreeMap<String, u64>,
    /// Episodes finished per second over the last minute.
    pub episodes_per_s_1m: f64,
    /// Finished episodes by resolution, since the coordinator started.
    pub results_by_resolution: BTreeMap<String, u64>,
    /// Attached worker sessions.
    pub workers_connected: u64,
    /// Leases held by attached workers.
    pub active_leases: u64,
    /// Entries in the trajectory stream.
    pub stream_length: u64,
    /// Entries the learner group has not acknowledged.
    pub stream_lag: u64,
    /// The learner's figures; `None` when no report is younger than [`LEARNER_STATUS_MAX_AGE`].
    pub learner: Option<LearnerSample>,
}

impl Sample {
    /// The sample of a merged `ClusterStats` answer taken at `t_unix_ms`.
    pub fn of(stats: &v1::ClusterStatsResponse, t_unix_ms: i64) -> Sample {
        Sample {
            t_unix_ms,
            tasks_by_state: stats.tasks_by_state.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            episodes_per_s_1m: stats.episodes_per_s_1m,
            results_by_resolution: stats.results_by_resolution.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            workers_connected: stats.workers.len() as u64,
            active_leases: stats.workers.iter().map(|w| u64::from(w.active_leases)).sum(),
            stream_length: stats.stream_length,
            stream_lag: stats.stream_lag,
            learner: stats.learner.as_ref().map(|l| LearnerSample {
                step: l.step,
                tokens_trained: l.tokens_trained,
                tokens_per_s: l.tokens_per_s,
                loss: l.loss,
                mfu: l.mfu,
            }),
        }
    }
}

/// A bounded ring of samples, oldest first: pushing onto a full history drops the oldest.
#[derive(Debug, Clone)]
pub struct History {
    capacity: usize,
    samples: VecDeque<Sample>,
}

impl History {
    /// An empty history holding at most `capacity` samples (at least one).
    pub fn new(capacity: usize) -> History {
        let capacity = capacity.max(1);
        // The full ring is allocated as it fills, not up front: most coordinators never run an hour.
        History { capacity, samples: VecDeque::new() }
    }

    /// Appends a sample, dropping the oldest when full.
    pub fn push(&mut self, sample: Sample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample was taken yet.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The most samples it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Every sample, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }

    /// The samples taken after `t_unix_ms`, oldest first.
    pub fn since(&self, t_unix_ms: i64) -> impl Iterator<Item = &Sample> {
        // Samples are appended in time order, so the newer ones are a suffix.
        let start = self.samples.partition_point(|s| s.t_unix_ms <= t_unix_ms);
        self.samples.range(start..)
    }
}

/// The JSON of `/api/history`.
#[derive(Debug, Serialize)]
struct HistoryPage<'a> {
    /// Time between two samples.
    interval_ms: u64,
    /// The most samples the coordinator keeps.
    capacity: usize,
    samples: Vec<&'a Sample>,
}

#[derive(Debug)]
struct ViewState {
    figures: StreamFigures,
    history: History,
}

/// The shared live view: the observer writes it, the RPC and the HTTP handlers read it. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct ClusterView {
    state: Arc<Mutex<ViewState>>,
    interval: Duration,
}

impl ClusterView {
    /// An empty view that samples every `interval` and keeps `history_len` samples.
    pub fn new(interval: Duration, history_len: usize) -> ClusterView {
        ClusterView { state: Arc::new(Mutex::new(ViewState { figures: StreamFigures::default(), history: History::new(history_len) })), interval }
    }

    fn lock(&self) -> MutexGuard<'_, ViewState> {
        // The state is replaced whole, never left half-written: a panicking holder cannot
        // corrupt it, so a poisoned lock is still good to read.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last figures read from Redis.
    pub fn figures(&self) -> StreamFigures {
        self.lock().figures.clone()
    }

    /// The core's stats with the latest stream and learner figures filled in.
    pub fn merge(&self, stats: v1::ClusterStatsResponse) -> v1::ClusterStatsResponse {
        merge(stats, &self.lock().figures, now_ms())
    }

    /// `{interval_ms, capacity, samples}` as JSON, with the samples after `since` (every one
    /// when `None`).
    pub fn history_json(&self, since: Option<i64>) -> Result<String, serde_json::Error> {
        let state = self.lock();
        let samples = match since {
            Some(t) => state.history.since(t).collect(),
            None => state.history.iter().collect(),
        };
        let interval_ms = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        serde_json::to_string(&HistoryPage { interval_ms, capacity: state.history.capacity(), samples })
    }

    /// Stores new figures and appends a sample.
    pub fn record(&self, figures: StreamFigures, sample: Sample) {
        let mut state = self.lock();
        state.figures = figures;
        state.history.push(sample);
    }
}

/// Whether a learner report written at `updated_unix_ms` is recent enough to show at `now_ms`.
/// A report from the future (clocks a little apart) is recent; one without a time is not.
pub fn is_fresh(status: &LearnerStatus, now_ms: i64) -> bool {
    let max_age = i64::try_from(LEARNER_STATUS_MAX_AGE.as_millis()).unwrap_or(i64::MAX);
    status.updated_unix_ms > 0 && now_ms.saturating_sub(status.updated_unix_ms) <= max_age
}

/// The core's stats with the stream figures and the learner's report (when fresh at `now_ms`).
pub fn merge(mut stats: v1::ClusterStatsResponse, figures: &StreamFigures, now_ms: i64) -> v1::ClusterStatsResponse {
    stats.stream_length = figures.stream_length;
    stats.stream_lag = figures.stream_lag;
    stats.learner = figures.learner.as_ref().filter(|l| is_fresh(l, now_ms)).cloned().map(v1::LearnerStatus::from);
    stats
}

/// `ClusterStats` as served: the core's counts merged with the view's figures.
pub async fn cluster_stats(core: &CoreHandle, view: &ClusterView) -> Result<v1::ClusterStatsResponse, Status> {
    let stats = core.ask(Command::Stats).await?;
    Ok(view.merge(stats))
}

/// Starts the observer: it samples every `cfg.interval` into `view` until the core stops.
/// It opens its own connection from `redis` (lazily, and again after a failure).
pub fn spawn(cfg: ObserveConfig, redis: redis::Client, core: CoreHandle, view: ClusterView) -> JoinHandle<()> {
    let metrics = core.metrics.clone();
    let observer = Observer { cfg, redis, con: None, core, view, metrics, errors: ErrorLog::default(), prune_cursor: 0, prune_needed: false };
    tokio::spawn(observer.run())
}

/// The background task behind [`spawn`].
struct Observer {
    cfg: ObserveConfig,
    redis: redis::Client,
    con: Option<ConnectionManager>,
    core: CoreHandle,
    view: ClusterView,
    metrics: Arc<Metrics>,
    errors: ErrorLog,
    /// Where pruning the publish index goes on at the next sample (`HSCAN` cursor; 0: no pass
    /// under way).
    prune_cursor: u64,
    /// Entries were trimmed since the last pass of the publish index began.
    prune_needed: bool,
}

/// Fields of the publish index looked at per sample (`HSCAN … COUNT`).
const PRUNE_STEP: usize = 2000;

impl Observer {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.cfg.interval);
        // A slow round (Redis timing out) delays the next sample instead of bunching them.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut figures = self.view.figures();
            match tokio::time::timeout(REDIS_TIMEOUT, self.read_figures()).await {
                Ok(Ok(read)) => {
                    figures = read;
                    self.errors.recovered();
                }
                Ok(Err(e)) => self.errors.failed(&e.to_string()),
                Err(_) => self.errors.failed(&format!("no answer within {REDIS_TIMEOUT:?}")),
            }
            let Ok(stats) = self.core.ask(Command::Stats).await else {
                info!("the core stopped; the observer stops");
                return;
            };
            let now = now_ms();
            let merged = merge(stats, &figures, now);
            self.set_gauges(&merged);
            self.view.record(figures, Sample::of(&merged, now));
        }
    }

    /// The stream's length, the learner group's lag and the learner's report.
    async fn read_figures(&mut self) -> redis::RedisResult<StreamFigures> {
        let con = match &mut self.con {
            Some(con) => con,
            None => self.con.insert(ConnectionManager::new(self.redis.clone()).await?),
        };
        if self.cfg.trim_acknowledged {
            let keep_from_ms = u64::try_from(now_ms()).unwrap_or(0).saturating_sub(self.cfg.retain_acknowledged.as_millis() as u64);
            let (trimmed, frontier) = stream::trim_acknowledged_before(con, &self.cfg.stream, keep_from_ms).await?;
            self.metrics.stream_trimmed.inc_by(trimmed);
            self.prune_needed |= trimmed > 0;
            if let Some(frontier) = frontier
                && (self.prune_cursor != 0 || self.prune_needed)
            {
                // The publish index, a bounded step per sample: the entries of trimmed records.
                // A pass that starts now covers everything trimmed so far; once it ends, the
                // index is left alone until something more is trimmed.
                let starting = self.prune_cursor == 0;
                let (next, pruned) = stream::prune_publish_index(con, &self.cfg.stream, frontier, self.prune_cursor, PRUNE_STEP).await?;
                if starting {
                    self.prune_needed = false;
                }
                self.prune_cursor = next;
                self.metrics.publish_index_pruned.inc_by(pruned);
            }
        }
        let stream_length = stream::stream_length(con, &self.cfg.stream).await?;
        let stream_lag = stream::group_lag(con, &self.cfg.stream, &self.cfg.learner_group).await?;
        let learner = stream::read_learner_status(con, &self.cfg.stream).await?;
        Ok(StreamFigures { stream_length, stream_lag, learner })
    }

    fn set_gauges(&self, stats: &v1::ClusterStatsResponse) {
        self.metrics.stream_length.set(i64::try_from(stats.stream_length).unwrap_or(i64::MAX));
        self.metrics.stream_lag.set(i64::try_from(stats.stream_lag).unwrap_or(i64::MAX));
        match &stats.learner {
            Some(l) => {
                self.metrics.learner_tokens_per_second.set(l.tokens_per_s);
                self.metrics.learner_loss.set(l.loss);
            }
            // No learner is training: nothing flows, and the last loss is still the last loss.
            None => self.metrics.learner_tokens_per_second.set(0.0),
        }
    }
}

/// Logs Redis failures at most once per [`ERROR_LOG_EVERY`], with the count in between.
#[derive(Debug, Default)]
struct ErrorLog {
    last_logged: Option<Instant>,
    suppressed: u64,
    failing: bool,
}

impl ErrorLog {
    fn failed(&mut self, error: &str) {
        self.failing = true;
        if self.last_logged.is_some_and(|t| t.elapsed() < ERROR_LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        warn!(
            suppressed = self.suppressed,
            "cannot read the trajectory stream and learner status from Redis: {error}; the cluster view keeps its last figures"
        );
        self.last_logged = Some(Instant::now());
        self.suppressed = 0;
    }

    fn recovered(&mut self) {
        if std::mem::take(&mut self.failing) {
            info!("Redis answers again; the cluster view is current");
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: i64) -> Sample {
        Sample { t_unix_ms: t, ..Default::default() }
    }

    fn times<'a>(samples: impl Iterator<Item = &'a Sample>) -> Vec<i64> {
        samples.map(|s| s.t_unix_ms).collect()
    }

    #[test]
    fn the_history_keeps_the_newest_samples_oldest_first() {
        let mut h = History::new(3);
        assert!(h.is_empty());
        for t in 1..=2 {
            h.push(sample(t));
        }
        assert_eq!(times(h.iter()), [1, 2]);
        for t in 3..=7 {
            h.push(sample(t));
        }
        assert_eq!(h.len(), 3, "bounded at its capacity");
        assert_eq!(times(h.iter()), [5, 6, 7], "the oldest went first, order kept");
        assert_eq!(times(h.since(5)), [6, 7]);
        assert_eq!(times(h.since(0)), [5, 6, 7]);
        assert_eq!(times(h.since(7)), Vec::<i64>::new());
    }

    #[test]
    fn a_zero_capacity_still_keeps_the_latest_sample() {
        let mut h = History::new(0);
        h.push(sample(1));
        h.push(sample(2));
        assert_eq!(times(h.iter()), [2]);
    }

    #[test]
    fn the_history_json_has_the_interval_and_the_samples() {
        let view = ClusterView::new(Duration::from_millis(2500), 10);
        view.record(StreamFigures::default(), Sample { t_unix_ms: 10, stream_length: 4, ..Default::default() });
        view.record(StreamFigures::default(), sample(20));
        let json: serde_json::Value = serde_json::from_str(&view.history_json(None).expect("serializes")).expect("JSON");
        assert_eq!(json["interval_ms"], 2500);
        assert_eq!(json["capacity"], 10);
        assert_eq!(json["samples"][0]["stream_length"], 4);
        assert_eq!(json["samples"][1]["t_unix_ms"], 20);
        assert!(json["samples"][1]["learner"].is_null());
        let newer: serde_json::Value = serde_json::from_str(&view.history_json(Some(10)).expect("serializes")).expect("JSON");
        assert_eq!(newer["samples"].as_array().map(Vec::len), Some(1));
    }

    fn learner(updated_unix_ms: i64) -> LearnerStatus {
        LearnerStatus { learner_id: "gpu-host:1".into(), step: 12, loss: 2.5, tokens_per_s: 900.0, updated_unix_ms, ..Default::default() }
    }

    #[test]
    fn the_merge_fills_in_the_stream_and_a_fresh_learner() {
        let now = 1_700_000_000_000;
        let core = v1::ClusterStatsResponse { leases_granted: 7, ..Default::default() };
        let figures = StreamFigures { stream_length: 40, stream_lag: 3, learner: Some(learner(now - 5_000)) };
        let merged = merge(core, &figures, now);
        assert_eq!((merged.leases_granted, merged.stream_length, merged.stream_lag), (7, 40, 3), "the core's figures stay");
        let l = merged.learner.expect("a fresh report is served");
        assert_eq!((l.step, l.loss, l.learner_id.as_str()), (12, 2.5, "gpu-host:1"));

        let sample = Sample::of(&v1::ClusterStatsResponse { learner: Some(l), ..Default::default() }, now);
        assert_eq!(sample.learner.map(|l| (l.step, l.tokens_per_s)), Some((12, 900.0)));
    }

    #[test]
    fn the_merge_drops_a_stale_learner_report() {
        let now = 1_700_000_000_000;
        let old = StreamFigures { stream_length: 40, stream_lag: 3, learner: Some(learner(now - 61_000)) };
        let merged = merge(v1::ClusterStatsResponse::default(), &old, now);
        assert_eq!(merged.learner, None, "a report older than a minute is a stopped learner");
        assert_eq!(merged.stream_length, 40, "the stream figures are still served");
        assert_eq!(Sample::of(&merged, now).learner, None);

        let untimed = StreamFigures { learner: Some(learner(0)), ..Default::default() };
        assert_eq!(merge(v1::ClusterStatsResponse::default(), &untimed, now).learner, None, "a report without a time is not trusted");
        let ahead = StreamFigures { learner: Some(learner(now + 2_000)), ..Default::default() };
        assert!(merge(v1::ClusterStatsResponse::default(), &ahead, now).learner.is_some(), "a clock slightly ahead is fine");
    }
}
