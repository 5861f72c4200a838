//! The coordinator's live view as an operator meets it: a real `agentmill-coordinator` process
//! and a real Redis holding a trajectory stream and a learner's report; the figures arrive in
//! `/api/stats`, `/api/history`, the `ClusterStats` RPC and `/metrics`, and the status page at `/`,
//! rendered by headless Chromium, shows them.
//!
//! Chromium is required (deploy/setup.sh installs it): without it the test fails, it does not skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use agentmill_cli::client::{self, ClientConfig};
use agentmill_proto::stream::{LearnerStatus, publish_learner_status};
use agentmill_proto::v1::{self, worker_message::Msg as In};
use agentmill_tests::{CoordinatorProcess, TestRedis, http_get, unique, workspace};

/// The longest one Chromium run may take.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

const STEP: u64 = 1234;
const LOSS: f64 = 2.6184;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).expect("clock after 1970")
}

/// Chromium on `PATH`, or a failure that says how to install it.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(found) = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()) {
            return found;
        }
    }
    panic!("the status page test renders the page with headless Chromium, and none is on PATH (looked for chromium, chromium-browser, google-chrome); run deploy/setup.sh, which installs it");
}

/// Runs headless Chromium on `url` with `args`; returns what it printed on stdout. Killed (with
/// every process it started) after [`CHROMIUM_TIMEOUT`].
async fn run_chromium(dir: &Path, name: &str, url: &str, args: &[&str]) -> String {
    let (out, err) = (dir.join(format!("{name}.stdout")), dir.join(format!("{name}.stderr")));
    let mut child = tokio::process::Command::new(chromium())
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars"])
        // A profile of its own, so runs never share state or touch the user's.
        .arg(format!("--user-data-dir={}", dir.join(format!("{name}.profile")).display()))
        .args(args)
        .arg(url)
        // Files, not pipes: a big DOM cannot fill a pipe and stall Chromium.
        .stdout(std::fs::File::create(&out).expect("create stdout file"))
        .stderr(std::fs::File::create(&err).expect("create stderr file"))
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}; run deploy/setup.sh", chromium().display()));
    let status = match tokio::time::timeout(CHROMIUM_TIMEOUT, child.wait()).await {
        Ok(status) => status.expect("wait for chromium"),
        Err(_) => {
            // Chromium's renderer and GPU processes share its process group: end them all.
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
            }
            let _ = child.kill().await;
            panic!("chromium {name} did not finish within {CHROMIUM_TIMEOUT:?}; stderr:\n{}", std::fs::read_to_string(&err).unwrap_or_default());
        }
    };
    assert!(status.success(), "chromium {name} failed ({status}); stderr:\n{}", std::fs::read_to_string(&err).unwrap_or_default());
    std::fs::read_to_string(&out).expect("read chromium's output")
}

/// The text inside the element with `id` in serialized HTML (up to its first child tag).
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let attr = format!("id=\"{id}\"");
    let at = dom.find(&attr).unwrap_or_else(|| panic!("the page has no element with {attr}"));
    let rest = &dom[at..];
    let open = rest.find('>').expect("the tag closes") + 1;
    let close = rest[open..].find('<').expect("a closing tag");
    rest[open..open + close].trim()
}

