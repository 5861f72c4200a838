//! Helpers of agentmill's cross-process tests that need the workspace's own crates: the real
//! binaries as processes (coordinator, worker, CLI), the bundled tasks, records read back from a
//! stream, corpora of rows run through `agentmill-worker run --validate` ([`corpus`]), a llama.cpp
//! server ([`llama_server`]).
//!
//! What every crate's tests share — the test Redis, free ports, unique names, the workspace's
//! paths, the Docker rule, the loopback registry, the operator-guide and dashboard checks — is
//! `agentmill-testkit` (`tests/kit/`); its everyday names are re-exported here.
//!
//! Nothing here is mocked. A test that needs Docker fails loudly where no engine answers; only
//! an explicit `AGENTMILL_NO_DOCKER=1` in the environment turns those tests into announced skips.

pub mod corpus;
pub mod llama_server;

use std::path::{Path, PathBuf};

use agentmill_proto::{Task, read_jsonl_file};
use agentmill_worker::sandbox::docker::DockerEngine;

pub use agentmill_testkit::{SANDBOX_IMAGE, TestRedis, free_port, unique, workspace};

/// The bundled task corpus, with archive paths made absolute.
pub fn bundled_tasks() -> Vec<Task> {
    let path = workspace().join("deploy/tasks/tasks.jsonl");
    let (tasks, errors) = read_jsonl_file(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(errors.is_empty(), "bundled tasks have bad rows: {errors:#?}");
    tasks
}

/// Rows as a client submits them: the files they name on this machine uploaded to the
/// coordinator and named `content:<sha256>` (what `agentmill submit` does), so that no worker
/// opens a path a client wrote. Relative paths resolve against `base_dir`.
pub async fn with_content(client: &mut agentmill_cli::client::Client, base_dir: &Path, rows: Vec<String>) -> Vec<String> {
    let mut uploads = agentmill_cli::upload::Uploads::default();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(uploads.localise_row(client, base_dir, &row).await.expect("uploading a row's files"));
    }
    out
}

/// An `agentmill-worker` process attached to a test coordinator, killed when dropped; `.1` is
/// its metrics port.
#[derive(Debug)]
pub struct WorkerProcess(pub std::process::Child, pub u16);

impl WorkerProcess {
    /// A worker whose episodes run as local processes (bubblewrap) with the repo's venv Python.
    pub fn start_process_backend(coord: &CoordinatorProcess, redis: &str, stream: &str, id: &str) -> WorkerProcess {
        let metrics_port = free_port();
        let python = workspace().join(".venv/bin/python");
        assert!(python.is_file(), "{} is missing; run deploy/setup.sh", python.display());
        let child = std::process::Command::new(binary("agentmill-worker"))
            .args(["--coordinator", &coord.addr, "--redis-url", redis, "--stream", stream, "--worker-id", id, "--episodes", "2"])
            .env("AGENTMILL_SANDBOX", "process")
            .env("AGENTMILL_PROCESS_PYTHON", &python)
            .env("RUST_LOG", "warn")
            .env("AGENTMILL_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start agentmill-worker");
        WorkerProcess(child, metrics_port)
    }

    /// A worker with Docker sandboxes running `episodes` at once.
    pub fn start(coord: &CoordinatorProcess, redis: &str, stream: &str, id: &str, episodes: u32) -> WorkerProcess {
        WorkerProcess::start_with_config(coord, redis, stream, id, episodes, None)
    }

    /// [`WorkerProcess::start`], with a worker configuration file.
    pub fn start_with_config(coord: &CoordinatorProcess, redis: &str, stream: &str, id: &str, episodes: u32, config: Option<&Path>) -> WorkerProcess {
        let metrics_port = free_port();
        let mut cmd = std::process::Command::new(binary("agentmill-worker"));
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd
            .args(["--coordinator", &coord.addr, "--redis-url", redis, "--stream", stream, "--worker-id", id, "--episodes", &episodes.to_string()])
            .env("RUST_LOG", "warn")
            .env("AGENTMILL_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start agentmill-worker");
        WorkerProcess(child, metrics_port)
    }

    /// Stops it now.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The worker's Docker client, once the kit's rule passed ([`agentmill_testkit::docker::available`]:
/// the engine answers and the sandbox image is built, or the test panics naming the fix).
/// `None` (announced) only when the run declares `AGENTMILL_NO_DOCKER=1`.
pub async fn docker_or_skip(test: &str) -> Option<DockerEngine> {
    if !agentmill_testkit::docker::available(test) {
        return None;
    }
    Some(DockerEngine::connect().await.unwrap_or_else(|e| panic!("{test}: the docker CLI reaches an engine but the worker's client does not: {e}")))
}

/// Runs the `agentmill` CLI against the coordinator at `addr` (no token from the caller's
/// environment) and returns what it did.
pub fn agentmill(addr: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary("agentmill")).arg("--addr").arg(addr).args(args).env_remove("AGENTMILL_TOKEN").output().expect("run agentmill")
}

