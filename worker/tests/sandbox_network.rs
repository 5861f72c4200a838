//! The worker decides whether a sandbox has a network, and a network-enabled sandbox reaches
//! out only through its egress proxy, under the worker's policy.
//!
//! Real Docker, the sandbox image, and only hosts the tests create: a Docker network of the
//! test's own with two HTTP servers in containers (one on the allow list, one not), and a
//! listener on the host that the sandbox tries to reach at the host's address on that network.
//! Every container, proxy and network is labelled with the test's worker name and removed.

mod sandbox_support;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agentmill_proto::ExitReason;
use agentmill_testkit::docker::quiet;
use agentmill_testkit::git::{GIT_ENV, commit_as_served_repo};
use agentmill_worker::config::WorkerConfig;
use agentmill_worker::episode::init::{self, Backend};
use agentmill_worker::episode::{EpisodeLease, run_episode};
use agentmill_worker::inputs::Inputs;
use agentmill_worker::sandbox::network::{NetworkPolicy, SandboxNetworkConfig};
use agentmill_worker::sandbox::{ExecRequest, SandboxError};
use sandbox_support::*;
use tokio_util::sync::CancellationToken;

/// A Docker network the test creates, with containers on it; all removed when dropped.
#[derive(Debug)]
pub struct TestNetwork {
    pub name: String,
    containers: Vec<String>,
}

impl TestNetwork {
    pub fn create(tag: &str) -> TestNetwork {
        let name = unique(tag);
        docker_cli(&["network", "create", "--driver", "bridge", &name]);
        TestNetwork { name, containers: Vec::new() }
    }

    /// Starts a container of the sandbox image on this network serving `body` over HTTP on port
    /// 8080; returns its address once it answers.
    pub fn http_server(&mut self, body: &str) -> String {
        let name = unique("egress-server");
        let script = format!("mkdir -p /srv && printf '%s' '{body}' > /srv/index.html && cd /srv && exec python3 -m http.server 8080");
        docker_cli(&["run", "-d", "--name", &name, "--network", &self.name, SANDBOX_IMAGE, "sh", "-c", &script]);
        self.containers.push(name.clone());
        let ip = docker_cli(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", self.name), &name]);
        // Ready when the server answers from inside its own container.
        let probe = "import urllib.request,time\nfor i in range(200):\n    try:\n        urllib.request.urlopen('http://127.0.0.1:8080/', timeout=2); break\n    except Exception: time.sleep(0.1)\nelse: raise SystemExit('no answer')";
        docker_cli(&["exec", &name, "python3", "-c", probe]);
        ip
    }

    /// Starts `git daemon` in a container of the sandbox image on this network, serving the
    /// repositories under the host folder `base` (mounted read-only); returns its address once
    /// it lists `repo`.
    pub fn git_daemon(&mut self, base: &std::path::Path, repo: &str) -> String {
        let name = unique("git-daemon");
        let mount = format!("{}:/srv:ro", base.display());
        docker_cli(&["run", "-d", "--name", &name, "--network", &self.name, "-v", &mount, SANDBOX_IMAGE,
            "git", "-c", "safe.directory=*", "daemon", "--verbose", "--reuseaddr", "--export-all", "--informative-errors", "--base-path=/srv", "--listen=0.0.0.0", "--port=9418"]);
        self.containers.push(name.clone());
        let ip = docker_cli(&["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", self.name), &name]);
        let probe = format!("for i in $(seq 1 200); do git -c safe.directory='*' ls-remote git://127.0.0.1/{repo} >/dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1");
        docker_cli(&["exec", &name, "sh", "-c", &probe]);
        ip
    }

    /// Connections the git daemon `container` accepted from anywhere but its own loopback (its
    /// readiness probe): the lines `git daemon --verbose` logs for each.
    pub fn daemon_connections(&self) -> usize {
        let name = self.containers.iter().find(|c| c.contains("git-daemon")).expect("a git daemon on this network");
        let out = Command::new("docker").args(["logs", name]).output().expect("docker logs");
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        log.lines().filter(|l| l.contains("Connection from") && !l.contains("127.0.0.1")).count()
    }

