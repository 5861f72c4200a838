//! What the sandbox tests share: real Docker with the sandbox image and a reaper that removes a
//! test's containers even when an assertion fails, real bubblewrap, the bundled tasks, a
//! scripted policy for driving the agent tools, a Python with pytest for the process backend,
//! and probes of the host (process count, peak memory, files, sockets).
//!
//! Nothing is mocked. Without Docker the Docker tests fail loudly unless the run declares
//! `AGENTMILL_NO_DOCKER=1` (the rule of `agentmill_testkit::docker`); without a usable `bwrap`
//! the bubblewrap tests fail loudly unless it declares `AGENTMILL_NO_BWRAP=1`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use agentmill_proto::{FunctionCall, Message, PolicyInfo, Role, Source, Task, ToolCall, read_jsonl_file};
use agentmill_worker::agent::AgentOutcome;
use agentmill_worker::agent::policy::{Policy, PolicyError};
use agentmill_worker::repo::init_archive_repo_script;
use agentmill_worker::sandbox::docker::{DockerContainer, DockerEngine, LABEL_WORKER};
use agentmill_worker::sandbox::process::{HostPython, Isolation, ProcessSandbox, ProcessSpec, bwrap_available};
use agentmill_worker::sandbox::{ExecOutput, ExecRequest, Sandbox, SandboxLimits, SandboxSpec};
pub use agentmill_testkit::docker::docker as docker_cli;
pub use agentmill_testkit::{SANDBOX_IMAGE, unique, workspace};
use serde_json::{Value, json};

/// The task whose repository the sandbox tests use (small, pure Python).
pub const TASK: &str = "agentmill__inifile-1";

/// The bundled tasks, archive paths made absolute.
pub fn bundled_tasks() -> Vec<Task> {
    let path = workspace().join("deploy/tasks/tasks.jsonl");
    let (tasks, errors) = read_jsonl_file(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(errors.is_empty(), "bundled tasks have bad rows: {errors:#?}");
    tasks
}

/// One bundled task by id.
pub fn bundled_task(id: &str) -> Task {
    bundled_tasks().into_iter().find(|t| t.instance_id == id).unwrap_or_else(|| panic!("no bundled task {id}"))
}

/// The bytes of a bundled task's archive.
pub fn archive_of(task: &Task) -> Vec<u8> {
    let Source::Archive { path, .. } = &task.source else { panic!("{}: bundled tasks ship archives", task.instance_id) };
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Docker

/// The worker's Docker client once the kit's rule passed (the engine answers, the sandbox image
/// is built; else a panic naming the fix), with what an earlier run of `worker` left reaped.
/// `None` (announced) only when the run declares `AGENTMILL_NO_DOCKER=1`.
pub async fn docker(test: &str, worker: &str) -> Option<DockerEngine> {
    if !agentmill_testkit::docker::available(test) {
        return None;
    }
    let engine = DockerEngine::connect().await.unwrap_or_else(|e| panic!("{test}: the docker CLI reaches an engine but the worker's client does not: {e}"));
    engine.reap(worker).await.expect("reap the containers an earlier run left");
    Some(engine)
}

/// Force-removes every container, then every network, labelled with its worker when dropped —
/// after a passing test and while a failed assertion unwinds alike (through the docker CLI,
/// which needs no runtime).
#[derive(Debug)]
pub struct Reaper(pub String);

impl Drop for Reaper {
    fn drop(&mut self) {
        // Never panics: it runs while a failed assertion unwinds.
        let filter = format!("label={LABEL_WORKER}={}", self.0);
        let listed = |what: &[&str]| -> Vec<String> {
            let out = std::process::Command::new("docker").args(what).args(["-q", "--filter", &filter]).output();
            out.map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_string).collect()).unwrap_or_default()
        };
        let ids = listed(&["ps", "-a"]);
        if !ids.is_empty() {
            agentmill_testkit::docker::quiet(&[&["rm", "-f", "-v"][..], &ids.iter().map(String::as_str).collect::<Vec<_>>()].concat());
        }
        // Episodes' egress networks (after their proxies).
        let nets = listed(&["network", "ls"]);
        if !nets.is_empty() {
            agentmill_testkit::docker::quiet(&[&["network", "rm"][..], &nets.iter().map(String::as_str).collect::<Vec<_>>()].concat());
        }
    }
}

