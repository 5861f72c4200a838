//! The worker's Prometheus metrics, served at `/metrics` on `metrics_listen`.
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `agentmill_worker_episodes_started_total` | counter | episodes (and synth jobs) started |
//! | `agentmill_worker_episodes_total{exit}` | counter | episodes ended, by exit reason (`submitted`, `max_steps`, …, `sandbox_error`, `panicked`, `cancelled`) |
//! | `agentmill_worker_episodes_running` | gauge | episodes running now |
//! | `agentmill_worker_stage_seconds{stage}` | histogram | time in `init`, `run`, `grade` per episode |
//! | `agentmill_worker_episodes_in_stage{stage}` | gauge | leased jobs in each stage now: `pending`, `init`, `run`, `grade`, `publishing`, `synthesizing` |
//! | `agentmill_worker_containers_alive` | gauge | this worker's containers at the last reaper pass |
//! | `agentmill_worker_sandbox_errors_total` | counter | episodes ended by a sandbox error |
//! | `agentmill_worker_orphans_reaped_total` | counter | containers removed that no episode owned |
//! | `agentmill_worker_disk_limit_kills_total` | counter | containers the disk watchdog killed for outgrowing their disk limit (engines without `--storage-opt size`; process-wide) |
//! | `agentmill_worker_env_builds_total{result}` | counter | task environments asked of the builder, by `result`: `built`, `failed` (a failed or timed-out build), `cached` (already on the host: no build; process-wide) |
//! | `agentmill_worker_records_published_total` | counter | records the publisher wrote (duplicates not counted) |
//! | `agentmill_worker_learner_lag` | gauge | records waiting for the learner at the last reading |
//! | `agentmill_worker_backpressured` | gauge | 1 while leases are paused for the learner |
//! | `agentmill_worker_images_evictable_bytes` | gauge | bytes of evictable images on the host at the last image-cache pass (see `sandbox::images`) |
//! | `agentmill_worker_images_evicted_total` | counter | images the image cache removed to stay within `images.budget` |
//! | `agentmill_worker_images_evicted_bytes_total` | counter | bytes of the images it removed (Docker's `Size`; layers shared with kept images stay on disk) |
//! | `agentmill_worker_image_pulls_started_total{kind}` | counter | image pulls started: `episode` (in an episode's `init`), `prefetch` (ahead, for a leased task waiting for `init`) |
//! | `agentmill_worker_image_pulls_joined_total` | counter | pulls that waited for a pull of the same image already under way instead of starting one |
//! | `agentmill_worker_image_pulls_total{result}` | counter | pulls ended: `pulled`, `failed` |
//! | `agentmill_worker_image_pull_failures_total{reason}` | counter | pulls failed, by `reason`: `timeout` (`images.pull_timeout`), `unauthorized` (credentials missing or refused), `not_found` (no such image, tag or digest), `digest_mismatch` (a pinned digest the pulled image lacks), `refused` (`images.pull` allows no pull of it), `error` (anything else) |
//! | `agentmill_worker_image_pulls_in_flight` | gauge | pulls under way now |
//! | `agentmill_worker_image_pull_bytes_total` | counter | bytes of layers downloaded (as the engine reports its progress; layers already on the host are not downloaded) |
//! | `agentmill_worker_image_pull_seconds` | histogram | time per pull that ended (`pulled` or `failed`) |

use std::sync::OnceLock;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

/// `agentmill_worker_disk_limit_kills_total`: containers the disk watchdog killed.
///
/// Process-wide rather than a plain field, because the watchdog lives in the sandbox code
/// (`sandbox::docker`), which holds no [`WorkerMetrics`]: every `WorkerMetrics` registers this
/// one counter, so it is counted where the kill happens without threading a handle through the
/// engine.
pub fn disk_limit_kills() -> &'static IntCounter {
    static KILLS: OnceLock<IntCounter> = OnceLock::new();
    KILLS.get_or_init(|| {
        IntCounter::new("agentmill_worker_disk_limit_kills_total", "Containers killed by the disk watchdog for outgrowing their disk limit")
            .expect("valid metric")
    })
}

/// `agentmill_worker_env_builds_total{result}`: environments built (`built`), failed (`failed`)
/// or found on the host (`cached`) by [`crate::sandbox::build::Builder`]; process-wide, like
/// [`disk_limit_kills`].
pub fn env_builds() -> &'static IntCounterVec {
    static BUILDS: OnceLock<IntCounterVec> = OnceLock::new();
    BUILDS.get_or_init(|| {
        IntCounterVec::new(Opts::new("agentmill_worker_env_builds_total", "Task environments built, failed or found already built"), &["result"]).expect("valid metric")
    })
}

