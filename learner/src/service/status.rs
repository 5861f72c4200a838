//! The learner's report of itself in Redis, for the coordinator, `agentmill top` and the status
//! page: a [`LearnerStatus`] (JSON) under `<stream>:learner`
//! ([`learner_status_key`](agentmill_proto::stream::learner_status_key)), written with an
//! expiry of [`LEARNER_STATUS_TTL_SECS`] every `status_interval` while the service trains, and
//! once more with the run's final figures (those of `summary.json`) when it stops. A learner
//! that dies stops refreshing the key and drops out of the cluster's view when it expires.
//!
//! The figures come from where the service already keeps them: the trainer thread records
//! each step's [`StepStats`] and the trainer's token count in [`Live`] where it sets the
//! Prometheus gauges, and the consumer records the run's [`Counters`] and packing efficiency
//! where it counts outcomes into the metrics. A tokio task reads that snapshot and writes the
//! key, so the training step never waits on Redis. A Redis error is logged (the first one, then
//! at most once a minute with a count) and never stops training.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agentmill_proto::stream::{LEARNER_STATUS_TTL_SECS, LearnerStatus, publish_learner_status};
use redis::aio::ConnectionManager;
use tokio::sync::oneshot;

use super::RunSummary;
use super::position::{Counters, LossTrace};
use crate::metrics;
use crate::train::StepStats;

/// Longest wait for Redis to accept a connection or answer one report.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// A failing Redis is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The report's figures as the trainer and the consumer last set them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Figures {
    /// Optimizer steps completed (across resumes).
    pub step: u64,
    /// Real tokens trained (across resumes).
    pub tokens_trained: u64,
    /// The last step's loss (a resumed run's is the checkpoint's).
    pub loss: Option<f64>,
    /// The last step's learning rate.
    pub lr: f64,
    /// The last step's gradient norm.
    pub grad_norm: f64,
    /// Model parameters (for MFU).
    pub parameters: u64,
    /// `env` records that resolved their task, trained.
    pub env_pass: u64,
    /// Other `env` records, trained.
    pub env_fail: u64,
    /// `ctx` records trained.
    pub ctx: u64,
    /// Real tokens / token slots of the rows packed so far.
    pub packing_efficiency: f64,
    /// The held-out loss at the last evaluation.
    pub eval_loss: Option<f64>,
}

impl Figures {
    /// The run's final figures: the summary's counts over the live ones (learning rate, gradient
    /// norm and parameters, which the summary does not carry).
    fn finished(mut self, summary: &RunSummary) -> Figures {
        self.step = summary.steps;
        self.tokens_trained = summary.tokens_trained;
        self.loss = summary.loss_last;
        self.env_pass = summary.records.env_pass;
        self.env_fail = summary.records.env_fail;
        self.ctx = summary.records.ctx;
        self.packing_efficiency = summary.packing_efficiency;
        if let Some(e) = &summary.eval {
            self.eval_loss = Some(e.loss);
        }
        if summary.parameters > 0 {
            self.parameters = summary.parameters;
        }
        self
    }

    fn records_by_kind(&self) -> BTreeMap<String, u64> {
        [("env_pass", self.env_pass), ("env_fail", self.env_fail), ("ctx", self.ctx)]
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect()
    }
}

/// The snapshot shared by the trainer thread, the consumer and the reporter task. Each holds
/// the lock only to copy a few numbers.
#[derive(Debug, Default)]
pub(crate) struct Live(Mutex<Figures>);

impl Live {
    fn lock(&self) -> MutexGuard<'_, Figures> {
        // The figures are plain numbers: a panic elsewhere cannot leave them half-written.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The trainer is ready at `step` (a resumed run's step, tokens, last loss and last
    /// held-out loss).
    pub fn ready(&self, step: u64, tokens_trained: u64, trace: &LossTrace, parameters: u64) {
        let mut f = self.lock();
        f.step = step;
        f.tokens_trained = tokens_trained;
        f.loss = trace.last;
        f.eval_loss = trace.eval_last;
        f.parameters = parameters;
    }

    /// A step was trained; `tokens_trained` is the trainer's count after it.
    pub fn stepped(&self, stats: &StepStats, tokens_trained: u64) {
        let mut f = self.lock();
        f.step = stats.step;
        f.tokens_trained = tokens_trained;
        f.loss = Some(stats.loss);
        f.lr = stats.lr;
        f.grad_norm = stats.grad_norm;
    }

    /// The consumer's counters and the packer's efficiency, as they stand.
    pub fn counted(&self, counters: &Counters, packing_efficiency: f64) {
        let mut f = self.lock();
        f.env_pass = counters.env_pass;
        f.env_fail = counters.env_fail;
        f.ctx = counters.ctx;
        f.packing_efficiency = packing_efficiency;
    }

    /// An evaluation measured `loss` on the held-out set.
    pub fn evaluated(&self, loss: f64) {
        self.lock().eval_loss = Some(loss);
    }