/// Small limits, so that abuse ends fast: 256 MiB, 64 processes, half a CPU.
pub fn small_limits() -> SandboxLimits {
    SandboxLimits { cpus: Some(0.5), memory_bytes: Some(256 << 20), pids: Some(64), disk_bytes: None }
}

/// Starts a container of the sandbox image with `task`'s repository at its base commit.
pub async fn task_container(engine: &DockerEngine, worker: &str, task: &Task, limits: SandboxLimits, network: bool, tag: &str) -> DockerContainer {
    let mut spec = SandboxSpec::new(SANDBOX_IMAGE, &task.workdir, worker, unique(tag));
    spec.limits = limits;
    spec.network = network;
    let c = engine.start(&spec).await.expect("start a sandbox container");
    c.upload_tar(&task.workdir, archive_of(task)).await.expect("upload the archive");
    let init = c.exec(&ExecRequest::new(init_archive_repo_script()).timeout(Duration::from_secs(60))).await.expect("git init");
    assert_eq!(init.exit_code, 0, "git init failed:\n{}", init.output);
    assert_eq!(init.output.lines().last(), Some(task.base_commit.as_str()), "{}: base commit differs", task.instance_id);
    c
}

/// Removes `c` and checks that `worker` owns no container any more.
pub async fn remove_and_check_none_left(engine: &DockerEngine, worker: &str, c: &DockerContainer) {
    c.remove().await;
    let left = engine.containers_of(worker).await.expect("list the worker's containers");
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

// ---------------------------------------------------------------------------------------------
// The process backend

/// Whether the bubblewrap tests run: `bwrap` must work here unless the run declares
/// `AGENTMILL_NO_BWRAP=1` (then `false`, announced).
pub fn bwrap(test: &str) -> bool {
    if std::env::var("AGENTMILL_NO_BWRAP").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED the bubblewrap part of {test}: AGENTMILL_NO_BWRAP=1 says this host has no usable bubblewrap");
        return false;
    }
    assert!(
        bwrap_available(),
        "{test} needs bubblewrap: `bwrap` is missing or cannot create namespaces here. Install bubblewrap, or set AGENTMILL_NO_BWRAP=1 to declare a host without it."
    );
    true
}

/// The isolations a process test runs under: plain always, bubblewrap where it works.
pub fn isolations(test: &str) -> Vec<Isolation> {
    let mut modes = vec![Isolation::Plain];
    if bwrap(test) {
        modes.push(Isolation::Bubblewrap);
    }
    modes
}

/// A process sandbox with `task`'s workdir and the given isolation and limits.
pub async fn process_sandbox(task: &Task, isolation: Isolation, tag: &str, python: Option<&HostPython>) -> ProcessSandbox {
    let mut spec = ProcessSpec::new(&task.workdir, unique(tag));
    spec.isolation = isolation;
    if let Some(python) = python {
        spec = spec.with_python(python);
    }
    ProcessSandbox::start(&spec).await.expect("start a process sandbox")
}

/// A process sandbox with `task`'s repository at its base commit.
pub async fn process_task_sandbox(task: &Task, isolation: Isolation, tag: &str, python: Option<&HostPython>) -> ProcessSandbox {
    let s = process_sandbox(task, isolation, tag, python).await;
    s.upload_tar(s.workdir(), archive_of(task)).await.expect("extract the archive");
    let init = run(&s, &init_archive_repo_script()).await;
    assert_eq!(init.exit_code, 0, "git init failed:\n{}", init.output);
    assert_eq!(init.output.lines().last(), Some(task.base_commit.as_str()), "{}: base commit differs", task.instance_id);
    s
}