/// The image cache's metrics (held by [`crate::sandbox::images::ImageCache`], registered by
/// [`WorkerMetrics`]; the default ones are registered nowhere).
#[derive(Debug, Clone)]
pub struct ImageMetrics {
    /// Bytes of evictable images at the last pass.
    pub evictable_bytes: IntGauge,
    /// Images evicted.
    pub evicted: IntCounter,
    /// Bytes of the images evicted.
    pub evicted_bytes: IntCounter,
}

impl Default for ImageMetrics {
    fn default() -> Self {
        let p = "agentmill_worker_";
        ImageMetrics {
            evictable_bytes: IntGauge::new(format!("{p}images_evictable_bytes"), "Bytes of evictable images on the host at the last image-cache pass").expect("valid metric"),
            evicted: IntCounter::new(format!("{p}images_evicted_total"), "Images removed to stay within images.budget").expect("valid metric"),
            evicted_bytes: IntCounter::new(format!("{p}images_evicted_bytes_total"), "Bytes of the images removed to stay within images.budget").expect("valid metric"),
        }
    }
}

/// The image pulls' metrics (held by the [`DockerEngine`](crate::sandbox::docker::DockerEngine)
/// that pulls, registered by [`WorkerMetrics`]; the default ones are registered nowhere).
#[derive(Debug, Clone)]
pub struct PullMetrics {
    /// Pulls started, by kind (`episode`, `prefetch`).
    pub started: IntCounterVec,
    /// Pulls that joined one already under way.
    pub joined: IntCounter,
    /// Pulls ended, by result (`pulled`, `failed`).
    pub finished: IntCounterVec,
    /// Pulls failed, by reason.
    pub failed: IntCounterVec,
    /// Pulls under way.
    pub in_flight: IntGauge,
    /// Layer bytes downloaded.
    pub bytes: IntCounter,
    /// Time per pull.
    pub seconds: prometheus::Histogram,
}

/// The label values of the pull metrics, each shown from the start at 0.
const PULL_KINDS: [&str; 2] = ["episode", "prefetch"];
const PULL_RESULTS: [&str; 2] = ["pulled", "failed"];
const PULL_FAILURES: [&str; 6] = ["timeout", "unauthorized", "not_found", "digest_mismatch", "refused", "error"];

impl Default for PullMetrics {
    fn default() -> Self {
        let p = "agentmill_worker_image_pull";
        let metrics = PullMetrics {
            started: IntCounterVec::new(Opts::new(format!("{p}s_started_total"), "Image pulls started, by kind"), &["kind"]).expect("valid metric"),
            joined: IntCounter::new(format!("{p}s_joined_total"), "Image pulls that joined a pull of the same image under way").expect("valid metric"),
            finished: IntCounterVec::new(Opts::new(format!("{p}s_total"), "Image pulls ended, by result"), &["result"]).expect("valid metric"),
            failed: IntCounterVec::new(Opts::new(format!("{p}_failures_total"), "Image pulls failed, by reason"), &["reason"]).expect("valid metric"),
            in_flight: IntGauge::new(format!("{p}s_in_flight"), "Image pulls under way").expect("valid metric"),
            bytes: IntCounter::new(format!("{p}_bytes_total"), "Bytes of image layers downloaded").expect("valid metric"),
            seconds: prometheus::Histogram::with_opts(
                HistogramOpts::new(format!("{p}_seconds"), "Time per image pull").buckets(vec![0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0]),
            )
            .expect("valid metric"),
        };
        for (vec, values) in [(&metrics.started, &PULL_KINDS[..]), (&metrics.finished, &PULL_RESULTS[..]), (&metrics.failed, &PULL_FAILURES[..])] {
            for v in values {
                vec.with_label_values(&[v]);
            }
        }
        metrics
    }
}

