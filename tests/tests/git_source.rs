//! Task source `git`: the worker clones the task's repository inside the sandbox (`git init`,
//! `git fetch --depth 1 origin <base_commit>`, checkout) instead of uploading an archive.
//!
//! Real `agentmill-coordinator` and `agentmill-worker` processes, real Redis, the `replay`
//! policy. The repositories are built on this host from the bundled tasks' archives and served
//! locally, so nothing reaches the internet: to containers by `git daemon` on the Docker bridge's
//! gateway address (`git://`), to the process sandbox by a `file://` URL.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentmill_coordinator::client::{self, Client, ClientConfig};
use agentmill_proto::{ExitReason, Resolution, Role, TrajectoryRecord, v1};
use agentmill_tests::{CoordinatorProcess, SANDBOX_IMAGE, TestRedis, binary, docker_or_skip, free_port, stream_records, unique, workspace};
use agentmill_worker::sandbox::docker::DockerEngine;
use agentmill_worker::sandbox::{ExecRequest, SandboxSpec};
use serde_json::{Map, Value};

/// A fixed identity and date (and no user or system git configuration), so a repository's
/// commit id depends only on its files. The date differs from the bundled archives' base commits
/// (worker/src/repo.rs), so a record carrying the new id proves it came from the clone.
const GIT_ENV: [(&str, &str); 8] = [
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_AUTHOR_NAME", "agentmill-test"),
    ("GIT_AUTHOR_EMAIL", "test@agentmill.invalid"),
    ("GIT_COMMITTER_NAME", "agentmill-test"),
    ("GIT_COMMITTER_EMAIL", "test@agentmill.invalid"),
    ("GIT_AUTHOR_DATE", "2024-02-29T12:00:00Z"),
    ("GIT_COMMITTER_DATE", "2024-02-29T12:00:00Z"),
];