    /// This network's address range (CIDR).
    pub fn subnet(&self) -> String {
        docker_cli(&["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", &self.name])
    }

    /// The host's address on this network (its bridge's gateway).
    pub fn host_address(&self) -> String {
        docker_cli(&["network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", &self.name])
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        if !self.containers.is_empty() {
            quiet(&[&["rm", "-f"][..], &self.containers.iter().map(String::as_str).collect::<Vec<_>>()].concat());
        }
        quiet(&["network", "rm", &self.name]);
    }
}

/// A listener on every address of the host that counts the connections it accepts.
fn listen_on_the_host() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(("0.0.0.0", 0)).expect("bind a listener on the host");
    let port = listener.local_addr().expect("local addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, accepted)
}

/// Inputs that read the bundled tasks' archives.
fn bundled_inputs() -> Inputs {
    let root = workspace().join("deploy/tasks").canonicalize().expect("deploy/tasks");
    Inputs { roots: vec![root], ..Inputs::none() }
}

/// A worker without a `[sandbox_network]` section (network off) ends a task that asks for the
/// network as `sandbox_error` naming `sandbox_network.mode`, before any container starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_asking_for_the_network_is_refused_by_a_worker_that_does_not_allow_it() {
    let worker = "sandbox-net-refused";
    let Some(engine) = docker("network_refused", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let mut task = bundled_task(TASK);
    task.allow_network = true;

    let backend = Backend::Docker(engine.clone());
    let refused = init::prepare(&backend, None, &bundled_inputs(), &NetworkPolicy::default(), &task, worker, &unique("refused"), &small_limits()).await;
    let err = refused.expect_err("a worker with the network off refuses the task");
    assert!(matches!(err, SandboxError::NetworkRefused(_)), "{err:?}");
    let why = err.to_string();
    assert!(why.contains("sandbox_network.mode") && why.contains(&task.instance_id), "{why}");

    // The whole episode: a sandbox error (retried elsewhere, never trained as the model's).
    let mut cfg = WorkerConfig::default();
    cfg.inputs.host_roots = bundled_inputs().roots;
    let env = agentmill_worker::host::episode_env(&cfg, backend, worker.into(), &agentmill_worker::metrics::WorkerMetrics::new()).expect("episode env");
    let id = EpisodeLease { episode: unique("refused-episode"), rollout: 0, attempt: 1, queued_at_unix_ms: 0 };
    let record = run_episode(env, task.clone(), id, |_| {}, CancellationToken::new()).await;
    assert_eq!(record.exit_reason, Some(ExitReason::SandboxError), "{:?}", record.error);
    assert!(record.error.as_deref().is_some_and(|e| e.contains("sandbox_network.mode")), "{:?}", record.error);
    assert!(record.grading.is_none() && record.messages.is_empty(), "nothing ran");
    assert!(engine.containers_of(worker).await.expect("list").is_empty(), "no container was started");

    // The process backend refuses too, even where the configuration allows the network: it
    // cannot enforce the egress policy.
    let allowing = SandboxNetworkConfig { mode: "allow".into(), ..Default::default() }.policy().expect("valid");
    let process = Backend::Process { python: None };
    let err = init::prepare(&process, None, &bundled_inputs(), &allowing, &task, worker, &unique("refused-proc"), &small_limits()).await.expect_err("refused");
    assert!(matches!(err, SandboxError::NetworkRefused(_)) && err.to_string().contains("egress"), "{err}");
}