    /// A copy of the figures.
    pub fn figures(&self) -> Figures {
        self.lock().clone()
    }
}

/// What every report says about this process.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// Host name and process id.
    pub learner_id: String,
    /// The device, as `summary.json` names it.
    pub device: String,
    /// MFU is reported on CUDA only.
    pub cuda: bool,
    /// One GPU's peak TFLOP/s, for MFU.
    pub peak_tflops: f64,
}

impl Identity {
    /// This process on `device`.
    pub fn new(device: tch::Device, peak_tflops: f64) -> Identity {
        Identity {
            learner_id: format!("{}:{}", host_name(), std::process::id()),
            device: format!("{device:?}"),
            cuda: device.is_cuda(),
            peak_tflops,
        }
    }
}

/// The machine's name: the kernel's, else /etc/hostname, else `localhost`.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Where the reporter writes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The Redis holding the stream.
    pub redis_url: String,
    /// The stream the learner consumes (the key is `<stream>:learner`).
    pub stream: String,
    /// A report every this long.
    pub interval: Duration,
}

/// Tokens per second between two reports.
#[derive(Debug, Clone, Copy)]
struct Window {
    at: Instant,
    step: u64,
    tokens: u64,
}

impl Window {
    fn start(f: &Figures) -> Window {
        Window { at: Instant::now(), step: f.step, tokens: f.tokens_trained }
    }

    /// Tokens per second since the last report (0 when no step was taken in it), and the next
    /// window.
    fn advance(self, f: &Figures) -> (f64, Window) {
        let secs = self.at.elapsed().as_secs_f64();
        let rate = if f.step > self.step && secs > 0.0 {
            f.tokens_trained.saturating_sub(self.tokens) as f64 / secs
        } else {
            0.0
        };
        (rate, Window::start(f))
    }
}

/// The report of `f`, with `tokens_per_s` over the last interval.
fn status(id: &Identity, f: &Figures, tokens_per_s: f64) -> LearnerStatus {
    let updated_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    LearnerStatus {
        learner_id: id.learner_id.clone(),
        device: id.device.clone(),
        step: f.step,
        tokens_trained: f.tokens_trained,
        tokens_per_s,
        loss: f.loss.unwrap_or(0.0),
        lr: f.lr,
        grad_norm: f.grad_norm,
        mfu: if id.cuda && f.parameters > 0 { metrics::mfu(f.parameters, tokens_per_s, id.peak_tflops) } else { 0.0 },
        records_by_kind: f.records_by_kind(),
        packing_efficiency: f.packing_efficiency,
        updated_unix_ms,
        eval_loss: f.eval_loss,
    }
}

/// A connection made on demand (Redis may be down at start), and failures logged sparingly.
struct Publisher {
    target: Target,
    con: Option<ConnectionManager>,
    /// Failures since the last success, and when one was last logged.
    failures: u64,
    last_warned: Option<Instant>,
}

impl Publisher {
    async fn publish(&mut self, status: &LearnerStatus) {
        match self.try_publish(status).await {
            Ok(()) => {
                if self.failures > 0 {
                    tracing::info!(failures = self.failures, "reporting the learner status to Redis again");
                }
                self.failures = 0;
                self.last_warned = None;
            }
            Err(e) => {
                self.failures += 1;
                if self.last_warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    tracing::warn!(
                        failures = self.failures,
                        "reporting the learner status to Redis: {e}; training goes on (logged at most once a minute)"
                    );
                    self.last_warned = Some(Instant::now());
                }
            }
        }
    }

    async fn try_publish(&mut self, status: &LearnerStatus) -> Result<(), String> {
        let con = match &mut self.con {
            Some(con) => con,
            None => {
                let client = redis::Client::open(self.target.redis_url.as_str()).map_err(|e| e.to_string())?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                let con = tokio::time::timeout(REDIS_TIMEOUT, ConnectionManager::new_with_config(client, config))
                    .await
                    .map_err(|_| "connecting timed out".to_string())?
                    .map_err(|e| e.to_string())?;
                self.con.insert(con)
            }
        };
        tokio::time::timeout(REDIS_TIMEOUT, publish_learner_status(con, &self.target.stream, status))
            .await
            .map_err(|_| "no answer in time".to_string())?
            .map_err(|e| e.to_string())
    }
}

/// The reporter task. Dropping it stops the task without a final report (the run failed; the
/// last report expires on its own).
#[derive(Debug)]
pub(crate) struct Reporter {
    task: Option<tokio::task::JoinHandle<()>>,
    finish: Option<oneshot::Sender<Figures>>,
}

impl Reporter {
    /// Starts reporting `live` every `target.interval`, the first report at once.
    pub fn start(target: Target, id: Identity, live: Arc<Live>) -> Reporter {
        let (finish, finished) = oneshot::channel();
        let task = tokio::spawn(report(target, id, live, finished));
        Reporter { task: Some(task), finish: Some(finish) }
    }