/// Runs a command with a generous timeout.
pub async fn run(s: &dyn Sandbox, command: &str) -> ExecOutput {
    s.exec(&ExecRequest::new(command).timeout(Duration::from_secs(120)).max_output(4 << 20)).await.expect("exec in the sandbox")
}

/// A host Python with pytest: the host's `python3` when it has pytest, else a venv made once
/// per machine under the temp folder (`python3 -m venv` + `pip install pytest`). `None`
/// (announced) when neither can be had, e.g. offline without a wheel.
pub fn pytest_python() -> Option<HostPython> {
    static PYTHON: OnceLock<Option<HostPython>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let has_pytest = |python: &Path| {
                std::process::Command::new(python)
                    .args(["-m", "pytest", "--version"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if has_pytest(Path::new("python3")) {
                return HostPython::locate("python3").ok();
            }
            let venv = std::env::temp_dir().join("agentmill-test-pytest-venv");
            let python = venv.join("bin/python");
            if !has_pytest(&python) {
                let building = std::env::temp_dir().join(format!("agentmill-test-pytest-venv.{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&building);
                let made = std::process::Command::new("python3").arg("-m").arg("venv").arg(&building).status().is_ok_and(|s| s.success())
                    && std::process::Command::new(building.join("bin/python"))
                        .args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "pytest"])
                        .status()
                        .is_ok_and(|s| s.success());
                // Built under a temp name and renamed, so a concurrent run never sees half a venv
                // (`python -m` works from a moved venv: it finds `pyvenv.cfg` beside itself).
                if !made {
                    let _ = std::fs::remove_dir_all(&building);
                    eprintln!("NOTE: no Python with pytest on this host and none could be installed; the pytest runs are left out");
                    return None;
                }
                let _ = std::fs::remove_dir_all(&venv);
                if std::fs::rename(&building, &venv).is_err() {
                    let _ = std::fs::remove_dir_all(&building);
                }
            }
            if !has_pytest(&python) {
                eprintln!("NOTE: the pytest venv at {} does not work; the pytest runs are left out", venv.display());
                return None;
            }
            HostPython::locate(&python).ok()
        })
        .clone()
}

// ---------------------------------------------------------------------------------------------
// A scripted policy: turns given up front.

/// A policy that plays the given turns, then repeats `repeat` (or fails for good).
#[derive(Debug)]
pub struct Scripted {
    turns: VecDeque<Message>,
    /// Played once the script ran out.
    pub repeat: Option<Message>,
}

impl Scripted {
    /// Plays `turns` in order.
    pub fn new(turns: Vec<Message>) -> Scripted {
        Scripted { turns: turns.into(), repeat: None }
    }
}

#[async_trait::async_trait]
impl Policy for Scripted {
    fn info(&self) -> PolicyInfo {
        PolicyInfo { name: "scripted".into(), ..PolicyInfo::default() }
    }

    async fn next(&mut self, _messages: &[Message], _tools: &[Value]) -> Result<Message, PolicyError> {
        match self.turns.pop_front() {
            Some(turn) => Ok(turn),
            None => self.repeat.clone().ok_or_else(|| PolicyError::Fatal("the script ran out".into())),
        }
    }
}

/// An assistant turn calling one tool.
pub fn call(name: &str, arguments: Value) -> Message {
    let mut m = Message::text(Role::Assistant, "scripted");
    m.tool_calls = vec![ToolCall {
        id: String::new(),
        kind: "function".into(),
        function: FunctionCall { name: name.into(), arguments: arguments.to_string() },
    }];
    m
}

/// A `bash` turn.
pub fn bash(command: &str) -> Message {
    call("bash", json!({ "command": command }))
}

/// A `submit` turn.
pub fn submit() -> Message {
    call("submit", json!({}))
}

/// The tool messages of an episode, in order.
pub fn tool_answers(outcome: &AgentOutcome) -> Vec<&Message> {
    outcome.messages.iter().filter(|m| m.role == Role::Tool).collect()
}

// ---------------------------------------------------------------------------------------------
// Probes of the host

/// All processes on the host (`/proc/loadavg`'s total).
pub fn host_process_count() -> u64 {
    let text = std::fs::read_to_string("/proc/loadavg").expect("read /proc/loadavg");
    text.split_whitespace().nth(3).and_then(|f| f.split('/').nth(1)).and_then(|n| n.parse().ok()).expect("a running/total field in /proc/loadavg")
}

/// Peak resident memory of this test process, KiB (`VmHWM`).
pub fn peak_rss_kib() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    text.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next()).and_then(|n| n.parse().ok()).expect("VmHWM in /proc/self/status")
}

