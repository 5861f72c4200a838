//! Task source `git`: the worker clones the task's repository (`git init`, `git fetch --depth 1
//! origin <base_commit>`, checkout) in a short-lived sandbox of its own and copies it into the
//! episode's sandbox, instead of uploading an archive.
//!
//! Real `agentmill-coordinator` and `agentmill-worker` processes, real Redis, the `replay`
//! policy. The repositories are built on this host from the bundled tasks' archives and served
//! only by hosts the test creates, so nothing reaches the internet or the host's bridge: to
//! containers by `git daemon` in a container on a Docker network the test creates (`git://`; the
//! worker clones over that network, `sandbox_network.clone_network`), to the process sandbox by
//! a `file://` URL.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentmill_cli::client::{self, Client, ClientConfig};
use agentmill_proto::{ExitReason, Resolution, Role, TrajectoryRecord, v1};
use agentmill_testkit::docker::{docker as docker_cli, quiet};
use agentmill_testkit::git::commit_as_served_repo;
use agentmill_tests::{CoordinatorProcess, SANDBOX_IMAGE, TestRedis, binary, docker_or_skip, free_port, stream_records, unique, workspace};
use serde_json::{Map, Value};

/// Unpacks the bundled archive of task `id` into `root/<name>`, commits it as one commit and lets
/// `git daemon` serve any commit by id (the worker's shallow fetch asks for the base commit by
/// id). Returns the commit id.
fn repo_from_bundled_archive(id: &str, root: &Path, name: &str) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("repository folder");
    let archive = workspace().join(format!("deploy/tasks/archives/{id}.tar.gz"));
    let status = Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&dir).status().expect("run tar");
    assert!(status.success(), "cannot unpack {}", archive.display());
    // A fixed identity and date (agentmill_testkit::git), so the commit id depends only on the
    // files; it differs from the bundled archives' base commits, so a record carrying the new id
    // proves it came from the clone.
    commit_as_served_repo(&dir, &format!("{id} at its base commit"))
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

/// A Docker network this test creates, with `git daemon` (and a plain HTTP server on port 8080,
/// a host the sandbox's egress proxy may be allowed to reach) in a container of the sandbox
/// image on it, serving the repositories under a host folder mounted read-only. Nothing is
/// served from the host itself: clones and probes connect only to this container. The
/// container and the network are removed when dropped.
struct GitServer {
    network: String,
    container: String,
    ip: String,
}