/// `mode = "allow"`: the sandbox reaches a server on the allow list through its proxy, and
/// nothing else — not a server outside the list on the same network, not a listener on the
/// host, not the cloud metadata address, not even the allowed server without the proxy. Its
/// network has no address of the host. Removing the sandbox removes its proxy and network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_enabled_sandbox_reaches_only_the_allow_list_through_its_proxy() {
    let worker = "sandbox-net-egress";
    let Some(engine) = docker("network_egress", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let mut net = TestNetwork::create("amtest-egress");
    let allowed = net.http_server("ALLOWED-BODY");
    let other = net.http_server("OTHER-BODY");
    let host = net.host_address();
    let (port, accepted) = listen_on_the_host();

    let cfg = SandboxNetworkConfig {
        mode: "allow".into(),
        allow: vec![allowed.clone()],
        proxy_image: SANDBOX_IMAGE.into(),
        egress_network: net.name.clone(),
        ..Default::default()
    };
    let policy = cfg.policy().expect("a valid policy");
    let mut task = bundled_task(TASK);
    task.allow_network = true;
    let backend = Backend::Docker(engine.clone());
    let episode = unique("egress");
    let prepared = init::prepare(&backend, None, &bundled_inputs(), &policy, &task, worker, &episode, &small_limits()).await.expect("a network-enabled sandbox");
    let sandbox = prepared.sandbox.as_sandbox();

    // Through the proxy (HTTP_PROXY is set in the sandbox): a line per URL, the body or the error.
    let fetch = format!(
        "import urllib.request, urllib.error\n\
         for url in ['http://{allowed}:8080/', 'http://{other}:8080/', 'http://{host}:{port}/', 'http://169.254.169.254/latest/meta-data/', 'https://{other}:8080/']:\n\
         \x20   try:\n\
         \x20       print(url, 'BODY', urllib.request.urlopen(url, timeout=20).read().decode())\n\
         \x20   except urllib.error.HTTPError as e:\n\
         \x20       print(url, 'HTTP', e.code, e.read().decode().strip())\n\
         \x20   except Exception as e:\n\
         \x20       print(url, 'ERROR', e)\n"
    );
    sandbox.write_file("/agentmill/fetch.py", fetch.as_bytes()).await.expect("write the probe");
    let out = sandbox.exec(&ExecRequest::new("python3 /agentmill/fetch.py").timeout(Duration::from_secs(120))).await.expect("run the probe");
    let lines: Vec<&str> = out.output.lines().collect();
    assert_eq!(lines.len(), 5, "{}", out.output);
    assert!(lines[0].ends_with("BODY ALLOWED-BODY"), "the allow-listed server answers: {}", out.output);
    for refused in &lines[1..4] {
        assert!(refused.contains("HTTP 403") && refused.contains("outside this worker's egress policy"), "{}", out.output);
    }
    assert!(lines[4].contains("ERROR") && lines[4].contains("403"), "a CONNECT outside the list is refused: {}", out.output);

    // Without the proxy nothing leaves: no route to the allowed server, the host's address on
    // the test network, or the address the episode's bridge would have had without
    // inhibit_ipv4 (which would be the host).
    let inspect = engine.client().inspect_network(&episode_network(&engine, worker).await, None).await.expect("inspect the episode's network");
    assert_eq!(inspect.internal, Some(true), "{inspect:?}");
    let own_gateway = inspect.ipam.and_then(|i| i.config).and_then(|c| c.first().and_then(|c| c.gateway.clone())).expect("an IPAM gateway");
    for (addr, p) in [(allowed.as_str(), 8080), (host.as_str(), port), (own_gateway.as_str(), port)] {
        let direct = sandbox
            .exec(&ExecRequest::new(format!("timeout 5 bash -c 'exec 3<>/dev/tcp/{addr}/{p}' && echo CONNECTED")).timeout(Duration::from_secs(30)))
            .await
            .expect("exec");
        assert!(direct.exit_code != 0 && !direct.output.contains("CONNECTED"), "{addr}:{p} reached without the proxy: {direct:?}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing from the sandbox reached the host's listener");

    prepared.sandbox.remove().await;
    assert!(engine.containers_of(worker).await.expect("list").is_empty(), "the sandbox and its proxy are gone");
    assert!(engine.networks_of(worker).await.expect("list").is_empty(), "the episode's network is gone");
}

/// The one network `worker`'s episode created.
async fn episode_network(engine: &agentmill_worker::sandbox::docker::DockerEngine, worker: &str) -> String {
    let nets = engine.networks_of(worker).await.expect("list networks");
    assert_eq!(nets.len(), 1, "{nets:?}");
    nets[0].clone()
}

/// The bundled task's archive as a one-commit repository `root/<name>` that serves any commit by
/// id; returns the commit.
fn repo_from_archive(task: &agentmill_proto::Task, root: &std::path::Path, name: &str) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("repository folder");
    let bytes = archive_of(task);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    archive.unpack(&dir).expect("unpack the archive");
    let commit = commit_as_served_repo(&dir, "base");
    // The daemon in its container runs as another user: let it read the files.
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(root).status();
    commit
}

