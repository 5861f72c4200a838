//! Coordinator benchmarks. Every figure is printed next to a baseline measured in the same run.
//!
//!     cargo run --release -p agentmill-tests --bin agentmill-bench-coordinator -- [lifecycle|memory|scale|all]
//!
//! - `lifecycle`: tasks/s through submit → lease → result with no-op workers (the real worker
//!   session, zero-length episodes), next to the rate of a bare tonic unary call (gRPC health
//!   `Check`, answered without touching the core) over the same loopback, same process. Then the
//!   cost of authorisation: the same lifecycle on a coordinator open to all and on one with role
//!   credentials (a client token for the submitter, a worker token bound to each worker's id),
//!   in alternating rounds, and the ratio of their rates. `AGENTMILL_BENCH_TASKS` sets the tasks
//!   per round (default 50,000), `AGENTMILL_BENCH_ROUNDS` the rounds of each (default 2).
//! - `memory`: resident memory of a coordinator process holding 1,000,000 queued tasks (next to
//!   the same process empty), and Redis memory per task.
//! - `scale`: 1,000 simulated workers × 10 leases (10,000 concurrent no-op episodes of random
//!   length): dispatch latency p50/p99 (a freed slot's wait for its next lease), and the CPU a
//!   heartbeat costs the coordinator.
//!
//! Workers, clients and the coordinator share this machine's cores, so the rates understate what
//! a coordinator alone can do; the ratios are what to compare.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agentmill_coordinator::auth::{Auth, CredentialConfig, Role};
use agentmill_cli::client::{self, Client, ClientConfig};
use agentmill_coordinator::config::CoordinatorConfig;
use agentmill_proto::v1;
use agentmill_tests::{CoordinatorProcess, TestRedis, free_port};
use agentmill_worker::session::{SessionConfig, SessionEvent, WorkerSession};
use tokio::sync::Mutex;

fn spec(id: String) -> v1::TaskInput {
    v1::TaskInput {
        input: Some(v1::task_input::Input::Spec(v1::TaskSpec {
            instance_id: id,
            repo: "bench/repo".into(),
            fail_to_pass: vec!["tests/test_a.py::test_x".into()],
            image: "agentmill/sandbox-python:bookworm".into(),
            ..Default::default()
        })),
    }
}

async fn submit_n(c: &mut Client, prefix: &str, n: usize, batch: usize) {
    let mut i = 0;
    while i < n {
        let k = batch.min(n - i);
        let tasks = (i..i + k).map(|j| spec(format!("{prefix}-{j}"))).collect();
        c.submit_tasks(v1::SubmitTasksRequest { tasks, base_dir: String::new() }).await.expect("submit");
        i += k;
    }
}

async fn done_count(c: &mut Client) -> u64 {
    let s = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
    s.tasks_by_state.get("done").copied().unwrap_or(0)
}

fn worker(addr: &str, token: Option<String>, id: String, capacity: u32, episode: impl Fn() -> Duration + Send + Sync + 'static, latencies: Option<Arc<Mutex<Vec<f64>>>>) {
    let (handle, mut events) = WorkerSession::start(SessionConfig {
        addr: addr.to_string(),
        token,
        ca_cert: None,
        worker_id: id,
        host: "bench".into(),
        capacity: v1::Capacity { episodes: capacity, ..Default::default() },
        labels: Default::default(),
        cached_images: vec![],
        max_backoff: Duration::from_secs(1),
    });
    let freed: Arc<std::sync::Mutex<VecDeque<Instant>>> = Arc::default();
    let episode = Arc::new(episode);
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let SessionEvent::Lease(g) = ev {
                if let (Some(lat), Some(t0)) = (&latencies, freed.lock().ok().and_then(|mut f| f.pop_front())) {
                    lat.lock().await.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
                let (h, freed, d) = (handle.clone(), freed.clone(), episode());
                tokio::spawn(async move {
                    if !d.is_zero() {
                        tokio::time::sleep(d).await;
                    }
                    let result = v1::EpisodeResult { exit_reason: v1::ExitReason::Submitted as i32, resolution: v1::Resolution::Full as i32, resolved: true, ..Default::default() };
                    if let Ok(mut f) = freed.lock() {
                        f.push_back(Instant::now());
                    }
                    h.result(&g.lease_id, result);
                });
            }
        }
    });
}