/// The width and height in a PNG's IHDR chunk; panics when the bytes are not a PNG.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "a PNG is longer than {} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "the PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "the first chunk of a PNG is IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// Polls `/api/history` until a sample satisfies `ok`.
async fn wait_for_sample(port: u16, within: Duration, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let body = http_get(port, "/api/history").await;
        let history: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/history is not JSON ({e}): {body}"));
        if let Some(sample) = history["samples"].as_array().and_then(|s| s.iter().rev().find(|s| ok(s))) {
            return sample.clone();
        }
        assert!(Instant::now() < deadline, "no history sample with the stream and learner figures within {within:?}: {history}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_the_clusters_live_figures() {
    let chrome = chromium(); // fail before starting anything when it is missing
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = TestRedis::start();
    let stream = unique("test:traj");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(&config, format!("stream = {stream:?}\nlearner_group = \"learner\"\nhistory_interval = \"200ms\"\n")).expect("write config");
    let coord = CoordinatorProcess::start(&redis.url, &["--config", config.to_str().expect("utf-8 path")]).await;

    // The bundled tasks, submitted as the CLI does; no worker takes them, so all stay queued.
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    let summary = client::submit_file(&mut c, &workspace().join("deploy/tasks/tasks.jsonl"), 100, &Default::default(), |_| {}).await.expect("submit");
    let queued = summary.accepted.len() as u64;
    assert!(queued >= 2, "the bundled corpus has tasks: {summary:?}");

    // A worker that registers and never asks for work: it is listed, it leases nothing.
    let worker_id = unique("w-status");
    let (worker_tx, worker_rx) = tokio::sync::mpsc::unbounded_channel();
    worker_tx
        .send(v1::WorkerMessage {
            msg: Some(In::Register(v1::Register {
                worker_id: worker_id.clone(),
                host: "status-host".into(),
                capacity: Some(v1::Capacity { episodes: 3, ..Default::default() }),
                labels: [("pool".to_string(), "status-test".to_string())].into(),
                ..Default::default()
            })),
        })
        .expect("queue register");
    let _session = c.attach(tokio_stream::wrappers::UnboundedReceiverStream::new(worker_rx)).await.expect("attach").into_inner();

    // Three records in the stream; the learner group has taken and acknowledged two.
    let rc = redis::Client::open(redis.url.as_str()).expect("redis url");
    let mut con = rc.get_multiplexed_async_connection().await.expect("connect to redis");
    for i in 0..3 {
        let _: String = redis::cmd("XADD").arg(&stream).arg("*").arg("data").arg(format!("record-{i}")).query_async(&mut con).await.expect("XADD");
    }
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&stream).arg("learner").arg("0").query_async(&mut con).await.expect("XGROUP CREATE");
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("learner")
        .arg("test-learner")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut con)
        .await
        .expect("XREADGROUP");
    let ids: Vec<String> = read.keys.iter().flat_map(|k| k.ids.iter().map(|e| e.id.clone())).collect();
    assert_eq!(ids.len(), 2);
    let _: u64 = redis::cmd("XACK").arg(&stream).arg("learner").arg(&ids).query_async(&mut con).await.expect("XACK");
    let status = LearnerStatus {
        learner_id: "gpu-host:4242".into(),
        device: "Cuda(0)".into(),
        step: STEP,
        tokens_trained: 5_678_900,
        tokens_per_s: 43_210.5,
        loss: LOSS,
        lr: 3e-4,
        grad_norm: 0.91,
        mfu: 0.374,
        records_by_kind: [("env_pass".to_string(), 2)].into(),
        packing_efficiency: 0.97,
        updated_unix_ms: now_ms(),
        eval_loss: Some(2.75),
    };
    publish_learner_status(&mut con, &stream, &status).await.expect("publish the learner status");

    // The observer samples it.
    let port = coord.metrics_port;
    let sample = wait_for_sample(port, Duration::from_secs(20), |s| s["stream_length"] == 3 && s["learner"]["step"] == STEP).await;
    assert_eq!(sample["stream_lag"], 1, "{sample}");
    assert_eq!(sample["tasks_by_state"]["queued"], queued, "{sample}");
    assert_eq!(sample["workers_connected"], 1, "{sample}");
    assert_eq!(sample["learner"]["loss"], LOSS, "{sample}");
    let history: serde_json::Value = serde_json::from_str(&http_get(port, "/api/history").await).expect("history JSON");
    assert_eq!(history["interval_ms"], 200);

    // (a) /api/stats: ClusterStats as proto3 JSON (64-bit integers as strings).
    let body = http_get(port, "/api/stats").await;
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/stats is not JSON ({e}): {body}"));
    assert_eq!(stats["streamLength"], "3", "{stats}");
    assert_eq!(stats["streamLag"], "1", "{stats}");
    assert_eq!(stats["learner"]["step"], STEP.to_string(), "{stats}");
    assert_eq!(stats["learner"]["loss"], LOSS, "{stats}");
    assert_eq!(stats["learner"]["device"], "Cuda(0)", "{stats}");
    assert_eq!(stats["tasksByState"]["queued"], queued.to_string(), "{stats}");
    assert_eq!(stats["workers"][0]["workerId"], worker_id.as_str(), "{stats}");
    // The RPC serves the same merged figures.
    let rpc = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("ClusterStats").into_inner();
    assert_eq!((rpc.stream_length, rpc.stream_lag), (3, 1));
    assert_eq!(rpc.learner.map(|l| (l.step, l.learner_id)), Some((STEP, "gpu-host:4242".to_string())));
    // And Prometheus.
    let metrics = http_get(port, "/metrics").await;
    for line in ["agentmill_coordinator_stream_length 3", "agentmill_coordinator_stream_lag 1", "agentmill_coordinator_learner_loss 2.6184", "agentmill_coordinator_learner_tokens_per_second 43210.5"] {
        assert!(metrics.contains(line), "/metrics lacks {line:?}:\n{metrics}");
    }

    // (b) The page, rendered, shows the live numbers in its elements.
    let url = format!("http://127.0.0.1:{port}/");
    let dom = run_chromium(dir.path(), "dom", &url, &["--virtual-time-budget=8000", "--dump-dom"]).await;
    let plain = |id: &str| text_of(&dom, id).replace(',', "");
    assert_eq!(plain("tasks-queued"), queued.to_string(), "queued tasks on the page");
    assert_eq!(plain("tasks-done"), "0");
    assert_eq!(plain("learner-step"), STEP.to_string(), "learner step on the page");
    let loss: f64 = text_of(&dom, "learner-loss").parse().unwrap_or_else(|e| panic!("learner-loss {:?}: {e}", text_of(&dom, "learner-loss")));
    assert!((loss - LOSS).abs() < 1e-3, "loss on the page: {loss}");
    assert_eq!(plain("workers-count"), "1");
    assert_eq!(plain("stream-length"), "3");
    assert_eq!(plain("stream-lag"), "1");
    assert_eq!(text_of(&dom, "learner-device"), "Cuda(0)");
    assert_eq!(text_of(&dom, "learner-mfu"), "37.4%");
    let note = text_of(&dom, "learner-note");
    assert!(note.contains("held-out loss 2.750"), "the learner's note shows the held-out loss: {note}");
    assert!(dom.contains(&worker_id) && dom.contains("pool=status-test"), "the workers table lists the worker");
    let loss_chart = dom.split("id=\"chart-loss\"").nth(1).and_then(|s| s.split("</svg>").next()).expect("the loss chart");
    assert!(loss_chart.contains("<path"), "the loss chart draws a line: {loss_chart}");

    // (c) A screenshot of the page is a real, non-blank PNG of the window's size.
    let png = dir.path().join("status.png");
    run_chromium(dir.path(), "shot", &url, &["--virtual-time-budget=8000", "--window-size=1280,900", &format!("--screenshot={}", png.display())]).await;
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{} did not write {}: {e}", chrome.display(), png.display()));
    assert_eq!(png_size(&bytes), (1280, 900));
    assert!(bytes.len() > 20 * 1024, "the screenshot is {} bytes: a blank page?", bytes.len());
}
