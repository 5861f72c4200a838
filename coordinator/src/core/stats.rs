//! Counts and rates: tasks by state kept incrementally, the episode-rate window, cluster stats
//! and the gauges.

use super::*;

/// Counters and the episode-rate window.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) buckets: Vec<(i64, u64)>,
    pub(super) by_resolution: BTreeMap<String, u64>,
    pub(super) by_exit: BTreeMap<String, u64>,
    pub(super) leases_granted: u64,
    pub(super) leases_expired: u64,
    pub(super) stale_results: u64,
}

impl Stats {
    const WINDOW: usize = 600;

    pub(super) fn record_finish(&mut self, now_ms: i64) {
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

    pub(super) fn rate(&self, now_ms: i64, secs: i64) -> f64 {
        let now = now_ms.div_euclid(1000);
        let n: u64 = self.buckets.iter().filter(|(s, _)| *s > now - secs && *s <= now).map(|(_, c)| c).sum();
        n as f64 / secs as f64
    }
}

/// Tasks by state, kept incrementally: each task's state as last counted, and the tasks that
/// may have changed since. `ClusterStats` and `/api/stats` then cost the changes, not a scan of
/// the task table.
#[derive(Default)]
pub(super) struct StateCounts {
    pub(super) by_state: HashMap<TaskState, u64>,
    pub(super) counted: Vec<Option<TaskState>>,
    pub(super) changed: Vec<TaskIdx>,
}

impl Core {
    /// Tasks by state, exact: the tasks changed since the last call are moved from the state
    /// they were counted in to the one they are in (every change of a rollout goes through
    /// `touch` or `dispatch`, which note the task).
    pub(super) fn state_counts(&mut self) -> &HashMap<TaskState, u64> {
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

    pub(super) fn cluster_stats(&mut self) -> v1::ClusterStatsResponse {
        let now = now_ms();
        let tasks_by_state: HashMap<String, u64> =
            self.state_counts().iter().filter(|(_, n)| **n > 0).map(|(s, n)| (s.name().to_string(), *n)).collect();
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

    pub(super) fn refresh_gauges(&mut self) {
        let counts = self.state_counts().clone();
        for s in [TaskState::Queued, TaskState::Leased, TaskState::Running, TaskState::Done, TaskState::Failed, TaskState::Cancelled] {
            self.metrics.tasks.with_label_values(&[s.name()]).set(counts.get(&s).copied().unwrap_or(0) as i64);
        }
        self.metrics.queued_rollouts.set(self.table.queued_len() as i64);
    }
}