async fn lifecycle() {
    println!("== lifecycle: submit → lease → result, no-op workers ==");
    let redis = TestRedis::start();
    let port = free_port();
    let cfg = CoordinatorConfig {
        listen: format!("127.0.0.1:{port}").parse().expect("addr"),
        metrics_listen: None,
        redis_url: redis.url.clone(),
        namespace: "bench-life".into(),
        ..Default::default()
    };
    let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("start coordinator");
    let addr = format!("http://{}", running.addr);

    // Baseline: a bare unary call over the same server and loopback.
    let channel = tonic::transport::Endpoint::from_shared(addr.clone()).expect("addr").connect().await.expect("connect");
    let calls = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(3);
    let mut loops = Vec::new();
    for _ in 0..32 {
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let calls = calls.clone();
        loops.push(tokio::spawn(async move {
            while Instant::now() < until {
                health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("health");
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for l in loops {
        l.await.expect("join");
    }
    let unary = calls.load(Ordering::Relaxed) as f64 / 3.0;
    println!("bare tonic unary call (health Check, 32 in flight): {unary:.0} calls/s");

    let n: usize = std::env::var("AGENTMILL_BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let rate = lifecycle_round(&addr, false, n).await;
    println!("whole lifecycle: {n} tasks = {rate:.0} tasks/s (goal ≥ 5,000)");
    println!("ratio lifecycle / bare unary = {:.2} (goal ≥ 0.25)", rate / unary);

    // The cost of authorisation: open and credentialed coordinators, alternating.
    let rounds: usize = std::env::var("AGENTMILL_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let (mut open, mut authed) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so neither gains from the order.
        let order = if round % 2 == 0 { [false, true] } else { [true, false] };
        for with_auth in order {
            let mut credentials = vec![CredentialConfig { name: "bench-client".into(), role: Some(Role::Client), token: Some("bench-client-token".into()), ..Default::default() }];
            for w in 0..4 {
                credentials.push(CredentialConfig {
                    name: format!("bench-w{w}"),
                    role: Some(Role::Worker),
                    token: Some(format!("bench-worker-token-{w}")),
                    worker_ids: vec![format!("bench-w{w}")],
                    ..Default::default()
                });
            }
            let cfg = CoordinatorConfig {
                listen: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
                metrics_listen: None,
                redis_url: redis.url.clone(),
                namespace: format!("bench-life-{round}-{}", if with_auth { "auth" } else { "open" }),
                credentials: if with_auth { credentials } else { Vec::new() },
                ..Default::default()
            };
            let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("start coordinator");
            let addr = format!("http://{}", running.addr);
            let rate = lifecycle_round(&addr, with_auth, n).await;
            println!("round {round}: {} {rate:.0} tasks/s", if with_auth { "role credentials:" } else { "open (no auth):  " });
            if with_auth { authed.push(rate) } else { open.push(rate) }
        }
    }
    // The check itself, without the network: the interceptor on one call, open and with 1,000
    // worker credentials plus a client's.
    let mut many = vec![CredentialConfig { role: Some(Role::Client), token: Some("bench-client-token".into()), ..Default::default() }];
    many.extend((0..1000).map(|w| CredentialConfig { role: Some(Role::Worker), token: Some(format!("bench-worker-token-{w}")), worker_ids: vec![format!("w-{w}")], ..Default::default() }));
    let per_call = |auth: &Auth| {
        let calls = 200_000u32;
        let value: tonic::metadata::MetadataValue<_> = "Bearer bench-worker-token-517".parse().expect("ascii");
        let started = Instant::now();
        for _ in 0..calls {
            let mut req = tonic::Request::new(());
            req.metadata_mut().insert("authorization", value.clone());
            let req = auth.check(req).expect("known token");
            std::hint::black_box(agentmill_coordinator::auth::require(&req, "Attach", &[Role::Worker]).expect("a worker"));
        }
        started.elapsed().as_secs_f64() * 1e9 / f64::from(calls)
    };
    let open_ns = per_call(&Auth::open());
    let auth_ns = per_call(&Auth::from_config(None, &many).expect("credentials"));
    println!("the check alone (a request with its header, the interceptor and the role check): open {open_ns:.0} ns/call, 1,001 credentials {auth_ns:.0} ns/call, vs {:.0} ns per bare unary call above", 1e9 / unary);

    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let ratios: Vec<f64> = authed.iter().zip(&open).map(|(a, o)| a / o).collect();
    println!(
        "authorisation cost: role credentials median {:.0} tasks/s vs open median {:.0} tasks/s = ratio {:.3}; per-round ratios {:?}, median {:.3} (1.0 = free)",
        median(&authed),
        median(&open),
        median(&authed) / median(&open),
        ratios.iter().map(|r| (r * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        median(&ratios)
    );
}

/// Runs `n` tasks through submit → lease → result on the coordinator at `addr` with 4 no-op
/// workers (each with its own worker token when `auth` is set, and a client token for the
/// submitter); answers tasks/s.
async fn lifecycle_round(addr: &str, auth: bool, n: usize) -> f64 {
    for w in 0..4 {
        worker(addr, auth.then(|| format!("bench-worker-token-{w}")), format!("bench-w{w}"), 512, || Duration::ZERO, None);
    }
    let token = auth.then(|| "bench-client-token".to_string());
    let mut c = client::connect(&ClientConfig { addr: Some(addr.to_string()), token, ..Default::default() }).await.expect("client");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let prefix = format!("life-{}", free_port());
    let started = Instant::now();
    let mut sc = c.clone();
    let submitter = tokio::spawn(async move { submit_n(&mut sc, &prefix, n, 2_000).await });
    while done_count(&mut c).await < n as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    submitter.await.expect("join");
    n as f64 / started.elapsed().as_secs_f64()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok()).unwrap_or(0)
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0) + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

async fn redis_used(url: &str) -> u64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut con = client.get_multiplexed_async_connection().await.expect("redis");
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut con).await.expect("INFO");
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

async fn memory() {
    println!("== memory: 1,000,000 queued tasks ==");
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let pid = coord.pid();
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    let empty = rss_kib(pid);
    let redis_before = redis_used(&redis.url).await;
    let n = 1_000_000;
    let started = Instant::now();
    submit_n(&mut c, "mem", n, 10_000).await;
    let secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let full = rss_kib(pid);
    let redis_after = redis_used(&redis.url).await;
    println!("submitted {n} tasks in {secs:.1}s ({:.0} tasks/s)", n as f64 / secs);
    println!("coordinator resident: {:.0} MB empty → {:.0} MB with {n} queued (goal ≤ 500 MB); {:.0} bytes/task", empty as f64 / 1024.0, full as f64 / 1024.0, (full - empty) as f64 * 1024.0 / n as f64);
    println!("redis: {:.0} bytes/task ({:.0} MB for {n})", (redis_after - redis_before) as f64 / n as f64, (redis_after - redis_before) as f64 / 1e6);
}

async fn scale() {
    println!("== scale: 1,000 workers × 10 leases, no-op episodes of random length ==");
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &["--heartbeat-interval", "1s", "--lease-ttl", "20s"]).await;
    let pid = coord.pid();
    let workers = 1000;
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    for w in 0..workers {
        worker(&coord.addr, None, format!("sim-{w}"), 10, || Duration::from_millis(fastrand_ms(2000)), Some(latencies.clone()));
    }
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    // All attached and idle: what heartbeats alone cost the coordinator.
    loop {
        let s = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
        if s.workers.len() == workers {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu0 = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_cpu = cpu_seconds(pid) - cpu0;
    println!("heartbeats: {workers} workers × 1/s for 5s cost the coordinator {:.3} CPU-s = {:.1} µs per heartbeat ({:.1}% of one core)", idle_cpu, idle_cpu * 1e6 / (workers as f64 * 5.0), idle_cpu / 5.0 * 100.0);

    let n = 60_000;
    let mut sc = c.clone();
    tokio::spawn(async move { submit_n(&mut sc, "scale", n, 10_000).await });
    let started = Instant::now();
    let mut peak_leased = 0u64;
    let cpu1 = cpu_seconds(pid);
    while started.elapsed() < Duration::from_secs(20) {
        let s = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
        let active: u64 = s.workers.iter().map(|w| u64::from(w.active_leases)).sum();
        peak_leased = peak_leased.max(active);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let busy_cpu = cpu_seconds(pid) - cpu1;
    let done = done_count(&mut c).await;
    let mut lat = latencies.lock().await.clone();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN);
    println!("concurrent episodes (peak leases held): {peak_leased} of {}", workers * 10);
    println!("episodes finished in 20s: {done} ({:.0}/s); coordinator CPU {:.1}% of one core", done as f64 / 20.0, busy_cpu / 20.0 * 100.0);
    println!("dispatch latency (slot freed → next lease), {} samples: p50 {:.1} ms, p99 {:.1} ms (goal p99 ≤ 50 ms)", lat.len(), pct(0.5), pct(0.99));
}

fn fastrand_ms(max: u64) -> u64 {
    rand::random_range(0..=max)
}

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if cfg!(debug_assertions) {
        println!("(debug build: run with --release for figures worth reporting)");
    }
    match which.as_str() {
        "lifecycle" => lifecycle().await,
        "memory" => memory().await,
        "scale" => scale().await,
        "all" => {
            lifecycle().await;
            memory().await;
            scale().await;
        }
        other => eprintln!("unknown benchmark {other:?}; use lifecycle, memory, scale or all"),
    }
}