impl GitServer {
    /// Starts the server and waits until `git ls-remote` of `repo` answers on its own address
    /// (from inside its container).
    fn start(base: &Path, repo: &str) -> GitServer {
        // The daemon in its container runs as another user than the files' owner: let it read them.
        let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(base).status();
        let network = unique("amtest-git");
        docker_cli(&["network", "create", "--driver", "bridge", &network]);
        let container = unique("amtest-git-daemon");
        let mut server = GitServer { network, container: container.clone(), ip: String::new() };
        let mount = format!("{}:/srv:ro", base.display());
        let script = "mkdir -p /www && echo served > /www/index.html && (cd /www && python3 -m http.server 8080 >/dev/null 2>&1 &) && \
                      exec git -c safe.directory='*' daemon --reuseaddr --export-all --informative-errors --base-path=/srv --listen=0.0.0.0 --port=9418";
        docker_cli(&["run", "-d", "--name", &container, "--network", &server.network, "-v", &mount, SANDBOX_IMAGE, "sh", "-c", script]);
        server.ip = docker_cli(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", server.network), &container]);
        let ready = format!(
            "for i in $(seq 1 200); do git -c safe.directory='*' ls-remote git://127.0.0.1/{repo} >/dev/null 2>&1 && \
             python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/', timeout=2)\" 2>/dev/null && exit 0; sleep 0.1; done; exit 1"
        );
        docker_cli(&["exec", &container, "sh", "-c", &ready]);
        server
    }

    fn url(&self, repo: &str) -> String {
        format!("git://{}/{repo}", self.ip)
    }

    /// A worker configuration that clones over this server's network; with `egress`, it also
    /// lets tasks have the network, through a proxy on that network allowed to reach the server.
    fn worker_config(&self, dir: &Path, egress: bool) -> std::path::PathBuf {
        // Clones reach only what the worker's egress policy permits: this test network's
        // private range is listed.
        let subnet = docker_cli(&["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", &self.network]);
        let mut toml = format!("[sandbox_network]\nclone_network = {:?}\nallow = [{subnet:?}]\n", self.network);
        if egress {
            toml.push_str(&format!("mode = \"allow\"\negress_network = {:?}\n", self.network));
        }
        let path = dir.join("worker.toml");
        std::fs::write(&path, toml).expect("write the worker's configuration");
        path
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        quiet(&["rm", "-f", &self.container]);
        quiet(&["network", "rm", &self.network]);
    }
}

/// A worker process; killed when dropped.
struct Worker(Child);

impl Worker {
    fn start(coord: &CoordinatorProcess, redis: &str, stream: &str, id: &str, process_backend: bool, config: Option<&Path>) -> Worker {
        let mut cmd = Command::new(binary("agentmill-worker"));
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
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

/// Docker: two tasks cloned over `git://` from a container on a network the test creates (the
/// worker's `sandbox_network.clone_network`). The one without `allow_network` grades with a test
/// command that first tries the remote it was cloned from and the server's HTTP port, and
/// refuses to run the tests when either answers, so FULL proves the episode never had the
/// clone's network. The one with `allow_network` (the worker allows it, its egress proxy may
/// reach the server) requires the server's HTTP port to answer through the proxy (the check's
/// positive control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_episodes_clone_the_task_repository_over_git_and_never_share_the_clones_network() {
    let Some(engine) = docker_or_skip("docker_episodes_clone_the_task_repository_over_git_and_never_share_the_clones_network").await else { return };
    let served = tempfile::tempdir().expect("temp dir");
    let calc = repo_from_bundled_archive("agentmill__calc-1", served.path(), "calc.git");
    let ini = repo_from_bundled_archive("agentmill__inifile-1", served.path(), "inifile.git");
    assert_ne!(calc, "3f4e9ef0671bd5bf2129226c67c1f4a7d8af9af1", "a new base commit, not the bundled one");
    let server = GitServer::start(served.path(), "calc.git");
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = server.worker_config(config_dir.path(), true);

    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let stream = unique("test:git");
    let worker_id = unique("w-git");
    let _worker = Worker::start(&coord, &redis.url, &stream, &worker_id, false, Some(&config));
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");

    let offline = unique("git__calc");
    let online = unique("git__inifile");
    let http = format!("python3 -c \"import urllib.request; urllib.request.urlopen('http://{}:8080/', timeout=10)\" >/dev/null 2>&1", server.ip);
    let no_net_guard = format!(
        "if timeout 10 git ls-remote origin >/dev/null 2>&1; then echo 'NETWORK AFTER CLONE'; exit 3; fi\nif {http}; then echo 'NETWORK AFTER CLONE'; exit 3; fi"
    );
    let net_guard = format!("{http} || {{ echo 'NO NETWORK'; exit 3; }}");
    let offline_cmd = guarded_test_cmd("agentmill__calc-1", &no_net_guard);
    let online_cmd = guarded_test_cmd("agentmill__inifile-1", &net_guard);
    submit(
        &mut c,
        vec![
            git_row("agentmill__calc-1", &offline, &server.url("calc.git"), &calc, |r| {
                r.insert("test_cmd".into(), offline_cmd.into());
            }),
            git_row("agentmill__inifile-1", &online, &server.url("inifile.git"), &ini, |r| {
                r.insert("test_cmd".into(), online_cmd.into());
                r.insert("allow_network".into(), true.into());
            }),
        ],
    )
    .await;
    let states = wait_finished(&mut c, &[&offline, &online], Duration::from_secs(180)).await;
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
    assert!(engine.networks_of(&worker_id).await.expect("list networks").is_empty(), "no episode network left behind");
}

/// The process sandbox: the same kind of task with a `file://` URL to a repository on this host
/// (bound read-only into a bubblewrap sandbox, which otherwise sees none of the host's folders).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_sandbox_clones_a_file_url() {
    let served = tempfile::tempdir().expect("temp dir");
    let sha = repo_from_bundled_archive("agentmill__texttable-1", served.path(), "texttable.git");
    let url = format!("file://{}", served.path().canonicalize().expect("canonical").join("texttable.git").display());

    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let stream = unique("test:git");
    // The worker reads host repositories only under its inputs.host_roots.
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = config_dir.path().join("worker.toml");
    let root = served.path().canonicalize().expect("canonical");
    std::fs::write(&config, format!("[inputs]\nhost_roots = [{:?}]\n", root.display().to_string())).expect("write the worker's configuration");
    let _worker = Worker::start(&coord, &redis.url, &stream, &unique("w-git-proc"), true, Some(&config));
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
    let daemon = GitServer::start(served.path(), "semver.git");
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = daemon.worker_config(config_dir.path(), false);

    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &["--max-attempts", "2"]).await;
    let stream = unique("test:git");
    let worker_id = unique("w-git-bad");
    let _worker = Worker::start(&coord, &redis.url, &stream, &worker_id, false, Some(&config));
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