/// Runs git in `dir`; panics with its output when it fails; returns stdout, trimmed.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").args(args).current_dir(dir).envs(GIT_ENV).stdin(Stdio::null()).output().expect("run git");
    assert!(out.status.success(), "git {args:?} in {} failed: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Unpacks the bundled archive of task `id` into `root/<name>`, commits it as one commit and lets
/// `git daemon` serve any commit by id (the worker's shallow fetch asks for the base commit by
/// id). Returns the commit id.
fn repo_from_bundled_archive(id: &str, root: &Path, name: &str) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("repository folder");
    let archive = workspace().join(format!("deploy/tasks/archives/{id}.tar.gz"));
    let status = Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&dir).status().expect("run tar");
    assert!(status.success(), "cannot unpack {}", archive.display());
    git(&dir, &["-c", "init.defaultBranch=main", "init", "-q"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["-c", "commit.gpgsign=false", "commit", "-q", "-m", &format!("{id} at its base commit")]);
    git(&dir, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
    git(&dir, &["rev-parse", "HEAD"])
}

/// The bundled row of task `id`, exactly as deploy/tasks/tasks.jsonl writes it.
fn bundled_row(id: &str) -> Map<String, Value> {
    let path = workspace().join("deploy/tasks/tasks.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Map<String, Value>>(l).expect("a JSON row"))
        .find(|r| r.get("instance_id").and_then(Value::as_str) == Some(id))
        .unwrap_or_else(|| panic!("no bundled task {id}"))
}

/// The bundled row of `id` turned into a `git` task: a new id, `source: "git"`, `git_url`, the
/// new base commit, no archive fields, the replay policy. `edit` changes anything else.
fn git_row(id: &str, new_id: &str, url: &str, base_commit: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> v1::TaskInput {
    let mut row = bundled_row(id);
    row.remove("archive");
    row.remove("archive_sha256");
    row.insert("instance_id".into(), new_id.into());
    row.insert("source".into(), "git".into());
    row.insert("git_url".into(), url.into());
    row.insert("base_commit".into(), base_commit.into());
    row.insert("environment_setup_commit".into(), base_commit.into());
    row.insert("policy".into(), "replay".into());
    edit(&mut row);
    v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(Value::Object(row).to_string())) }
}

/// The task's test command with a shell `guard` run first (the default command: pytest on
/// exactly the listed ids).
fn guarded_test_cmd(id: &str, guard: &str) -> String {
    let task = agentmill_tests::bundled_tasks().into_iter().find(|t| t.instance_id == id).expect("bundled task");
    let ids = format!("{}/{}", agentmill_worker::sandbox::AGENTMILL_DIR, agentmill_worker::grading::TEST_IDS_FILE);
    format!("{guard}\n{}", agentmill_worker::grading::test_command(&task, &ids))
}

/// `git daemon` serving every repository under a folder, stopped when dropped.
struct GitDaemon {
    child: Child,
    addr: String,
}

impl GitDaemon {
    fn start(base: &Path, listen: &str) -> GitDaemon {
        let port = free_port();
        // `git-daemon` itself: `git daemon` would run it as a child that outlives a kill.
        let exec_path = git(base, &["--exec-path"]);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .args(["--reuseaddr", "--export-all", "--informative-errors"])
            .arg(format!("--base-path={}", base.display()))
            .arg(format!("--listen={listen}"))
            .arg(format!("--port={port}"))
            .envs(GIT_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        let mut d = GitDaemon { child, addr: format!("{listen}:{port}") };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((listen, port)).is_err() {
            if let Some(status) = d.child.try_wait().ok().flatten() {
                panic!("git daemon exited early: {status}");
            }
            assert!(Instant::now() < deadline, "git daemon did not listen on {}", d.addr);
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn url(&self, repo: &str) -> String {
        format!("git://{}/{repo}", self.addr)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves the repositories under `base` to containers on Docker's default bridge: `git daemon`
/// listens on the bridge's gateway address (the host, as a container sees it). The address is
/// read from a probe container of the sandbox image (the engine's IPAM config need not name a
/// gateway), and the probe then checks it can list `repo` through the daemon.
async fn serve_to_containers(engine: &DockerEngine, base: &Path, repo: &str) -> GitDaemon {
    let mut spec = SandboxSpec::new(SANDBOX_IMAGE, "/testbed", unique("w-git-probe"), unique("probe"));
    spec.network = true;
    let probe = engine.start(&spec).await.expect("start a probe container");
    let gateway = async {
        let info = engine.client().inspect_container(probe.id(), None).await.expect("inspect the probe");
        let networks = info.network_settings.and_then(|n| n.networks).unwrap_or_default();
        networks.get("bridge").and_then(|n| n.gateway.clone()).filter(|g| !g.is_empty())
    }
    .await;
    let Some(gateway) = gateway else {
        probe.remove().await;
        panic!("a container on Docker's default bridge has no gateway address: the host cannot serve it a repository");
    };
    let daemon = GitDaemon::start(base, &gateway);
    let out = probe.exec(&ExecRequest::new(format!("git ls-remote {}", daemon.url(repo))).timeout(Duration::from_secs(20))).await;
    probe.remove().await;
    let out = out.expect("exec in the probe container");
    assert_eq!(out.exit_code, 0, "a container cannot reach the host's git daemon at {}: {}", daemon.addr, out.output);
    daemon
}

/// A worker process; killed when dropped.
struct Worker(Child);

impl Worker {
    fn start(coord: &CoordinatorProcess, redis: &str, stream: &str, id: &str, process_backend: bool) -> Worker {
        let mut cmd = Command::new(binary("agentmill-worker"));
        cmd.args(["--coordinator", &coord.addr, "--redis-url", redis, "--stream", stream, "--worker-id", id, "--episodes", "2"])
            .env("AGENTMILL_METRICS_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        if process_backend {
            let python = workspace().join(".venv/bin/python");
            assert!(python.is_file(), "{} is missing; run deploy/setup.sh", python.display());
            cmd.env("AGENTMILL_SANDBOX", "process").env("AGENTMILL_PROCESS_PYTHON", python);
        }
        Worker(cmd.spawn().expect("start agentmill-worker"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn submit(c: &mut Client, rows: Vec<v1::TaskInput>) {
    let n = rows.len();
    let resp = c.submit_tasks(v1::SubmitTasksRequest { tasks: rows, base_dir: String::new() }).await.expect("submit").into_inner();
    assert_eq!(resp.accepted.len(), n, "every row is accepted: {resp:?}");
}

/// Waits until every task is done or failed; returns their states.
async fn wait_finished(c: &mut Client, ids: &[&str], within: Duration) -> Vec<v1::TaskStatus> {
    let deadline = Instant::now() + within;
    loop {
        let mut all = Vec::new();
        for id in ids {
            all.push(c.get_task(v1::GetTaskRequest { task_id: id.to_string() }).await.expect("get task").into_inner());
        }
        if all.iter().all(|s| s.state == v1::TaskState::Done as i32 || s.state == v1::TaskState::Failed as i32) {
            return all;
        }
        assert!(Instant::now() < deadline, "tasks did not finish within {within:?}: {all:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The record of `task`'s only episode, checked to be a graded, fully resolved replay of the
/// gold patch against `base_commit`, with real observations.
fn assert_resolved_from(recs: &[TrajectoryRecord], task: &str, bundled: &str, base_commit: &str) -> TrajectoryRecord {
    let mine: Vec<&TrajectoryRecord> = recs.iter().filter(|r| r.task_id == task).collect();
    assert_eq!(mine.len(), 1, "{task}: one record: {mine:#?}");
    let r = mine[0].clone();
    let g = r.grading.as_ref().unwrap_or_else(|| panic!("{task} was not graded: {:?} {:?}", r.exit_reason, r.error));
    assert_eq!(g.resolution, Resolution::Full, "{task}: {g:#?}");
    assert_eq!(r.exit_reason, Some(ExitReason::Submitted), "{task}");
    assert_eq!(r.provenance.base_commit, base_commit, "{task}: the record names the cloned commit");
    assert!(r.model_patch.as_deref().is_some_and(|p| p.contains("diff --git")), "{task}: {:?}", r.model_patch);
    let tools: Vec<_> = r.messages.iter().filter(|m| m.role == Role::Tool).collect();
    assert!(!tools.is_empty() && tools.iter().all(|m| m.exit_code.is_some()), "{task}: tool calls ran in the sandbox");
    let gold = agentmill_tests::bundled_tasks().into_iter().find(|t| t.instance_id == bundled).expect("bundled task").patch;
    let touched = gold.lines().find_map(|l| l.strip_prefix("+++ b/")).expect("the gold patch names a file");
    let name = touched.rsplit('/').next().unwrap_or(touched);
    let seen = tools.iter().any(|m| m.content.contains(name));
    assert!(seen, "{task}: no tool output shows {touched} (the clone's files): {:#?}", tools);
    r
}

/// Docker: two tasks cloned over `git://` from the host. The one without `allow_network` grades
/// with a test command that first tries the remote it was cloned from and refuses to run the
/// tests when that still answers, so FULL proves the network was gone after the clone; the one
/// with `allow_network` requires the remote to answer (the check's positive control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_episodes_clone_the_task_repository_over_git_and_lose_the_network_after() {
    let Some(engine) = docker_or_skip("docker_episodes_clone_the_task_repository_over_git_and_lose_the_network_after").await else { return };
    let served = tempfile::tempdir().expect("temp dir");
    let calc = repo_from_bundled_archive("agentmill__calc-1", served.path(), "calc.git");
    let ini = repo_from_bundled_archive("agentmill__inifile-1", served.path(), "inifile.git");
    assert_ne!(calc, "3f4e9ef0671bd5bf2129226c67c1f4a7d8af9af1", "a new base commit, not the bundled one");
    let daemon = serve_to_containers(&engine, served.path(), "calc.git").await;

    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let stream = unique("test:git");
    let worker_id = unique("w-git");
    let _worker = Worker::start(&coord, &redis.url, &stream, &worker_id, false);
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");

    let offline = unique("git__calc");
    let online = unique("git__inifile");
    let no_net_guard = "if timeout 10 git ls-remote origin >/dev/null 2>&1; then echo 'NETWORK AFTER CLONE'; exit 3; fi";
    let net_guard = "timeout 10 git ls-remote origin >/dev/null 2>&1 || { echo 'NO NETWORK'; exit 3; }";
    let offline_cmd = guarded_test_cmd("agentmill__calc-1", no_net_guard);
    let online_cmd = guarded_test_cmd("agentmill__inifile-1", net_guard);
    submit(
        &mut c,
        vec![
            git_row("agentmill__calc-1", &offline, &daemon.url("calc.git"), &calc, |r| {
                r.insert("test_cmd".into(), offline_cmd.into());
            }),
            git_row("agentmill__inifile-1", &online, &daemon.url("inifile.git"), &ini, |r| {
                r.insert("test_cmd".into(), online_cmd.into());
                r.insert("allow_network".into(), true.into());
            }),
        ],
    )
    .await;
    let states = wait_finished(&mut c, &[&offline, &online], Duration::from_secs(120)).await;
    for s in &states {
        let res = s.rollouts[0].result.as_ref().unwrap_or_else(|| panic!("no result: {s:#?}"));
        assert_eq!(res.resolution, v1::Resolution::Full as i32, "{s:#?}");
    }
    let recs = stream_records(&redis.url, &stream).await;
    assert_eq!(recs.len(), 2, "one record per episode");
    let r = assert_resolved_from(&recs, &offline, "agentmill__calc-1", &calc);
    assert!(r.provenance.image_digest.starts_with("sha256:"), "{:?}", r.provenance.image_digest);
    assert!(!r.grading.as_ref().is_some_and(|g| g.log_tail.contains("NETWORK AFTER CLONE")));
    let r = assert_resolved_from(&recs, &online, "agentmill__inifile-1", &ini);
    assert!(!r.grading.as_ref().is_some_and(|g| g.log_tail.contains("NO NETWORK")));
    assert!(engine.containers_of(&worker_id).await.expect("list containers").is_empty(), "no container left behind");
}

/// The process sandbox: the same kind of task with a `file://` URL to a repository on this host
/// (bound read-only into a bubblewrap sandbox, which otherwise sees none of the host's folders).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_sandbox_clones_a_file_url() {
    let served = tempfile::tempdir().expect("temp dir");
    let sha = repo_from_bundled_archive("agentmill__texttable-1", served.path(), "texttable.git");
    let url = format!("file://{}", served.path().join("texttable.git").display());

    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let stream = unique("test:git");
    let _worker = Worker::start(&coord, &redis.url, &stream, &unique("w-git-proc"), true);
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    let id = unique("git__texttable");
    // Under bubblewrap a local clone needs no network, so the sandbox gets none: the tests run
    // only when the coordinator's port on the host's loopback is out of reach.
    let isolated = agentmill_worker::sandbox::process::bwrap_available();
    let guard = format!(
        "if python -c \"import socket; socket.create_connection(('127.0.0.1', {}), 2)\" 2>/dev/null; then echo 'HOST NETWORK'; exit 3; fi",
        coord.port
    );
    let test_cmd = guarded_test_cmd("agentmill__texttable-1", &guard);
    submit(
        &mut c,
        vec![git_row("agentmill__texttable-1", &id, &url, &sha, |r| {
            if isolated {
                r.insert("test_cmd".into(), test_cmd.into());
            }
        })],
    )
    .await;
    let states = wait_finished(&mut c, &[&id], Duration::from_secs(120)).await;
    assert_eq!(states[0].state, v1::TaskState::Done as i32, "{:#?}", states[0]);
    let recs = stream_records(&redis.url, &stream).await;
    let r = assert_resolved_from(&recs, &id, "agentmill__texttable-1", &sha);
    assert!(r.provenance.image_digest.is_empty(), "no image ran");
    assert!(!r.grading.as_ref().is_some_and(|g| g.log_tail.contains("HOST NETWORK")));
    if !isolated {
        eprintln!("bubblewrap is not usable here: the process sandbox ran plain processes, which share the host's network");
    }
}

/// A repository that is not there and a base commit the repository lacks: each attempt ends as
/// a sandbox error naming the clone, is retried up to `--max-attempts`, and the task fails with
/// that reason. No graded record is ever published (nothing the learner could train on as the
/// model's failure), and no container is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_that_fails_is_a_sandbox_error_retried_then_the_task_fails() {
    let Some(engine) = docker_or_skip("a_clone_that_fails_is_a_sandbox_error_retried_then_the_task_fails").await else { return };
    let served = tempfile::tempdir().expect("temp dir");
    repo_from_bundled_archive("agentmill__semver-1", served.path(), "semver.git");
    let daemon = serve_to_containers(&engine, served.path(), "semver.git").await;

    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &["--max-attempts", "2"]).await;
    let stream = unique("test:git");
    let worker_id = unique("w-git-bad");
    let _worker = Worker::start(&coord, &redis.url, &stream, &worker_id, false);
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    let wrong_url = unique("git__wrong-url");
    let wrong_commit = unique("git__wrong-commit");
    let missing = "0123456789abcdef0123456789abcdef01234567";
    submit(
        &mut c,
        vec![
            git_row("agentmill__semver-1", &wrong_url, &daemon.url("no-such-repo.git"), missing, |_| {}),
            git_row("agentmill__semver-1", &wrong_commit, &daemon.url("semver.git"), missing, |_| {}),
        ],
    )
    .await;
    let states = wait_finished(&mut c, &[&wrong_url, &wrong_commit], Duration::from_secs(120)).await;
    for s in &states {
        assert_eq!(s.state, v1::TaskState::Failed as i32, "{s:#?}");
        let r = &s.rollouts[0];
        assert_eq!(r.attempt, 2, "retried once: {s:#?}");
        assert!(r.result.is_none(), "no result: {s:#?}");
        assert!(r.last_error.starts_with("failed after 2 attempts; last: sandbox_error: "), "{}", r.last_error);
        assert!(r.last_error.contains("cloning the repository failed"), "{}", r.last_error);
    }
    // git's own words reach the coordinator: which repository, which commit.
    assert!(states[0].rollouts[0].last_error.contains("no-such-repo.git"), "{}", states[0].rollouts[0].last_error);
    assert!(states[1].rollouts[0].last_error.contains(missing), "{}", states[1].rollouts[0].last_error);
    let recs = stream_records(&redis.url, &stream).await;
    for id in [&wrong_url, &wrong_commit] {
        let mine: Vec<&TrajectoryRecord> = recs.iter().filter(|r| &r.task_id == id).collect();
        let attempts: Vec<u32> = mine.iter().map(|r| r.attempt).collect();
        assert_eq!(attempts, [1, 2], "{id}: one infra record per attempt");
        for r in mine {
            assert_eq!(r.exit_reason, Some(ExitReason::SandboxError), "{id}: {r:#?}");
            assert!(r.grading.is_none() && r.messages.is_empty(), "{id}: never graded, no agent turn");
            assert!(r.error.as_deref().is_some_and(|e| e.contains("cloning the repository failed")), "{id}: {:?}", r.error);
        }
    }
    assert!(engine.containers_of(&worker_id).await.expect("list containers").is_empty(), "no container left behind");
}