/// A `git` source is cloned in a step of its own: the clone reaches a `git daemon` on the
/// test's network (Docker: `clone_network`; the process backend: the host's network), the
/// episode's sandbox then holds the repository at the base commit but has no network — only
/// `lo`, and neither the daemon nor the remote it was cloned from answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_source_is_cloned_in_its_own_step_and_the_episode_has_no_network() {
    let worker = "sandbox-net-clone";
    let Some(engine) = docker("git_clone_step", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let served = tempfile::tempdir().expect("temp dir");
    let bundled = bundled_task(TASK);
    let commit = repo_from_archive(&bundled, served.path(), "repo.git");
    let mut net = TestNetwork::create("amtest-clone");
    let daemon = net.git_daemon(served.path(), "repo.git");
    let mut task = bundled.clone();
    task.source = agentmill_proto::Source::Git { url: format!("git://{daemon}/repo.git") };
    task.base_commit = commit.clone();
    task.image = SANDBOX_IMAGE.into();
    let policy = SandboxNetworkConfig { clone_network: net.name.clone(), allow: vec![net.subnet()], ..Default::default() }.policy().expect("valid");

    let mut backends = vec![("docker", Backend::Docker(engine.clone()))];
    if bwrap("git_clone_step") {
        backends.push(("bubblewrap", Backend::Process { python: None }));
    }
    for (which, backend) in backends {
        let prepared = init::prepare(&backend, None, &Inputs::none(), &policy, &task, worker, &unique("clone"), &small_limits())
            .await
            .unwrap_or_else(|e| panic!("{which}: the clone and the sandbox: {e}"));
        let sandbox = prepared.sandbox.as_sandbox();
        let head = sandbox.exec(&ExecRequest::new("git rev-parse HEAD && git status --porcelain | wc -l")).await.expect("exec");
        assert_eq!(head.output.lines().collect::<Vec<_>>(), [commit.as_str(), "0"], "{which}: the clone, clean: {head:?}");
        let dev = sandbox.exec(&ExecRequest::new("cat /proc/net/dev")).await.expect("exec");
        let interfaces: Vec<&str> = dev.output.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
        assert_eq!(interfaces, ["lo"], "{which}: {}", dev.output);
        let remote = sandbox.exec(&ExecRequest::new("timeout 20 git ls-remote origin && echo LISTED").timeout(Duration::from_secs(60))).await.expect("exec");
        assert!(remote.exit_code != 0 && !remote.output.contains("LISTED"), "{which}: the remote answers the episode: {remote:?}");
        let direct = sandbox
            .exec(&ExecRequest::new(format!("timeout 5 bash -c 'exec 3<>/dev/tcp/{daemon}/9418' && echo CONNECTED")).timeout(Duration::from_secs(30)))
            .await
            .expect("exec");
        assert!(direct.exit_code != 0 && !direct.output.contains("CONNECTED"), "{which}: {direct:?}");
        prepared.sandbox.remove().await;
    }
    assert!(engine.containers_of(worker).await.expect("list").is_empty(), "the clone's container and the sandbox are gone");
}