/// Host processes whose command line contains `marker`.
pub fn host_processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(format!("{name}: {cmdline}"));
            }
        }
    }
    found
}

/// The number after "<output truncated by agentmill: " in `text`.
pub fn omitted_bytes(text: &str) -> Option<u64> {
    let at = text.rfind("<output truncated by agentmill: ")?;
    text[at..].split_whitespace().nth(4).and_then(|n| n.parse().ok())
}

// ---------------------------------------------------------------------------------------------
// Hosts the tests create

/// A listener that counts the connections it accepts, in a container of the sandbox image on a
/// Docker network the test creates: the only place a test's network probes connect to besides
/// loopback (never the host's bridge gateway). Removed with its network when dropped.
#[derive(Debug)]
pub struct TestListener {
    /// The network's name (a container given it can reach the listener).
    pub network: String,
    container: String,
    /// The listener's address on the network.
    pub ip: String,
    /// Its port.
    pub port: u16,
}

impl TestListener {
    /// Creates the network and starts the listener; returns once it listens.
    pub fn start(tag: &str) -> TestListener {
        let network = unique(&format!("{tag}-net"));
        docker_cli(&["network", "create", "--driver", "bridge", &network]);
        let container = unique(&format!("{tag}-listener"));
        let mut l = TestListener { network, container: container.clone(), ip: String::new(), port: 9000 };
        let script = "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 9000))\ns.listen(64)\nopen('/tmp/ready', 'w').close()\nwhile True:\n    c, _ = s.accept()\n    with open('/tmp/accepted', 'a') as f:\n        f.write('x\\n')\n    c.close()\n";
        docker_cli(&["run", "-d", "--name", &container, "--network", &l.network, SANDBOX_IMAGE, "python3", "-c", script]);
        l.ip = docker_cli(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", l.network), &container]);
        docker_cli(&["exec", &container, "sh", "-c", "for i in $(seq 1 200); do [ -e /tmp/ready ] && exit 0; sleep 0.1; done; exit 1"]);
        l
    }

    /// The connections accepted so far.
    pub fn accepted(&self) -> usize {
        docker_cli(&["exec", &self.container, "sh", "-c", "cat /tmp/accepted 2>/dev/null | wc -l"]).parse().expect("a count")
    }

    /// The count once it reaches `n`, or after 10 s, whichever comes first (the client's connect
    /// returns at the handshake; the listener counts a moment later).
    pub fn accepted_at_least(&self, n: usize) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let count = self.accepted();
            if count >= n || std::time::Instant::now() > deadline {
                return count;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestListener {
    fn drop(&mut self) {
        use agentmill_testkit::docker::quiet;
        quiet(&["rm", "-f", &self.container]);
        quiet(&["network", "rm", &self.network]);
    }
}

/// [`task_container`] on the Docker network `network` (a network the test created).
pub async fn task_container_on(engine: &DockerEngine, worker: &str, task: &Task, limits: SandboxLimits, network: &str, tag: &str) -> DockerContainer {
    let mut spec = SandboxSpec::new(SANDBOX_IMAGE, &task.workdir, worker, unique(tag));
    spec.limits = limits;
    spec.network = true;
    spec.network_name = Some(network.to_string());
    let c = engine.start(&spec).await.expect("start a sandbox container");
    c.upload_tar(&task.workdir, archive_of(task)).await.expect("upload the archive");
    c
}