    /// Writes the final report, with the summary's figures, and stops the task (waiting for
    /// Redis at most a few seconds).
    pub async fn finish(mut self, live: &Live, summary: &RunSummary) {
        let (Some(finish), Some(mut task)) = (self.finish.take(), self.task.take()) else { return };
        if finish.send(live.figures().finished(summary)).is_err() {
            return;
        }
        // The publisher bounds its connect and its command; this bounds the whole.
        if tokio::time::timeout(REDIS_TIMEOUT * 3, &mut task).await.is_err() {
            tracing::warn!("the final learner status was not written in time");
            task.abort();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn report(target: Target, id: Identity, live: Arc<Live>, mut finished: oneshot::Receiver<Figures>) {
    let mut ticker = tokio::time::interval(target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut publisher = Publisher { target, con: None, failures: 0, last_warned: None };
    let mut window = Window::start(&live.figures());
    tracing::debug!(
        key = %agentmill_proto::stream::learner_status_key(&publisher.target.stream),
        ttl_s = LEARNER_STATUS_TTL_SECS,
        "reporting the learner status"
    );
    loop {
        let (figures, last) = tokio::select! {
            _ = ticker.tick() => (live.figures(), false),
            f = &mut finished => match f {
                Ok(f) => (f, true),
                Err(_) => return,
            },
        };
        let (rate, next) = window.advance(&figures);
        window = next;
        publisher.publish(&status(&id, &figures, rate)).await;
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(step: u64, loss: f64) -> StepStats {
        StepStats { step, loss, lr: 1e-3, grad_norm: 0.5, clipped: false, target_tokens: 90, tokens: 100, loss_by_group: [None; 3] }
    }

    #[test]
    fn the_report_carries_the_live_figures() {
        let live = Live::default();
        // A resumed run shows its checkpoint's figures before its first step and evaluation.
        live.ready(10, 5000, &LossTrace { last: Some(3.0), eval_last: Some(3.25), ..Default::default() }, 1_000_000);
        let f = live.figures();
        assert_eq!((f.loss, f.eval_loss), (Some(3.0), Some(3.25)));
        live.stepped(&stats(11, 2.5), 5100);
        live.evaluated(2.75);
        let counters = Counters { env_pass: 2, env_fail: 3, ctx: 4, ..Default::default() };
        live.counted(&counters, 0.9);
        let f = live.figures();
        let cpu = Identity::new(tch::Device::Cpu, 989.0);
        let s = status(&cpu, &f, 250.0);
        assert_eq!((s.step, s.tokens_trained, s.loss, s.lr, s.grad_norm), (11, 5100, 2.5, 1e-3, 0.5));
        assert_eq!(s.eval_loss, Some(2.75));
        assert_eq!(s.records_by_kind.get("env_pass"), Some(&2));
        assert_eq!(s.records_by_kind.get("env_fail"), Some(&3));
        assert_eq!(s.records_by_kind.get("ctx"), Some(&4));
        assert_eq!((s.packing_efficiency, s.mfu, s.device.as_str()), (0.9, 0.0, "Cpu"));
        assert!(s.learner_id.ends_with(&format!(":{}", std::process::id())), "{}", s.learner_id);
        assert!(s.updated_unix_ms > 1_600_000_000_000);
        let gpu = Identity { cuda: true, ..cpu };
        assert_eq!(status(&gpu, &f, 250.0).mfu, metrics::mfu(1_000_000, 250.0, 989.0));
    }

    #[test]
    fn tokens_per_second_is_zero_without_a_step_in_the_window() {
        let mut f = Figures { step: 3, tokens_trained: 300, ..Default::default() };
        let window = Window { at: Instant::now() - Duration::from_secs(2), ..Window::start(&f) };
        let (rate, window) = window.advance(&f);
        assert_eq!(rate, 0.0);
        f.step = 5;
        f.tokens_trained = 700;
        let window = Window { at: Instant::now() - Duration::from_secs(2), ..window };
        let (rate, _) = window.advance(&f);
        assert!((rate - 200.0).abs() < 5.0, "{rate}");
    }

    #[tokio::test]
    async fn an_unreachable_redis_neither_fails_nor_hangs_the_run() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let port = port.expect("a free port");
        let target = Target {
            redis_url: format!("redis://127.0.0.1:{port}/"),
            stream: "s".into(),
            interval: Duration::from_millis(20),
        };
        let live = Arc::new(Live::default());
        let reporter = Reporter::start(target, Identity::new(tch::Device::Cpu, 989.0), live.clone());
        tokio::time::sleep(Duration::from_millis(100)).await;
        live.stepped(&stats(1, 2.0), 100);
        let summary = RunSummary::empty(super::super::StopReason::UntilIdle, tch::Device::Cpu, Duration::ZERO);
        tokio::time::timeout(Duration::from_secs(20), reporter.finish(&live, &summary))
            .await
            .expect("finish returns within its bound");
    }
}