/// A `git` source naming a repository on this host (`file://…` or a path) is read only under
/// the worker's `inputs.host_roots`, on both backends: outside them (or with none) the episode
/// is a sandbox error naming the key before anything starts; inside them it is cloned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_git_source_is_cloned_only_under_the_host_roots() {
    let worker = "sandbox-net-local-git";
    let Some(engine) = docker("local_git_roots", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let served = tempfile::tempdir().expect("temp dir");
    let root = served.path().canonicalize().expect("canonical");
    let bundled = bundled_task(TASK);
    let commit = repo_from_archive(&bundled, &root, "repo.git");
    let outside = tempfile::tempdir().expect("temp dir");
    let elsewhere = outside.path().canonicalize().expect("canonical");
    repo_from_archive(&bundled, &elsewhere, "repo.git");
    let policy = NetworkPolicy::default();
    let allowed = Inputs { roots: vec![root.clone()], ..Inputs::none() };

    let mut backends = vec![("docker", Backend::Docker(engine.clone()))];
    if bwrap("local_git_roots") {
        backends.push(("bubblewrap", Backend::Process { python: None }));
    }
    for (which, backend) in backends {
        for url in [format!("file://{}", elsewhere.join("repo.git").display()), elsewhere.join("repo.git").display().to_string()] {
            let mut task = bundled.clone();
            task.source = agentmill_proto::Source::Git { url: url.clone() };
            task.base_commit = commit.clone();
            task.image = SANDBOX_IMAGE.into();
            for inputs in [&allowed, &Inputs::none()] {
                let err = init::prepare(&backend, None, inputs, &policy, &task, worker, &unique("local-out"), &small_limits()).await.expect_err("refused");
                let why = err.to_string();
                assert!(why.contains("inputs.host_roots") && why.contains("git_url"), "{which} {url}: {why}");
            }
            assert!(engine.containers_of(worker).await.expect("list").is_empty(), "{which}: nothing left running");
        }
        let mut task = bundled.clone();
        task.source = agentmill_proto::Source::Git { url: format!("file://{}", root.join("repo.git").display()) };
        task.base_commit = commit.clone();
        task.image = SANDBOX_IMAGE.into();
        let prepared = init::prepare(&backend, None, &allowed, &policy, &task, worker, &unique("local-in"), &small_limits())
            .await
            .unwrap_or_else(|e| panic!("{which}: a repository under the roots is cloned: {e}"));
        let head = prepared.sandbox.as_sandbox().exec(&ExecRequest::new("git rev-parse HEAD")).await.expect("exec");
        assert_eq!(head.output.trim(), commit, "{which}: {head:?}");
        prepared.sandbox.remove().await;
    }
    assert!(engine.containers_of(worker).await.expect("list").is_empty());
}

/// A listener on the host's loopback that counts the connections it accepts.
fn listen_on_loopback() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback listener");
    let port = listener.local_addr().expect("local addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, accepted)
}

