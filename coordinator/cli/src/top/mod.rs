//! `agentmill top`: a live terminal view of the cluster for operators (ratatui).
//!
//! - [`App`] (here): the latest `ClusterStats` answer, whether the last poll failed, and the
//!   short histories it accumulates itself from each poll (episodes/s, the learner's tokens/s
//!   and loss) for the sparklines. [`App::observe`] folds one poll in; nothing in it does I/O.
//! - [`render`] (`render.rs`): draws an [`App`] into any ratatui frame — a header (address,
//!   time, connection), tasks by state and results, throughput, the learner's report, the
//!   trajectory stream, and the workers sorted by id; [`render_text`] draws it into a
//!   `TestBackend` and returns plain lines, what `agentmill top --once` prints for scripts and
//!   CI logs.
//! - [`run`] (`live.rs`): the interactive loop — alternate screen and raw mode, a poll every
//!   interval, a redraw on every answer or resize, q / Esc / Ctrl-C to quit; the terminal is
//!   restored on every way out (error and panic included). A failed poll ends nothing: the
//!   header shows the error, the last good figures stay on screen, and the next tick tries
//!   again. [`snapshot`] is one poll as an [`App`], for `--once`.
//!
//! ```text
//! agentmill top                        # live, polling every second
//! agentmill top --interval 5s
//! agentmill top --once --width 160     # one frame as text
//! ```

mod live;
mod render;

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentmill_proto::v1;

pub use live::{MIN_INTERVAL, poll, run, snapshot};
pub use render::{render, render_text};

/// Samples kept per history (a sparkline shows the newest that fit its width).
pub const HISTORY: usize = 300;

/// What the view shows: the latest answer, the last poll's error and the histories.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// The coordinator's address, as given.
    pub addr: String,
    /// How often polls are retried (shown with an error); `None` for a single poll.
    pub retry_every: Option<Duration>,
    /// The latest successful answer (kept on screen while polls fail).
    pub stats: Option<v1::ClusterStatsResponse>,
    /// Why the latest poll failed; `None` when it answered.
    pub error: Option<String>,
    /// The clock the view is drawn at (Unix ms): ages are measured from it.
    pub now_unix_ms: i64,
    /// When the latest successful answer arrived (Unix ms).
    pub last_ok_unix_ms: Option<i64>,
    /// Episodes per second (1-minute rate), one sample per successful poll.
    pub episodes_per_s: VecDeque<f64>,
    /// The learner's tokens per second, one sample per new learner report.
    pub tokens_per_s: VecDeque<f64>,
    /// The learner's loss, one sample per new learner report.
    pub loss: VecDeque<f64>,
    /// The last learner report sampled (id, time, step): a report repeated by later polls is
    /// not sampled again, so the learner's sparklines move at the learner's pace.
    last_report: Option<(String, i64, u64)>,
}

impl App {
    /// An empty view of the coordinator at `addr` (nothing polled yet).
    pub fn new(addr: impl Into<String>, retry_every: Option<Duration>) -> App {
        App { addr: addr.into(), retry_every, ..App::default() }
    }

    /// Folds in one poll's outcome, received at `now_unix_ms`.
    pub fn observe(&mut self, polled: Result<v1::ClusterStatsResponse, String>, now_unix_ms: i64) {
        self.now_unix_ms = now_unix_ms;
        let stats = match polled {
            Ok(s) => s,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        self.error = None;
        self.last_ok_unix_ms = Some(now_unix_ms);
        push(&mut self.episodes_per_s, stats.episodes_per_s_1m);
        if let Some(l) = &stats.learner {
            let report = (l.learner_id.clone(), l.updated_unix_ms, l.step);
            if self.last_report.as_ref() != Some(&report) {
                push(&mut self.tokens_per_s, l.tokens_per_s);
                push(&mut self.loss, l.loss);
                self.last_report = Some(report);
            }
        }
        self.stats = Some(stats);
    }
}

fn push(history: &mut VecDeque<f64>, v: f64) {
    if !v.is_finite() {
        return;
    }
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back(v);
}

/// The current time, Unix ms.
fn now_unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const T0: i64 = 1_750_000_000_000;

    pub(crate) fn stats() -> v1::ClusterStatsResponse {
        let worker = |id: &str, host: &str, labels: &[(&str, &str)], active, draining, backpressured| v1::WorkerInfo {
            worker_id: id.into(),
            host: host.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            capacity: Some(v1::Capacity { episodes: 8, init: 2, run: 8, grade: 2, synth: 1 }),
            active_leases: active,
            credits: 8 - active,
            connected_at_unix_ms: T0 - 600_000,
            last_heartbeat_unix_ms: T0 - 3_000,
            draining,
            backpressured,
            cached_images: 3,
            cordoned: false,
        };
        v1::ClusterStatsResponse {
            tasks_by_state: [("queued", 4), ("running", 2), ("done", 17), ("failed", 1)].into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            workers: vec![worker("w-zeta", "gpu-node-2", &[("gpu", "h100")], 5, false, true), worker("w-alpha", "cpu-node-1", &[("pool", "cpu"), ("arch", "x86")], 2, true, false)],
            episodes_per_s_1m: 0.75,
            episodes_per_s_10m: 0.5,
            results_by_resolution: [("FULL", 9), ("NO", 6), ("PARTIAL", 2)].into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            results_by_exit_reason: [("submitted", 15), ("max_steps", 2)].into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            leases_granted: 40,
            leases_expired: 3,
            stale_results_refused: 1,
            stream_length: 1234,
            stream_lag: 56,
            cordoned_workers: vec![],
            learner: Some(v1::LearnerStatus {
                learner_id: "trainer-1:4242".into(),
                device: "Cpu".into(),
                step: 1200,
                tokens_trained: 3_456_789,
                tokens_per_s: 1520.0,
                loss: 2.345_67,
                lr: 1e-5,
                grad_norm: 0.875,
                mfu: 0.0,
                records_by_kind: [("env_pass", 9), ("env_fail", 8), ("ctx", 30)].into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                packing_efficiency: 0.935,
                updated_unix_ms: T0 - 2_000,
                eval_loss: Some(2.5),
            }),
        }
    }

    #[test]
    fn histories_grow_per_poll_and_per_new_learner_report() {
        let mut app = App::new("a", None);
        for i in 0..3 {
            let mut s = stats();
            s.episodes_per_s_1m = f64::from(i);
            app.observe(Ok(s), T0 + i64::from(i) * 1000);
        }
        assert_eq!(app.episodes_per_s, [0.0, 1.0, 2.0]);
        assert_eq!(app.loss.len(), 1, "the same report polled thrice is one sample");
        let mut s = stats();
        if let Some(l) = s.learner.as_mut() {
            l.step += 1;
            l.loss = 2.2;
            l.updated_unix_ms += 5000;
        }
        app.observe(Ok(s), T0 + 5000);
        assert_eq!(app.loss, [2.345_67, 2.2]);
        assert_eq!(app.tokens_per_s.len(), 2);
        app.observe(Err("down".into()), T0 + 6000);
        assert_eq!(app.episodes_per_s.len(), 4, "a failed poll adds no sample");
        for i in 0..(HISTORY + 10) {
            app.observe(Ok(stats()), T0 + i as i64);
        }
        assert_eq!(app.episodes_per_s.len(), HISTORY);
    }
}