/// A binary of this workspace, built by `cargo build --workspace --bins` (deploy/test.sh does).
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let path = target.join(profile).join(name);
    assert!(path.is_file(), "{} is not built; run `cargo build --workspace --bins` (deploy/test.sh does)", path.display());
    path
}

/// A running `agentmill-coordinator` process, killed when dropped. It logs to the test's stderr at
/// `warn`, or with the filter in `AGENTMILL_TEST_LOG` (e.g. `info,agentmill_coordinator=debug`).
#[derive(Debug)]
pub struct CoordinatorProcess {
    /// `http://127.0.0.1:port`.
    pub addr: String,
    /// The gRPC port.
    pub port: u16,
    /// The metrics port.
    pub metrics_port: u16,
    /// The Redis namespace it owns.
    pub namespace: String,
    /// The Redis URL.
    pub redis_url: String,
    extra: Vec<String>,
    child: Option<std::process::Child>,
}

impl CoordinatorProcess {
    /// Starts a coordinator on free ports with a fresh namespace and waits until it serves.
    pub async fn start(redis_url: &str, extra: &[&str]) -> CoordinatorProcess {
        let port = free_port();
        let mut c = CoordinatorProcess {
            addr: format!("http://127.0.0.1:{port}"),
            port,
            metrics_port: free_port(),
            namespace: unique("test"),
            redis_url: redis_url.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        c.spawn().await;
        c
    }

    async fn spawn(&mut self) {
        let child = std::process::Command::new(binary("agentmill-coordinator"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--metrics-listen", &format!("127.0.0.1:{}", self.metrics_port)])
            .args(["--redis-url", &self.redis_url, "--namespace", &self.namespace])
            .args(&self.extra)
            .env("RUST_LOG", std::env::var("AGENTMILL_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .spawn()
            .expect("start agentmill-coordinator");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("agentmill-coordinator exited early: {status}");
            }
            assert!(std::time::Instant::now() < deadline, "coordinator did not listen on {}", self.port);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(std::process::Child::id).unwrap_or(0)
    }

    /// SIGKILLs the process (no shutdown path runs).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and namespace (after [`kill`](Self::kill)).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for CoordinatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every record in a trajectory stream, decoded from its wire form, oldest first.
pub async fn stream_records(redis_url: &str, stream: &str) -> Vec<agentmill_proto::TrajectoryRecord> {
    use redis::AsyncCommands;
    let client = redis::Client::open(redis_url).expect("redis url");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect to redis");
    let reply: redis::streams::StreamRangeReply = con.xrange_all(stream).await.expect("XRANGE");
    reply
        .ids
        .iter()
        .map(|e| agentmill_proto::stream::entry_record(e).expect("decode record"))
        .collect()
}

/// A minimal `submitted` episode record (no messages, no grading), for tests and benchmarks
/// whose episodes do no agent work.
pub fn noop_record(task_id: &str, rollout: u32, attempt: u32, worker: &str) -> agentmill_proto::TrajectoryRecord {
    use agentmill_proto::{ExitReason, RECORD_SCHEMA, RecordKind, Timing, TrajectoryRecord};
    TrajectoryRecord {
        schema: RECORD_SCHEMA.into(),
        record_id: TrajectoryRecord::episode_record_id(task_id, rollout, attempt),
        kind: RecordKind::Env,
        task_id: task_id.to_string(),
        attempt,
        rollout,
        worker: worker.to_string(),
        created_at: String::new(),
        versions: Default::default(),
        provenance: Default::default(),
        tools: vec![],
        messages: vec![],
        exit_reason: Some(ExitReason::Submitted),
        error: None,
        model_patch: Some(String::new()),
        grading: None,
        reward: Some(0.0),
        timing: Timing::default(),
        ctx: None,
        model_calls: Vec::new(),
    }
}

/// Waits until the cluster counts at least `n` tasks done; panics with the counts after `within`.
pub async fn wait_all_done(c: &mut agentmill_cli::client::Client, n: u64, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let s = c.cluster_stats(agentmill_proto::v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
        if s.tasks_by_state.get("done").copied().unwrap_or(0) >= n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "tasks did not finish within {within:?}: {:?}", s.tasks_by_state);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// A plain HTTP/1.0 GET on loopback (a `/metrics` endpoint); returns the body.
pub async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect to the HTTP endpoint");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.expect("send");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("read");
    body.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(body)
}
