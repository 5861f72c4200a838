//! The coordinator's Prometheus metrics, served at `/metrics` on `metrics_listen`.
//!
//! The stream and learner gauges are set by the observer ([`crate::observe`]) every
//! `history_interval`; while Redis does not answer they keep their last values.
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `agentmill_coordinator_tasks{state}` | gauge | tasks by state (refreshed every second) |
//! | `agentmill_coordinator_queued_rollouts` | gauge | rollouts waiting for a worker |
//! | `agentmill_coordinator_dispatch_latency_seconds` | histogram | time from (re)queue to lease grant |
//! | `agentmill_coordinator_leases_granted_total` | counter | leases granted |
//! | `agentmill_coordinator_leases_expired_total` | counter | leases lost to missed heartbeats |
//! | `agentmill_coordinator_task_recounts_total` | counter | task states re-counted for the counts by state (`ClusterStats`, `/api/stats`, the `tasks` gauge): one per change of a task; serving the counts re-counts nothing else |
//! | `agentmill_coordinator_handback_failures_total` | counter | rollouts failed because they were handed back `max_handbacks` times without a result |
//! | `agentmill_coordinator_core_stalls_total` | counter | times the core could not turn for a second or more (a Redis write that hung); each pushed every lease's deadline back by the stall |
//! | `agentmill_coordinator_stale_results_total` | counter | results refused (expired, superseded or cancelled lease) |
//! | `agentmill_coordinator_workers_connected` | gauge | attached worker sessions |
//! | `agentmill_coordinator_worker_id_conflicts_total` | counter | sessions replaced by a session of the same `worker_id` from another host (two workers share an id) |
//! | `agentmill_coordinator_submit_rejected_rows_total` | counter | task rows refused by validation |
//! | `agentmill_coordinator_submitted_tasks_total` | counter | tasks accepted |
//! | `agentmill_coordinator_results_total{resolution,exit_reason}` | counter | finished episodes |
//! | `agentmill_coordinator_store_flush_seconds` | histogram | time of one group-commit write to Redis |
//! | `agentmill_coordinator_stream_length` | gauge | entries in the trajectory stream (`XLEN`) |
//! | `agentmill_coordinator_stream_lag` | gauge | entries the learner group has not yet acknowledged (undelivered + pending) |
//! | `agentmill_coordinator_learner_tokens_per_second` | gauge | the learner's reported training throughput; 0 when no report is younger than a minute |
//! | `agentmill_coordinator_stream_trimmed_total` | counter | stream entries deleted after every consumer group acknowledged them (`trim_acknowledged`) |
//! | `agentmill_coordinator_publish_index_pruned_total` | counter | fields of the workers' publish index `<stream>:ids` deleted because their entries were trimmed (`trim_acknowledged`) |
//! | `agentmill_coordinator_learner_loss` | gauge | the learner's last reported loss (kept when its reports stop) |

