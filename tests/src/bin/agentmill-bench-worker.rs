//! Worker benchmarks, each next to a baseline measured in the same run.
//!
//!     cargo run --release -p agentmill-tests --bin agentmill-bench-worker -- [overhead|throughput|languages|grader|all]
//!
//! - `overhead`: one episode's orchestration (coordinator lease over gRPC, the worker's actors,
//!   publishing the record to Redis, the result back to the coordinator) around the same
//!   container work as the baseline: a bare create + start + exec + remove of the sandbox image
//!   through the Docker API. Overhead = (episode − bare) / bare.
//! - `throughput`: episodes per hour on the bundled tasks (replay policy, real grading) with 1,
//!   2, 4 and 8 concurrent episodes on this machine, and where the time goes (init / run / grade).
//! - `languages`: episodes per hour on the Go, Rust and Java tasks of `deploy/multilingual/`
//!   (replay policy, real grading in their own images: `go test`, `cargo test`, one `mvn test`
//!   per listed test), each against the same number of rollouts of a Python task of
//!   `deploy/tasks/` run just before (the ratio), 2 at once.
//! - `grader`: reading the largest real harness log (`../shared/harness-logs`) and grading its
//!   lists, against the `swebench` package's parser and report on the same log, timed inside
//!   its own process (no start-up); the ratio is agentmill / reference.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext};
use agentmill_cli::client::{self, ClientConfig};
use agentmill_coordinator::config::CoordinatorConfig;
use agentmill_proto::v1;
use agentmill_tests::{CoordinatorProcess, SANDBOX_IMAGE, TestRedis, binary, bundled_tasks, free_port, noop_record, stream_records, unique, workspace};
use agentmill_worker::actors::episode::Runner;
use agentmill_worker::actors::publisher::{Publisher, PublisherConfig};
use agentmill_worker::actors::supervisor::HostSupervisor;
use agentmill_worker::sandbox::docker::DockerEngine;
use agentmill_worker::sandbox::{ExecRequest, SandboxSpec};
use agentmill_worker::session::{SessionConfig, WorkerSession};
use futures::StreamExt;
use redis::AsyncCommands;

async fn bare_container(engine: &DockerEngine, tag: &str) -> Duration {
    let t = Instant::now();
    let c = engine.start(&SandboxSpec::new(SANDBOX_IMAGE, "/testbed", "bench-bare", tag)).await.expect("start");
    c.exec(&ExecRequest::new("true")).await.expect("exec");
    c.remove().await;
    t.elapsed()
}

fn mean(v: &[Duration]) -> f64 {
    v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len().max(1) as f64 * 1000.0
}

async fn overhead() {
    println!("== orchestration overhead per episode ==");
    let engine = DockerEngine::connect().await.expect("Docker");
    let n = 12;
    let _ = bare_container(&engine, "warmup").await;
    let mut bare = Vec::new();
    for i in 0..n {
        bare.push(bare_container(&engine, &format!("bare-{i}")).await);
    }
    let bare_ms = mean(&bare);
    println!("bare create + start + exec + remove: {bare_ms:.1} ms (mean of {n})");

    let redis = TestRedis::start();
    let port = free_port();
    let cfg = CoordinatorConfig {
        listen: format!("127.0.0.1:{port}").parse().expect("addr"),
        metrics_listen: None,
        redis_url: redis.url.clone(),
        namespace: "bench-worker".into(),
        ..Default::default()
    };
    let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("coordinator");
    let addr = format!("http://{}", running.addr);
    let worker_id = unique("bench-w");
    let (session, events) = WorkerSession::start(SessionConfig {
        addr: addr.clone(),
        token: None,
        ca_cert: None,
        worker_id: worker_id.clone(),
        host: "bench".into(),
        capacity: v1::Capacity { episodes: 1, ..Default::default() },
        labels: Default::default(),
        cached_images: vec![SANDBOX_IMAGE.into()],
        max_backoff: Duration::from_secs(1),
    });
    let con = redis::aio::ConnectionManager::new(redis::Client::open(redis.url.as_str()).expect("url")).await.expect("redis");
    let stream = unique("bench:traj");
    let publisher = Publisher::new(PublisherConfig { stream: stream.clone(), ..Default::default() }, con, Some(session.clone())).start();
    // The episode does exactly the baseline's container work and returns a record.
    let run_engine = engine.clone();
    let run_worker = worker_id.clone();
    let runner: Runner = Arc::new(move |task, id, _progress, _cancel| {
        let engine = run_engine.clone();
        let worker = run_worker.clone();
        Box::pin(async move {
            let c = engine.start(&SandboxSpec::new(SANDBOX_IMAGE, "/testbed", &worker, &id.episode)).await.expect("start");
            let out = c.exec(&ExecRequest::new("true")).await.expect("exec");
            c.remove().await;
            let mut record = noop_record(&task.instance_id, id.rollout, id.attempt, &worker);
            record.messages = vec![agentmill_proto::Message::text(agentmill_proto::Role::Tool, out.output)];
            record
        })
    });
    let sup_worker = worker_id.clone();
    let _supervisor = HostSupervisor::create(move |ctx| {
        ctx.add_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(events));
        HostSupervisor::new(sup_worker, None, runner, session, publisher, Duration::from_secs(3600))
    });
    let mut c = client::connect(&ClientConfig { addr: Some(addr), ..Default::default() }).await.expect("client");
    let mut watch = c.watch_events(v1::WatchEventsRequest { task_ids: vec![] }).await.expect("watch").into_inner();
    let mut episodes = Vec::new();
    for i in 0..n {
        let id = format!("ovh-{i}");
        let row = serde_json::json!({"instance_id": id, "FAIL_TO_PASS": ["t::a"], "image": SANDBOX_IMAGE}).to_string();
        let t = Instant::now();
        c.submit_tasks(v1::SubmitTasksRequest { tasks: vec![v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(row)) }], base_dir: String::new() }).await.expect("submit");
        loop {
            let ev = watch.next().await.expect("event").expect("ok");
            if ev.task_id == id && ev.state == v1::TaskState::Done as i32 {
                break;
            }
        }
        episodes.push(t.elapsed());
    }
    let ep_ms = mean(&episodes);
    let mut con = redis::Client::open(redis.url.as_str()).expect("url").get_multiplexed_async_connection().await.expect("redis");
    let published: u64 = con.xlen(&stream).await.expect("XLEN");
    assert_eq!(published, n as u64, "every episode published its record");
    println!("episode through agentmill (submit → lease → container → publish → result): {ep_ms:.1} ms (mean of {n})");
    println!("orchestration overhead: {:.1} ms = {:.1}% of the bare container time (goal ≤ 10%)", ep_ms - bare_ms, (ep_ms - bare_ms) / bare_ms * 100.0);
}