/// Where a clone may connect is the worker's egress policy, not the task's `git_url`, whatever
/// `sandbox_network.mode` says: the cloud metadata address, loopback (a counting listener on the
/// host's), the test network's private address (a git daemon that logs each connection), a
/// name that resolves to loopback (`localhost`), ssh:// and scp-like URLs are all refused as a
/// sandbox error naming the policy, before anything connects — on Docker and on the process
/// backend. With the test network's range on `sandbox_network.allow` the same daemon's
/// repository is cloned (the positive control: its log then shows the connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_reaches_only_what_the_egress_policy_permits() {
    let worker = "sandbox-net-clone-policy";
    let Some(engine) = docker("clone_policy", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let served = tempfile::tempdir().expect("temp dir");
    let bundled = bundled_task(TASK);
    let commit = repo_from_archive(&bundled, served.path(), "repo.git");
    let mut net = TestNetwork::create("amtest-clone-policy");
    let daemon = net.git_daemon(served.path(), "repo.git");
    let (port, accepted) = listen_on_loopback();
    let task_for = |url: &str| {
        let mut task = bundled.clone();
        task.source = agentmill_proto::Source::Git { url: url.to_string() };
        task.base_commit = commit.clone();
        task.image = SANDBOX_IMAGE.into();
        task
    };
    let refused_urls = [
        ("git://169.254.169.254/repo.git".to_string(), "link-local"),
        (format!("git://127.0.0.1:{port}/repo.git"), "loopback"),
        (format!("http://127.0.0.1:{port}/repo.git"), "loopback"),
        (format!("http://localhost:{port}/repo.git"), "loopback"),
        (format!("git://{daemon}/repo.git"), "private"),
        (format!("git://{daemon}:9418/repo.git"), "private"),
        (format!("ssh://git@{daemon}/repo.git"), "\"ssh\""),
        (format!("git@{daemon}:repo.git"), "scp-like"),
    ];
    let off = SandboxNetworkConfig { clone_network: net.name.clone(), ..Default::default() }.policy().expect("valid");
    let allowing_tasks = SandboxNetworkConfig { mode: "allow".into(), clone_network: net.name.clone(), proxy_image: SANDBOX_IMAGE.into(), ..Default::default() }.policy().expect("valid");
    let mut backends = vec![("docker", Backend::Docker(engine.clone()))];
    if bwrap("clone_policy") {
        backends.push(("bubblewrap", Backend::Process { python: None }));
    }
    for (which, backend) in &backends {
        for policy in [&off, &allowing_tasks] {
            for (url, class) in &refused_urls {
                let err = init::prepare(backend, None, &Inputs::none(), policy, &task_for(url), worker, &unique("clone-refused"), &small_limits())
                    .await
                    .expect_err("refused");
                let why = err.to_string();
                assert!(matches!(err, SandboxError::NetworkRefused(_)), "{which} {url}: {why}");
                assert!(why.contains(class) && why.contains("git_url"), "{which} {url}: {why}");
                if !url.starts_with("ssh") && url.contains("://") {
                    assert!(why.contains("sandbox_network.allow"), "{which} {url}: {why}");
                }
            }
        }
        assert!(engine.containers_of(worker).await.expect("list").is_empty(), "{which}: no clone container was started");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing connected to the loopback listener");
    assert_eq!(net.daemon_connections(), 0, "nothing connected to the git daemon");

    // The operator lists the test network: the clone goes through, pinned to the address.
    let allowed = SandboxNetworkConfig { clone_network: net.name.clone(), allow: vec![net.subnet()], ..Default::default() }.policy().expect("valid");
    for (which, backend) in &backends {
        let prepared = init::prepare(backend, None, &Inputs::none(), &allowed, &task_for(&format!("git://{daemon}/repo.git")), worker, &unique("clone-allowed"), &small_limits())
            .await
            .unwrap_or_else(|e| panic!("{which}: the allowed clone: {e}"));
        let head = prepared.sandbox.as_sandbox().exec(&ExecRequest::new("git rev-parse HEAD")).await.expect("exec");
        assert_eq!(head.output.trim(), commit, "{which}: {head:?}");
        prepared.sandbox.remove().await;
    }
    assert!(net.daemon_connections() >= 1, "the allowed clone connected to the daemon");
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

/// The clone runs in the worker's clone image (`sandbox_network.clone_image`), never the task's:
/// a task whose image has no `git` at all still gets its repository, cloned over the test
/// network from its daemon; the episode's sandbox is that git-less image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clone_runs_in_the_workers_clone_image_not_the_tasks() {
    let worker = "sandbox-net-clone-image";
    let Some(engine) = docker("clone_image", worker).await else { return };
    let _reaper = Reaper(worker.into());
    // A task image without git: the sandbox image with its git binaries removed (committed from
    // a container; nothing pulled or built from a registry).
    let builder = unique("nogit-builder");
    let image = format!("agentmill-test-nogit:{}", unique("t").to_lowercase());
    docker_cli(&["run", "--name", &builder, SANDBOX_IMAGE, "sh", "-c", "rm -f /usr/bin/git /usr/lib/git-core/git /usr/lib/git-core/git-*"]);
    docker_cli(&["commit", &builder, &image]);
    quiet(&["rm", "-f", &builder]);
    struct RemoveImage(String);
    impl Drop for RemoveImage {
        fn drop(&mut self) {
            quiet(&["rmi", "-f", &self.0]);
        }
    }
    let _image = RemoveImage(image.clone());

    let served = tempfile::tempdir().expect("temp dir");
    let bundled = bundled_task(TASK);
    let commit = repo_from_archive(&bundled, served.path(), "repo.git");
    let mut net = TestNetwork::create("amtest-clone-image");
    let daemon = net.git_daemon(served.path(), "repo.git");
    let mut task = bundled.clone();
    task.source = agentmill_proto::Source::Git { url: format!("git://{daemon}/repo.git") };
    task.base_commit = commit.clone();
    task.image = image.clone();
    let policy = SandboxNetworkConfig { clone_network: net.name.clone(), allow: vec![net.subnet()], clone_image: SANDBOX_IMAGE.into(), ..Default::default() }.policy().expect("valid");
    let prepared = init::prepare(&Backend::Docker(engine.clone()), None, &Inputs::none(), &policy, &task, worker, &unique("clone-image"), &small_limits())
        .await
        .unwrap_or_else(|e| panic!("a task image without git still gets its repository: {e}"));
    let sandbox = prepared.sandbox.as_sandbox();
    let out = sandbox.exec(&ExecRequest::new("command -v git || echo NO-GIT; cat .git/HEAD; ls")).await.expect("exec");
    assert!(out.output.contains("NO-GIT"), "the episode runs the task's git-less image: {out:?}");
    assert!(out.output.contains("ref: refs/heads/") || out.output.contains(&commit), "a git checkout: {out:?}");
    let packed = sandbox.exec(&ExecRequest::new("find .git -type f | wc -l")).await.expect("exec");
    assert!(packed.output.trim().parse::<u32>().unwrap_or(0) > 3, "{packed:?}");
    prepared.sandbox.remove().await;
    assert!(net.daemon_connections() >= 1, "cloned from the test network's daemon");
}

/// A `python3 -m http.server` on the host's loopback serving `dir`; killed (by its id) when dropped.
struct LoopbackHttp(std::process::Child, u16);

impl LoopbackHttp {
    fn serve(dir: &std::path::Path) -> LoopbackHttp {
        let port = TcpListener::bind(("127.0.0.1", 0)).expect("a free port").local_addr().expect("addr").port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let server = LoopbackHttp(child, port);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the loopback HTTP server on port {port} never answered");
    }
}

impl Drop for LoopbackHttp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An http:// source named by a host name is cloned through the address the worker resolved and
/// checked, pinned with `http.curloptResolve` (the process backend, the host's git, a server on
/// the host's loopback that the operator's `allow` lists): the pinned clone works, and without
/// the list the same URL is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_clone_is_pinned_to_the_checked_address() {
    let served = tempfile::tempdir().expect("temp dir");
    let bundled = bundled_task(TASK);
    let commit = repo_from_archive(&bundled, served.path(), "repo.git");
    let gitdir = served.path().join("repo.git/.git");
    let out = Command::new("git").arg("update-server-info").current_dir(&gitdir).envs(GIT_ENV).output().expect("git update-server-info");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let http = LoopbackHttp::serve(&gitdir);
    let mut task = bundled.clone();
    task.source = agentmill_proto::Source::Git { url: format!("http://localhost:{}/", http.1) };
    task.base_commit = commit.clone();
    let backend = Backend::Process { python: None };
    let refused = init::prepare(&backend, None, &Inputs::none(), &NetworkPolicy::default(), &task, "sandbox-net-http-pin", &unique("http-refused"), &small_limits())
        .await
        .expect_err("localhost is loopback");
    assert!(refused.to_string().contains("loopback"), "{refused}");
    let policy = SandboxNetworkConfig { allow: vec!["127.0.0.0/8".into(), "::1".into()], ..Default::default() }.policy().expect("valid");
    let target = policy.check_clone_url(&format!("http://localhost:{}/", http.1)).await.expect("allowed");
    assert!(target.git_config.iter().any(|c| c.starts_with(&format!("http.curloptResolve=localhost:{}:", http.1))), "{target:?}");
    let prepared = init::prepare(&backend, None, &Inputs::none(), &policy, &task, "sandbox-net-http-pin", &unique("http-pinned"), &small_limits())
        .await
        .unwrap_or_else(|e| panic!("the pinned http clone: {e}"));
    let head = prepared.sandbox.as_sandbox().exec(&ExecRequest::new("git rev-parse HEAD")).await.expect("exec");
    assert_eq!(head.output.trim(), commit, "{head:?}");
    prepared.sandbox.remove().await;
}