/// Every metric the worker sets.
#[derive(Debug, Clone)]
pub struct WorkerMetrics {
    registry: Registry,
    /// Episodes started.
    pub started: IntCounter,
    /// Episodes ended, by exit.
    pub ended: IntCounterVec,
    /// Episodes running.
    pub running: IntGauge,
    /// Stage durations.
    pub stage_seconds: HistogramVec,
    /// Leased jobs in each stage now.
    pub in_stage: IntGaugeVec,
    /// Containers of this worker.
    pub containers_alive: IntGauge,
    /// Sandbox errors.
    pub sandbox_errors: IntCounter,
    /// Orphans reaped.
    pub reaped: IntCounter,
    /// Containers killed by the disk watchdog (the process-wide [`disk_limit_kills`]).
    pub disk_limit_kills: IntCounter,
    /// Records published.
    pub published: IntCounter,
    /// Learner lag.
    pub lag: IntGauge,
    /// Back-pressure flag.
    pub backpressured: IntGauge,
    /// The image cache's.
    pub images: ImageMetrics,
    /// The image pulls'.
    pub pulls: PullMetrics,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerMetrics {
    /// Creates and registers every metric.
    pub fn new() -> WorkerMetrics {
        let registry = Registry::new();
        let p = "agentmill_worker_";
        let started = IntCounter::new(format!("{p}episodes_started_total"), "Episodes started").expect("valid metric");
        let ended = IntCounterVec::new(Opts::new(format!("{p}episodes_total"), "Episodes ended by exit reason"), &["exit"]).expect("valid metric");
        let running = IntGauge::new(format!("{p}episodes_running"), "Episodes running").expect("valid metric");
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new(format!("{p}stage_seconds"), "Time per episode stage")
                .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]),
            &["stage"],
        )
        .expect("valid metric");
        let in_stage = IntGaugeVec::new(Opts::new(format!("{p}episodes_in_stage"), "Leased jobs in each stage now"), &["stage"]).expect("valid metric");
        // Every stage shows from the start, at 0.
        for stage in crate::actors::job::JobStage::ALL {
            in_stage.with_label_values(&[stage.as_str()]).set(0);
        }
        let containers_alive = IntGauge::new(format!("{p}containers_alive"), "This worker's containers").expect("valid metric");
        let sandbox_errors = IntCounter::new(format!("{p}sandbox_errors_total"), "Episodes ended by a sandbox error").expect("valid metric");
        let reaped = IntCounter::new(format!("{p}orphans_reaped_total"), "Orphaned containers removed").expect("valid metric");
        let disk_limit_kills = disk_limit_kills().clone();
        let published = IntCounter::new(format!("{p}records_published_total"), "Records published").expect("valid metric");
        let lag = IntGauge::new(format!("{p}learner_lag"), "Records waiting for the learner").expect("valid metric");
        let backpressured = IntGauge::new(format!("{p}backpressured"), "1 while leases are paused").expect("valid metric");
        let images = ImageMetrics::default();
        let pulls = PullMetrics::default();
        for c in [
            Box::new(started.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(ended.clone()),
            Box::new(running.clone()),
            Box::new(stage_seconds.clone()),
            Box::new(in_stage.clone()),
            Box::new(containers_alive.clone()),
            Box::new(sandbox_errors.clone()),
            Box::new(reaped.clone()),
            Box::new(disk_limit_kills.clone()),
            Box::new(env_builds().clone()),
            Box::new(published.clone()),
            Box::new(lag.clone()),
            Box::new(backpressured.clone()),
            Box::new(images.evictable_bytes.clone()),
            Box::new(images.evicted.clone()),
            Box::new(images.evicted_bytes.clone()),
            Box::new(pulls.started.clone()),
            Box::new(pulls.joined.clone()),
            Box::new(pulls.finished.clone()),
            Box::new(pulls.failed.clone()),
            Box::new(pulls.in_flight.clone()),
            Box::new(pulls.bytes.clone()),
            Box::new(pulls.seconds.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        WorkerMetrics { registry, started, ended, running, stage_seconds, in_stage, containers_alive, sandbox_errors, reaped, disk_limit_kills, published, lag, backpressured, images, pulls }
    }

    /// Records the stage durations of a finished episode.
    pub fn observe_timing(&self, t: &agentmill_proto::Timing) {
        let secs = |ms: u64| ms as f64 / 1000.0;
        self.stage_seconds.with_label_values(&["init"]).observe(secs(t.image_ms + t.start_ms));
        self.stage_seconds.with_label_values(&["run"]).observe(secs(t.agent_ms));
        if t.grade_ms > 0 {
            self.stage_seconds.with_label_values(&["grade"]).observe(secs(t.grade_ms));
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