async fn throughput() {
    println!("== episodes/hour on the bundled tasks (replay policy, real grading) ==");
    let tasks = bundled_tasks();
    let redis = TestRedis::start();
    for k in [1u32, 2, 4, 8] {
        let coord = CoordinatorProcess::start(&redis.url, &[]).await;
        let stream = unique("bench:traj");
        let mut worker = std::process::Command::new(binary("agentmill-worker"))
            .args(["--coordinator", &coord.addr, "--redis-url", &redis.url, "--stream", &stream, "--worker-id", &unique("bench-tp"), "--episodes", &k.to_string()])
            .env("RUST_LOG", "warn")
            .env("AGENTMILL_METRICS_LISTEN", format!("127.0.0.1:{}", free_port()))
            .spawn()
            .expect("worker");
        let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = Instant::now();
        client::submit_file(&mut c, &workspace().join("deploy/tasks/tasks.jsonl"), 100, &Default::default(), |_| {}).await.expect("submit");
        loop {
            let s = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
            if s.tasks_by_state.get("done").copied().unwrap_or(0) == tasks.len() as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let secs = t.elapsed().as_secs_f64();
        let records = stream_records(&redis.url, &stream).await;
        let (mut init, mut run, mut grade) = (0u64, 0u64, 0u64);
        for r in &records {
            init += r.timing.image_ms + r.timing.start_ms;
            run += r.timing.agent_ms;
            grade += r.timing.grade_ms;
        }
        let total = (init + run + grade).max(1) as f64;
        println!(
            "{k} concurrent: {} episodes in {secs:.1}s = {:.0} episodes/hour; time in init {:.0}% / run {:.0}% / grade {:.0}%",
            tasks.len(),
            tasks.len() as f64 / secs * 3600.0,
            init as f64 / total * 100.0,
            run as f64 / total * 100.0,
            grade as f64 / total * 100.0
        );
        let _ = worker.kill();
        let _ = worker.wait();
    }
}

/// Episodes per hour of `agentmill-worker run` (replay policy, `rollouts` episodes of one task, 2
/// at once) on one task of a rows file, and the mean seconds in init / run / grade.
fn local_run(file: &std::path::Path, id: &str, rollouts: u32) -> (f64, [f64; 3]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("records.jsonl");
    let t = Instant::now();
    let o = std::process::Command::new(binary("agentmill-worker"))
        .args(["--worker-id", &unique("bench-lang"), "--episodes", "2", "run"])
        .arg(file)
        .args(["--only", id, "--policy", "replay", "--rollouts", &rollouts.to_string(), "--validate", "--out"])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .output()
        .expect("agentmill-worker run");
    let secs = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "{id}: every replay episode resolves:\n{}", String::from_utf8_lossy(&o.stderr));
    let records: Vec<agentmill_proto::TrajectoryRecord> =
        std::fs::read_to_string(&out).expect("records").lines().map(|l| serde_json::from_str(l).expect("a record")).collect();
    assert_eq!(records.len(), rollouts as usize, "{id}: one record per rollout");
    let n = records.len() as f64 * 1000.0;
    let sum = |f: fn(&agentmill_proto::TrajectoryRecord) -> u64| records.iter().map(f).sum::<u64>() as f64 / n;
    (rollouts as f64 / secs * 3600.0, [sum(|r| r.timing.image_ms + r.timing.start_ms), sum(|r| r.timing.agent_ms), sum(|r| r.timing.grade_ms)])
}