/// The worker's classification of addresses (Rust, for clones) and the egress proxy's (Python,
/// run in the sandbox image as the proxy runs) agree on a table of addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_and_the_egress_proxy_refuse_the_same_addresses() {
    let Some(_engine) = docker("proxy_agreement", "sandbox-net-agreement").await else { return };
    let table = agentmill_worker::sandbox::network::ADDRESS_TABLE;
    let probe = "import sys\nns = {'__name__': 'agentmill_probe'}\nexec(open('/dev/stdin').read(), ns)\nfor a in sys.argv[1:]:\n    print(a, 'permitted' if ns['permitted'](a) else 'refused')\n";
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "-i", "--network", "none", SANDBOX_IMAGE, "python3", "-c", probe]);
    cmd.args(table.iter().map(|(a, _)| *a));
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("docker run");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), agentmill_worker::sandbox::network::PROXY_SCRIPT.as_bytes()).expect("write the script");
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), table.len(), "{text}");
    for ((addr, denied), line) in table.iter().zip(&lines) {
        let proxy_refuses = line.ends_with(" refused");
        let rust_refuses = agentmill_worker::sandbox::network::denied_class(addr.parse().expect("an address")).is_some();
        assert_eq!((rust_refuses, proxy_refuses), (*denied, *denied), "{addr}: rust {rust_refuses}, proxy {line}");
    }
}