use prometheus::{Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

/// Every metric the coordinator sets, registered in its own registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Tasks by state.
    pub tasks: IntGaugeVec,
    /// Rollouts waiting.
    pub queued_rollouts: IntGauge,
    /// Queue → lease.
    pub dispatch_latency: Histogram,
    /// Leases granted.
    pub leases_granted: IntCounter,
    /// Leases expired.
    pub leases_expired: IntCounter,
    /// Core stalls (each pushed the lease deadlines back).
    pub core_stalls: IntCounter,
    /// Rollouts failed after `max_handbacks` hand-backs.
    pub handback_failures: IntCounter,
    /// Task states re-counted after a change.
    pub task_recounts: IntCounter,
    /// Results refused.
    pub stale_results: IntCounter,
    /// Sessions.
    pub workers_connected: IntGauge,
    /// Sessions replaced by the same worker id from another host.
    pub worker_id_conflicts: IntCounter,
    /// Rows refused.
    pub submit_rejected: IntCounter,
    /// Tasks accepted.
    pub submitted: IntCounter,
    /// Finished episodes.
    pub results: IntCounterVec,
    /// Group-commit write time.
    pub flush_seconds: Histogram,
    /// Trajectory stream length.
    pub stream_length: IntGauge,
    /// Entries the learner group has not acknowledged.
    pub stream_lag: IntGauge,
    /// Entries trimmed.
    pub stream_trimmed: IntCounter,
    /// Publish index fields deleted.
    pub publish_index_pruned: IntCounter,
    /// The learner's tokens/s.
    pub learner_tokens_per_second: Gauge,
    /// The learner's loss.
    pub learner_loss: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let p = "agentmill_coordinator_";
        let tasks = IntGaugeVec::new(Opts::new(format!("{p}tasks"), "Tasks by state"), &["state"]).expect("valid metric");
        let queued_rollouts = IntGauge::new(format!("{p}queued_rollouts"), "Rollouts waiting for a worker").expect("valid metric");
        let dispatch_latency = Histogram::with_opts(
            HistogramOpts::new(format!("{p}dispatch_latency_seconds"), "Time from (re)queue to lease grant")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
        )
        .expect("valid metric");
        let leases_granted = IntCounter::new(format!("{p}leases_granted_total"), "Leases granted").expect("valid metric");
        let leases_expired = IntCounter::new(format!("{p}leases_expired_total"), "Leases lost to missed heartbeats").expect("valid metric");
        let task_recounts =
            IntCounter::new(format!("{p}task_recounts_total"), "Task states re-counted for the counts by state (one per change of a task)").expect("valid metric");
        let handback_failures =
            IntCounter::new(format!("{p}handback_failures_total"), "Rollouts failed after max_handbacks hand-backs without a result").expect("valid metric");
        let core_stalls = IntCounter::new(format!("{p}core_stalls_total"), "Times the core could not turn for a second or more; lease deadlines moved back by each")
            .expect("valid metric");
        let stale_results = IntCounter::new(format!("{p}stale_results_total"), "Results refused on a dead lease").expect("valid metric");
        let workers_connected = IntGauge::new(format!("{p}workers_connected"), "Attached worker sessions").expect("valid metric");
        let worker_id_conflicts = IntCounter::new(format!("{p}worker_id_conflicts_total"), "Sessions replaced by the same worker id from another host").expect("valid metric");
        let submit_rejected = IntCounter::new(format!("{p}submit_rejected_rows_total"), "Task rows refused").expect("valid metric");
        let submitted = IntCounter::new(format!("{p}submitted_tasks_total"), "Tasks accepted").expect("valid metric");
        let results = IntCounterVec::new(Opts::new(format!("{p}results_total"), "Finished episodes"), &["resolution", "exit_reason"])
            .expect("valid metric");
        let flush_seconds = Histogram::with_opts(
            HistogramOpts::new(format!("{p}store_flush_seconds"), "One group-commit write to Redis")
                .buckets(vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0]),
        )
        .expect("valid metric");
        let stream_length = IntGauge::new(format!("{p}stream_length"), "Entries in the trajectory stream").expect("valid metric");
        let stream_lag = IntGauge::new(format!("{p}stream_lag"), "Stream entries the learner group has not acknowledged").expect("valid metric");
        let stream_trimmed = IntCounter::new(format!("{p}stream_trimmed_total"), "Stream entries deleted once every consumer group acknowledged them").expect("valid metric");
        let publish_index_pruned = IntCounter::new(format!("{p}publish_index_pruned_total"), "Publish index fields deleted once their entries were trimmed").expect("valid metric");
        let learner_tokens_per_second = Gauge::new(format!("{p}learner_tokens_per_second"), "The learner's reported training throughput").expect("valid metric");
        let learner_loss = Gauge::new(format!("{p}learner_loss"), "The learner's last reported loss").expect("valid metric");
        for c in [
            Box::new(tasks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(queued_rollouts.clone()),
            Box::new(dispatch_latency.clone()),
            Box::new(leases_granted.clone()),
            Box::new(leases_expired.clone()),
            Box::new(core_stalls.clone()),
            Box::new(handback_failures.clone()),
            Box::new(task_recounts.clone()),
            Box::new(stale_results.clone()),
            Box::new(workers_connected.clone()),
            Box::new(worker_id_conflicts.clone()),
            Box::new(submit_rejected.clone()),
            Box::new(submitted.clone()),
            Box::new(results.clone()),
            Box::new(flush_seconds.clone()),
            Box::new(stream_length.clone()),
            Box::new(stream_lag.clone()),
            Box::new(stream_trimmed.clone()),
            Box::new(publish_index_pruned.clone()),
            Box::new(learner_tokens_per_second.clone()),
            Box::new(learner_loss.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            tasks,
            queued_rollouts,
            dispatch_latency,
            leases_granted,
            leases_expired,
            core_stalls,
            handback_failures,
            task_recounts,
            stale_results,
            workers_connected,
            worker_id_conflicts,
            submit_rejected,
            submitted,
            results,
            flush_seconds,
            stream_length,
            stream_lag,
            stream_trimmed,
            publish_index_pruned,
            learner_tokens_per_second,
            learner_loss,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
