//! A network partition between hosts of the project's own making: Redis, the coordinator, two
//! workers and the learner each run in a network namespace of their own, joined by a bridge in
//! a switch namespace the test creates (the test process reaches them through its own veth).
//! One worker is cut off from the coordinator — not from Redis — while it runs episodes, then
//! healed. Its leases expire, other attempts run on the second worker, and the first worker
//! still publishes its own attempts' records to the stream. Afterwards every rollout is done
//! once, and the learner trained exactly the attempt the coordinator accepted for each rollout:
//! the cut-off worker's records are acknowledged as superseded, never trained.
//!
//! Needs root (network namespaces) and Docker; fails loudly without them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentmill_cli::client::{self, ClientConfig};
use agentmill_cli::report::{self, RowOverrides};
use agentmill_proto::{TrajectoryRecord, v1};
use agentmill_tests::{binary, docker_or_skip, stream_records, unique, workspace};

/// Runs `ip` with `args`; panics with its stderr when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip (iproute2)");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// A switch namespace with a bridge, hosts (namespaces) plugged into it, and a veth from the
/// test's own namespace; everything is removed on drop.
struct Lab {
    tag: String,
    subnet: String,
    hosts: Vec<String>,
}

impl Lab {
    fn new() -> Lab {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
        // A /24 in 10.200.0.0/13 that no route of this machine names.
        let routes = String::from_utf8_lossy(&Command::new("ip").args(["-4", "route", "show"]).output().expect("ip route").stdout).to_string();
        let subnet = (0..64)
            .map(|_| format!("10.{}.{}", 200 + rand::random::<u8>() % 8, rand::random::<u8>()))
            .find(|s| !routes.contains(&format!("{s}.")))
            .expect("a free /24");
        let lab = Lab { tag, subnet, hosts: Vec::new() };
        let sw = lab.switch();
        ip(&["netns", "add", &sw]);
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        // The test's own end: amr<tag> here, up0 on the bridge.
        let root = format!("amr{}", lab.tag);
        ip(&["link", "add", &root, "type", "veth", "peer", "name", "up0", "netns", &sw]);
        ip(&["-n", &sw, "link", "set", "up0", "master", "br0", "up"]);
        ip(&["addr", "add", &format!("{}.1/24", lab.subnet), "dev", &root]);
        ip(&["link", "set", &root, "up"]);
        lab
    }

    fn switch(&self) -> String {
        format!("amsw{}", self.tag)
    }