async fn languages() {
    println!("== episodes/hour on the Go, Rust and Java tasks (replay policy, real grading; 2 at once) ==");
    let rollouts = 6;
    let (base_rate, base_split) = local_run(&workspace().join("deploy/tasks/tasks.jsonl"), "agentmill__semver-1", rollouts);
    let show = |name: &str, rate: f64, split: [f64; 3]| {
        println!("{name}: {rollouts} episodes, {rate:.0} episodes/hour (mean s in init {:.1} / run {:.1} / grade {:.1}), {:.2}× the Python baseline", split[0], split[1], split[2], rate / base_rate)
    };
    show("python  agentmill__semver-1    (baseline, pytest)", base_rate, base_split);
    for (name, id) in [
        ("go      agentmill__intervals-1 (go test)", "agentmill__intervals-1"),
        ("rust    agentmill__verscmp-1   (cargo test)", "agentmill__verscmp-1"),
        ("java    agentmill__csvlite-1   (mvn test, 15 runs)", "agentmill__csvlite-1"),
    ] {
        let (rate, split) = local_run(&workspace().join("deploy/multilingual/tasks.jsonl"), id, rollouts);
        show(name, rate, split);
    }
}

/// The grader against the reference on the largest harness log.
fn grader() {
    use agentmill_proto::dataset::{ScriptOptions, eval_plan};
    use std::io::{BufRead, Write};
    println!("== grading the largest harness log ==");
    let path = workspace().join("../shared/harness-logs/cases.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let case: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("case"))
        .max_by_key(|c| c["log"].as_str().map_or(0, str::len))
        .expect("a case");
    let log = case["log"].as_str().expect("log");
    let row = serde_json::json!({
        "instance_id": case["instance_id"], "repo": case["repo"], "version": case["version"], "base_commit": case["base_commit"],
        "problem_statement": "p", "test_patch": case["test_patch"], "FAIL_TO_PASS": case["FAIL_TO_PASS"], "PASS_TO_PASS": case["PASS_TO_PASS"],
    });
    let task = agentmill_proto::Task::from_json_object(row.as_object().cloned().expect("object")).expect("row");
    let mut plan = eval_plan(&task, &ScriptOptions::default()).expect("plan");
    plan.rules = agentmill_worker::grading::rules::for_saved_log(plan.rules, log);
    let repeat = 30;
    let mut ours = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let g = agentmill_worker::grading::grade_log(&task, &plan, log, "git apply").expect("grades");
        std::hint::black_box(g);
        ours.push(t.elapsed().as_secs_f64());
    }
    ours.sort_by(f64::total_cmp);
    let ours = ours[repeat / 2];
    let mut child = std::process::Command::new(workspace().join(".venv/bin/python"))
        .arg(workspace().join("tests/reference/swebench_ref.py"))
        .env("PYTHONPATH", workspace().join(".venv/swebench-4.1.0"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the swebench reference (deploy/setup.sh installs it)");
    let req = serde_json::json!({"op": "time_grade", "parser": plan.parser, "log": log, "FAIL_TO_PASS": task.fail_to_pass, "PASS_TO_PASS": task.pass_to_pass, "repeat": repeat});
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{req}").expect("write");
    drop(stdin);
    let mut answer = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut answer).expect("read");
    let _ = child.wait();
    let reference: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    let reference = reference["median_s"].as_f64().expect("median");
    println!(
        "{} ({} KiB log, {} listed tests, parser {}): agentmill {:.2} ms, swebench 4.1.0 {:.2} ms, ratio {:.3} (median of {repeat})",
        case["case_id"].as_str().unwrap_or_default(),
        log.len() / 1024,
        task.fail_to_pass.len() + task.pass_to_pass.len(),
        plan.parser,
        ours * 1000.0,
        reference * 1000.0,
        ours / reference
    );
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if cfg!(debug_assertions) {
        println!("(debug build: run with --release for figures worth reporting)");
    }
    let system = actix_rt::System::with_tokio_rt(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime"));
    system.block_on(async move {
        match which.as_str() {
            "overhead" => overhead().await,
            "throughput" => throughput().await,
            "languages" => languages().await,
            "grader" => grader(),
            "all" => {
                overhead().await;
                throughput().await;
                languages().await;
                grader();
            }
            other => eprintln!("unknown benchmark {other:?}; use overhead, throughput, languages, grader or all"),
        }
    });
}
