//! `agentmill stats`: the cluster's counts and rates, and its workers.

use std::io::Write;

use agentmill_proto::json::to_json;

use crate::client::{Client, print_json};
use crate::report;

/// Shows `ClusterStats`.
pub async fn run(client: &mut Client, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let s = report::cluster_stats(client).await?;
    if json {
        print_json(out, &to_json(&s)?)?;
        return Ok(0);
    }
    let mut states: Vec<_> = s.tasks_by_state.iter().collect();
    states.sort();
    writeln!(out, "tasks: {}", states.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))?;
    writeln!(out, "episodes/s: {:.2} (1 min), {:.2} (10 min)", s.episodes_per_s_1m, s.episodes_per_s_10m)?;
    let mut res: Vec<_> = s.results_by_resolution.iter().collect();
    res.sort();
    writeln!(out, "results: {}", res.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))?;
    writeln!(out, "leases: {} granted, {} expired, {} stale results refused", s.leases_granted, s.leases_expired, s.stale_results_refused)?;
    writeln!(out, "workers: {}", s.workers.len())?;
    for w in &s.workers {
        let cap = w.capacity.map(|c| c.episodes).unwrap_or(0);
        let flag = if w.cordoned {
            "  cordoned"
        } else if w.draining {
            "  draining"
        } else if w.backpressured {
            "  back-pressured"
        } else {
            ""
        };
        writeln!(out, "  {} ({})  {}/{} episodes  credits {}  images {}{flag}", w.worker_id, w.host, w.active_leases, cap, w.credits, w.cached_images)?;
    }
    if !s.cordoned_workers.is_empty() {
        writeln!(out, "cordoned: {}", s.cordoned_workers.join(", "))?;
    }
    Ok(0)
}