    /// A new host on the bridge; returns its namespace and address.
    fn host(&mut self, name: &str) -> (String, String) {
        let n = self.hosts.len() + 2;
        let ns = format!("am{}{name}", self.tag);
        let addr = format!("{}.{n}", self.subnet);
        let port = format!("p{n}");
        ip(&["netns", "add", &ns]);
        ip(&["-n", &self.switch(), "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        ip(&["-n", &self.switch(), "link", "set", &port, "master", "br0", "up"]);
        ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        self.hosts.push(ns.clone());
        (ns, addr)
    }

    /// Drops every packet between two hosts (both directions), or lets them through again.
    fn cut(&self, a: (&str, &str), b: (&str, &str), cut: bool) {
        let verb = if cut { "add" } else { "del" };
        ip(&["-n", a.0, "route", verb, "blackhole", &format!("{}/32", b.1)]);
        ip(&["-n", b.0, "route", verb, "blackhole", &format!("{}/32", a.1)]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain(std::iter::once(&self.switch())) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &format!("amr{}", self.tag)]).status();
    }
}

/// A process started in a namespace, killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_ns(ns: &str, program: &Path) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

async fn wait_tcp(addr: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rollouts by (task id, rollout), as the coordinator reports them.
async fn rollouts(c: &mut client::Client) -> BTreeMap<(String, u32), v1::RolloutStatus> {
    let tasks = c.list_tasks(v1::ListTasksRequest::default()).await.expect("list").into_inner().tasks;
    let mut out = BTreeMap::new();
    for t in tasks {
        let id = t.task.as_ref().map(|s| s.instance_id.clone()).unwrap_or_default();
        for r in t.rollouts {
            out.insert((id.clone(), r.rollout), r);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_from_the_coordinator_has_its_attempts_superseded_and_nothing_trains_twice() {
    if docker_or_skip("a_worker_cut_off_from_the_coordinator_has_its_attempts_superseded_and_nothing_trains_twice").await.is_none() {
        return;
    }
    // Network namespaces need root.
    let who = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(String::from_utf8_lossy(&who.stdout).trim(), "0", "this test creates network namespaces and needs root");

    let mut lab = Lab::new();
    let redis_host = lab.host("r");
    let coord_host = lab.host("c");
    let w1_host = lab.host("w1");
    let w2_host = lab.host("w2");
    let learner_host = lab.host("l");

    // Redis, on its own host.
    let redis_dir = tempfile::tempdir().expect("tmp");
    let _redis = Proc(
        in_ns(&redis_host.0, Path::new("redis-server"))
            .args(["--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(redis_dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server"),
    );
    let redis_url = format!("redis://{}:6379/", redis_host.1);
    wait_tcp(&format!("{}:6379", redis_host.1), "redis").await;

    // The coordinator: short leases, so the cut is noticed in seconds.
    let namespace = unique("partition");
    let _coord = Proc(
        in_ns(&coord_host.0, &binary("agentmill-coordinator"))
            .args(["--listen", "0.0.0.0:50051", "--metrics-listen", "127.0.0.1:9464", "--redis-url", &redis_url, "--namespace", &namespace])
            .args(["--lease-ttl", "3s", "--heartbeat-interval", "1s", "--max-attempts", "5"])
            .env("RUST_LOG", std::env::var("AGENTMILL_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .spawn()
            .expect("start agentmill-coordinator"),
    );
    let coord_addr = format!("http://{}:50051", coord_host.1);
    wait_tcp(&format!("{}:50051", coord_host.1), "the coordinator").await;

    let stream = unique("test:partition");
    let worker = |host: &(String, String), id: &str| {
        Proc(
            in_ns(&host.0, &binary("agentmill-worker"))
                .args(["--coordinator", &coord_addr, "--redis-url", &redis_url, "--stream", &stream, "--worker-id", id, "--episodes", "2"])
                .env("AGENTMILL_METRICS_LISTEN", "127.0.0.1:9465")
                .env("RUST_LOG", std::env::var("AGENTMILL_TEST_LOG").unwrap_or_else(|_| "warn".into()))
                .stdout(Stdio::null())
                .spawn()
                .expect("start agentmill-worker"),
        )
    };
    let _w1 = worker(&w1_host, "w1");

    // The bundled tasks, uploaded with their archives, one rollout each, gold replay. Only w1 is
    // up, so it takes the first leases.
    let mut c = client::connect(&ClientConfig { addr: Some(coord_addr.clone()), ..Default::default() }).await.expect("client");
    let dir = workspace().join("deploy/tasks");
    let rows: Vec<String> = std::fs::read_to_string(dir.join("tasks.jsonl")).expect("tasks.jsonl").lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    let uploaded = agentmill_tests::with_content(&mut c, &dir, rows.clone()).await;
    let o = RowOverrides { rollouts: Some(1), policy: Some("replay".into()), ..Default::default() };
    let inputs = uploaded.iter().map(|row| v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(o.apply(row))) }).collect();
    let resp = c.submit_tasks(v1::SubmitTasksRequest { tasks: inputs, base_dir: String::new() }).await.expect("submit").into_inner();
    assert!(resp.rejected.is_empty(), "{:?}", resp.rejected);

    // Cut w1 from the coordinator as soon as two of its episodes are past init (their content
    // fetched: the grading step reuses it from the worker's cache).
    let deadline = Instant::now() + Duration::from_secs(120);
    let held: BTreeSet<(String, u32)> = loop {
        let running: BTreeSet<_> = rollouts(&mut c)
            .await
            .into_iter()
            .filter(|(_, r)| r.worker_id == "w1" && r.state == v1::TaskState::Running as i32 && r.stage == v1::Stage::Run as i32)
            .map(|(k, _)| k)
            .collect();
        if running.len() >= 2 {
            break running;
        }
        assert!(Instant::now() < deadline, "w1 did not start two episodes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    lab.cut((&w1_host.0, &w1_host.1), (&coord_host.0, &coord_host.1), true);
    let _w2 = worker(&w2_host, "w2");

    // While w1 is cut off, its leases expire and the rollouts it held are run again by w2; w1
    // finishes its own attempts and publishes them (it still reaches Redis).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let now = rollouts(&mut c).await;
        let redone = held.iter().all(|k| now.get(k).is_some_and(|r| r.state == v1::TaskState::Done as i32 && r.worker_id == "w2" && r.attempt >= 2));
        let published_by_w1 = stream_records(&redis_url, &stream).await.iter().filter(|r| r.worker == "w1" && held.contains(&(r.task_id.clone(), r.rollout))).count();
        if redone && published_by_w1 >= held.len() {
            break;
        }
        assert!(Instant::now() < deadline, "held {held:?}; now {now:?}; w1 published {published_by_w1}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lab.cut((&w1_host.0, &w1_host.1), (&coord_host.0, &coord_host.1), false);

    // Healed: everything finishes, each rollout once.
    let tasks = report::wait_finished(&mut c, &BTreeMap::new(), Duration::from_millis(250), Duration::from_secs(600), |_, _| {}).await.expect("every task finishes");
    assert_eq!(tasks.len(), rows.len());
    let mut accepted: BTreeMap<(String, u32), u32> = BTreeMap::new();
    for t in &tasks {
        let id = t.task.as_ref().map(|s| s.instance_id.clone()).unwrap_or_default();
        assert_eq!(t.state, v1::TaskState::Done as i32, "{id}: {t:?}");
        for r in &t.rollouts {
            assert!(r.result.is_some(), "{id}/{}: {r:?}", r.rollout);
            accepted.insert((id.clone(), r.rollout), r.attempt);
        }
    }
    let records: Vec<TrajectoryRecord> = stream_records(&redis_url, &stream).await;
    let superseded: Vec<&TrajectoryRecord> = records.iter().filter(|r| accepted.get(&(r.task_id.clone(), r.rollout)) != Some(&r.attempt)).collect();
    assert!(superseded.len() >= held.len(), "the cut-off worker's attempts reached the stream: {} of {}", superseded.len(), held.len());
    assert!(superseded.iter().all(|r| r.worker == "w1" && r.attempt == 1), "only w1's first attempts are superseded");

    // The learner, on a host of its own, trains what is in the stream and stops when idle.
    let out = tempfile::tempdir().expect("tmp");
    let learner = in_ns(&learner_host.0, &binary("agentmill-learner"))
        .arg("train")
        .args(["--redis-url", &redis_url, "--stream", &stream, "--group", "learner", "--consumer", "partition"])
        .arg("--output-dir")
        .arg(out.path())
        .args(["--device", "cpu", "--threads", "1", "--seq-len", "128", "--micro-batch-rows", "2", "--grad-accum", "2"])
        .args(["--checkpoint-every", "3", "--tokenizer-vocab", "400", "--until-idle", "3"])
        .env("AGENTMILL_LEARNER_TOKENIZER_BOOTSTRAP_RECORDS", "4")
        .env("AGENTMILL_LEARNER_COORDINATOR_NAMESPACE", &namespace)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run agentmill-learner");
    assert!(learner.status.success(), "learner: {}", String::from_utf8_lossy(&learner.stderr));

    // Exactly the accepted attempts trained, each once; every superseded record settled as such.
    let ledger = std::fs::read_to_string(out.path().join("trained_records.jsonl")).expect("the learner's ledger");
    let mut trained: BTreeMap<String, usize> = BTreeMap::new();
    let mut settled_superseded: BTreeSet<String> = BTreeSet::new();
    for line in ledger.lines() {
        let l: serde_json::Value = serde_json::from_str(line).expect("a ledger line");
        let id = l["record_id"].as_str().unwrap_or_default().to_string();
        match l["outcome"].as_str() {
            Some("trained") => *trained.entry(id).or_default() += 1,
            Some("superseded") => {
                settled_superseded.insert(id);
            }
            _ => {}
        }
    }
    let want_trained: BTreeSet<String> = records
        .iter()
        .filter(|r| accepted.get(&(r.task_id.clone(), r.rollout)) == Some(&r.attempt) && r.is_trainable())
        .map(|r| r.record_id.clone())
        .collect();
    assert!(trained.values().all(|n| *n == 1), "trained more than once: {trained:?}");
    assert_eq!(trained.keys().cloned().collect::<BTreeSet<_>>(), want_trained, "the learner trains the accepted attempts and nothing else");
    let want_superseded: BTreeSet<String> = superseded.iter().map(|r| r.record_id.clone()).collect();
    assert_eq!(settled_superseded, want_superseded, "ledger:\n{ledger}\nsummary: {}", std::fs::read_to_string(out.path().join("summary.json")).unwrap_or_default());
    eprintln!("partition: {} rollouts, {} cut off mid-episode, {} superseded records not trained", accepted.len(), held.len(), want_superseded.len());
}
