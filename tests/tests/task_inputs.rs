//! A task cannot make a worker read its own disk: what a client's task runs on travels with it
//! as content (`PutContent`, stored under its hash), a path the task names is opened only under
//! the roots the worker's configuration allows, and every read and decompression has a cap.
//! Real coordinator and worker processes, real Redis and Docker.

use std::time::{Duration, Instant};

use agentmill_cli::client::{self, Client, ClientConfig};
use agentmill_cli::upload::put_content;
use agentmill_proto::v1;
use agentmill_tests::{CoordinatorProcess, TestRedis, WorkerProcess, bundled_tasks, docker_or_skip, unique, workspace};
use serde_json::json;

async fn submit(c: &mut Client, rows: Vec<serde_json::Value>) -> v1::SubmitTasksResponse {
    let tasks = rows.iter().map(|r| v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(r.to_string())) }).collect();
    match c.submit_tasks(v1::SubmitTasksRequest { tasks, base_dir: String::new() }).await {
        Ok(r) => r.into_inner(),
        Err(s) => prost::Message::decode(s.details()).expect("refused rows in the details"),
    }
}

/// Waits until `id` has failed and answers its rollout's last error.
async fn failure_of(c: &mut Client, id: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let t = c.get_task(v1::GetTaskRequest { task_id: id.into() }).await.expect("get").into_inner();
        if t.state == v1::TaskState::Failed as i32 {
            let r = &t.rollouts[0];
            return format!("{} {}", r.last_error, r.result.as_ref().map(|x| x.error.clone()).unwrap_or_default());
        }
        assert!(Instant::now() < deadline, "{id} did not fail within {within:?}: {t:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut e, data).expect("gzip");
    e.finish().expect("gzip")
}

/// A tar of one file of `size` zeros, gzip-compressed: a few hundred KiB that unpack to `size`.
fn bomb(size: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "zeros", std::io::repeat(0).take_bytes(size)).expect("append");
    gzip(&b.into_inner().expect("tar"))
}

trait TakeBytes: std::io::Read + Sized {
    fn take_bytes(self, n: usize) -> std::io::Take<Self> {
        std::io::Read::take(self, n as u64)
    }
}
impl<R: std::io::Read> TakeBytes for R {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_is_stored_once_by_hash_and_tasks_may_name_only_what_is_stored() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(&config, "max_content_bytes = 1048576\n").expect("config");
    let coord = CoordinatorProcess::start(&redis.url, &["--config", config.to_str().expect("utf-8")]).await;
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");

    // Stored under its SHA-256; the same bytes again are the same content; read back whole.
    let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let r = put_content(&mut c, data.clone()).await.expect("put");
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(r, format!("content:{sha}"));
    assert_eq!(put_content(&mut c, data.clone()).await.expect("put again"), r);
    let mut stream = c.get_content(v1::GetContentRequest { sha256: sha.clone() }).await.expect("get").into_inner();
    let mut back = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        back.extend(chunk.data);
    }
    assert_eq!(back, data);

    // Past max_content_bytes: refused, nothing stored.
    let err = put_content(&mut c, vec![7u8; 2 << 20]).await.expect_err("too large");
    assert!(err.to_string().contains("resource has been exhausted") && err.to_string().contains("max_content_bytes"), "{err}");
    let err = c.get_content(v1::GetContentRequest { sha256: "0".repeat(64) }).await.expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);

    // A task may name stored content; unknown content, and relative paths (which mean nothing on
    // a worker), are refused naming the field; the good row beside them is accepted.
    let row = |id: &str, archive: &str| json!({"instance_id": id, "FAIL_TO_PASS": ["t.py::a"], "source": "archive", "archive": archive});
    let resp = submit(&mut c, vec![row("ok-1", &r), row("unknown-1", &format!("content:{}", "a".repeat(64))), row("relative-1", "archives/x.tar.gz")]).await;
    assert_eq!(resp.accepted, ["ok-1"]);
    let reasons: Vec<(String, String, String)> = resp.rejected.iter().map(|e| (e.task_id.clone(), e.field.clone(), e.reason.clone())).collect();
    assert!(reasons.iter().any(|(id, f, why)| id == "unknown-1" && f == "archive" && why.contains("does not store; upload it first")), "{reasons:?}");
    assert!(reasons.iter().any(|(id, f, why)| id == "relative-1" && f == "archive" && why.contains("relative path")), "{reasons:?}");
}