/// What a crashed or cancelled episode leaves — its egress proxy and network — goes with the
/// reaper's passes: the episode's own (`reap_episode`, on a cancelled init) and the worker's
/// (`reap`, at start-up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_episodes_proxy_and_network_are_reaped_with_its_containers() {
    let worker = "sandbox-net-reap";
    let Some(engine) = docker("network_reap", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let policy = SandboxNetworkConfig { mode: "allow".into(), proxy_image: SANDBOX_IMAGE.into(), ..Default::default() }.policy().expect("valid");
    let (first, second) = (unique("reap-a"), unique("reap-b"));
    engine.start_egress(&policy, worker, &first).await.expect("an egress");
    engine.start_egress(&policy, worker, &second).await.expect("another egress");
    assert_eq!(engine.containers_of(worker).await.expect("list").len(), 2, "two proxies");
    assert_eq!(engine.networks_of(worker).await.expect("list").len(), 2, "two networks");

    assert_eq!(engine.reap_episode(worker, &first).await.expect("reap one episode"), 1);
    assert_eq!(engine.containers_of(worker).await.expect("list").len(), 1, "the other episode's proxy stays");
    assert_eq!(engine.networks_of(worker).await.expect("list").len(), 1, "the other episode's network stays");

    engine.reap(worker).await.expect("reap the worker");
    assert!(engine.containers_of(worker).await.expect("list").is_empty());
    assert!(engine.networks_of(worker).await.expect("list").is_empty());
}
