//! A worker that runs no episodes: it attaches to the coordinator through the real worker
//! session (`agentmill_worker::session`), takes leases, waits `--episode-ms` (uniformly random up
//! to it with `--random`), and reports a resolved `submitted` result. Tests use it as a separate
//! process that can be SIGKILLed mid-episode; benchmarks use many of them to load a coordinator.
//!
//! Every event is printed as one line on stdout: `connected <session>`, `lease <lease> <task>
//! <rollout> <attempt>`, `cancel <lease>`, `refused <lease>`, `result <lease> <task> <rollout>`.

use std::io::Write;
use std::time::Duration;

use agentmill_proto::v1;
use agentmill_worker::session::{SessionConfig, SessionEvent, WorkerSession};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Coordinator address.
    #[arg(long)]
    addr: String,
    /// Worker id.
    #[arg(long)]
    worker_id: String,
    /// Concurrent episodes.
    #[arg(long, default_value_t = 4)]
    capacity: u32,
    /// Episode length in milliseconds.
    #[arg(long, default_value_t = 0)]
    episode_ms: u64,
    /// Draw each episode's length uniformly from 0..=episode_ms.
    #[arg(long)]
    random: bool,
    /// Labels, key=value; repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Bearer token.
    #[arg(long)]
    token: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    // Logs (the worker session's) go to stderr, at RUST_LOG's level; off unless it is set.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let labels = args.labels.iter().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (handle, mut events) = WorkerSession::start(SessionConfig {
        addr: args.addr.clone(),
        token: args.token.clone(),
        ca_cert: None,
        worker_id: args.worker_id.clone(),
        host: "localhost".into(),
        capacity: v1::Capacity { episodes: args.capacity, init: args.capacity, run: args.capacity, grade: args.capacity, synth: 0 },
        labels,
        cached_images: vec![],
        max_backoff: Duration::from_millis(500),
    });
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let say = move |line: String| {
        if let Ok(mut o) = out.lock() {
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
    };
    while let Some(ev) = events.recv().await {
        match ev {
            SessionEvent::Connected { session_id } => say(format!("connected {session_id}")),
            SessionEvent::Lease(grant) => {
                let task = grant.task.as_ref().map(|t| t.instance_id.clone()).unwrap_or_default();
                say(format!("lease {} {task} {} {}", grant.lease_id, grant.rollout, grant.attempt));
                let handle = handle.clone();
                let say = say.clone();
                let ms = if args.random { fastrand_ms(args.episode_ms) } else { args.episode_ms };
                tokio::spawn(async move {
                    handle.progress(&grant.lease_id, v1::Stage::Run, "noop", 0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let record_id = agentmill_proto::TrajectoryRecord::episode_record_id(&task, grant.rollout, grant.attempt);
                    handle.result(
                        &grant.lease_id,
                        v1::EpisodeResult {
                            record_id,
                            exit_reason: v1::ExitReason::Submitted as i32,
                            resolution: v1::Resolution::Full as i32,
                            resolved: true,
                            reward: 1.0,
                            ..Default::default()
                        },
                    );
                    say(format!("result {} {task} {}", grant.lease_id, grant.rollout));
                });
            }
            SessionEvent::Cancel(c) => say(format!("cancel {}", c.lease_id)),
            SessionEvent::Refused { lease_id, .. } => say(format!("refused {lease_id}")),
        }
    }
}

fn fastrand_ms(max: u64) -> u64 {
    rand::random_range(0..=max)
}