/// `"archive": "/dev/zero"` made a worker read forever and be OOM-killed (then the next worker's,
/// up to max_attempts hosts); a path outside the worker's roots is now refused at once, naming
/// the setting, and the error carries no file's hash. A gzip bomb stops at the unpack cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_cannot_make_a_worker_read_its_disk_or_unpack_a_bomb() {
    let Some(_engine) = docker_or_skip("a_task_cannot_make_a_worker_read_its_disk_or_unpack_a_bomb").await else { return };
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let coord_config = dir.path().join("coordinator.toml");
    std::fs::write(&coord_config, "max_attempts = 1\n").expect("config");
    let coord = CoordinatorProcess::start(&redis.url, &["--config", coord_config.to_str().expect("utf-8")]).await;
    let worker_config = dir.path().join("worker.toml");
    std::fs::write(&worker_config, "[inputs]\nmax_unpacked_bytes = \"16m\"\n").expect("config");
    let _worker = WorkerProcess::start_with_config(&coord, &redis.url, &unique("test:traj"), &unique("w-inputs"), 2, Some(&worker_config));
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");

    let base = serde_json::to_value(bundled_tasks().into_iter().find(|t| t.instance_id == "agentmill__calc-1").expect("task")).expect("row");
    let with = |id: &str, archive: &str, sha: Option<&str>| {
        let mut r = base.clone();
        r["instance_id"] = id.into();
        r["policy"] = "replay".into();
        r["source"] = json!({"type": "archive", "path": archive, "sha256": sha});
        r
    };
    let real_archive = workspace().join("deploy/tasks/archives/agentmill__calc-1.tar.gz");
    let bomb_ref = put_content(&mut c, bomb(64 << 20)).await.expect("put the bomb");
    let resp = submit(
        &mut c,
        vec![
            with("zero-1", "/dev/zero", None),
            with("host-file-1", real_archive.to_str().expect("utf-8"), Some(&"0".repeat(64))),
            with("bomb-1", &bomb_ref, None),
        ],
    )
    .await;
    assert_eq!(resp.accepted.len(), 3, "{:?}", resp.rejected);

    let started = Instant::now();
    let zero = failure_of(&mut c, "zero-1", Duration::from_secs(60)).await;
    assert!(zero.contains("outside the folders its configuration allows (inputs.host_roots)"), "{zero}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let host = failure_of(&mut c, "host-file-1", Duration::from_secs(60)).await;
    assert!(host.contains("host_roots"), "{host}");
    let real_sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(&real_archive).expect("read")).iter().map(|b| format!("{b:02x}")).collect()
    };
    assert!(!host.contains(&real_sha), "the error does not hand back the file's hash: {host}");
    let bomb = failure_of(&mut c, "bomb-1", Duration::from_secs(60)).await;
    assert!(bomb.contains("max_unpacked_bytes"), "{bomb}");

    // A synthesis job's rows, issues and repository are inputs too: any file or git repository
    // on the host would otherwise become training data.
    let synth = |id: &str, spec: serde_json::Value| json!({"instance_id": id, "kind": "synth", "repo": "x", "synth": spec});
    let resp = submit(
        &mut c,
        vec![
            synth("synth-rows-1", json!({"type": "rows", "path": "/etc/passwd"})),
            synth("synth-git-1", json!({"type": "git", "repo_path": workspace().to_string_lossy()})),
        ],
    )
    .await;
    assert_eq!(resp.accepted.len(), 2, "{:?}", resp.rejected);
    for id in ["synth-rows-1", "synth-git-1"] {
        let why = failure_of(&mut c, id, Duration::from_secs(60)).await;
        assert!(why.contains("host_roots"), "{id}: {why}");
    }
}
