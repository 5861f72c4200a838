//! A synthesis job submitted through the coordinator (`agentmill synth`) is run by a worker
//! process and lands `ctx` records in Redis; `agentmill-worker synth` runs the same offline.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentmill_cli::client::{self, ClientConfig};
use agentmill_proto::{RecordKind, TrajectoryRecord, v1};
use agentmill_tests::{CoordinatorProcess, TestRedis, binary, docker_or_skip, stream_records, unique};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A repository with two merged pull requests that each change a Python file.
fn repo_with_two_prs(dir: &Path) {
    std::fs::create_dir_all(dir.join("pkg")).expect("mkdir");
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("pkg/util.py"), "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n").expect("write");
    std::fs::write(dir.join("pkg/io.py"), "def read(path):\n    return open(path).read()\n").expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "initial"]);
    for (n, (branch, file, from, to, title)) in [
        ("fix-add", "pkg/util.py", "return a - b", "return a + b", "Fix add"),
        ("close-files", "pkg/io.py", "return open(path).read()", "with open(path) as f:\n        return f.read()", "Close files after reading"),
    ]
    .into_iter()
    .enumerate()
    {
        git(dir, &["checkout", "-q", "-b", branch]);
        let text = std::fs::read_to_string(dir.join(file)).expect("read").replace(from, to);
        std::fs::write(dir.join(file), text).expect("write");
        git(dir, &["commit", "-q", "-am", title]);
        git(dir, &["checkout", "-q", "main"]);
        let msg = format!("Merge pull request #{} from dev/{branch}\n\n{title}", n + 1);
        git(dir, &["merge", "-q", "--no-ff", branch, "-m", &msg]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthesis_job_through_the_coordinator_lands_ctx_records() {
    // The worker process needs a Docker engine to start (its episodes run there).
    let Some(_engine) = docker_or_skip("a_synthesis_job_through_the_coordinator_lands_ctx_records").await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("calcrepo");
    repo_with_two_prs(&repo);

    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let stream = unique("test:traj");
    let mut worker = Command::new(binary("agentmill-worker"))
        .args(["--coordinator", &coord.addr, "--redis-url", &redis.url, "--stream", &stream, "--worker-id", &unique("w-synth")])
        .env("RUST_LOG", "warn")
        .env("AGENTMILL_METRICS_LISTEN", format!("127.0.0.1:{}", agentmill_tests::free_port()))
        .stdout(Stdio::null())
        .spawn()
        .expect("start worker");

    let out = Command::new(binary("agentmill"))
        .args(["--addr", &coord.addr, "synth", "--git"])
        .arg(&repo)
        .args(["--repo", "dev/calc"])
        .output()
        .expect("agentmill synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "synthesis job: 1 shard(s) accepted, 0 already known\n  synth-dev_calc\n");

    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let t = c.get_task(v1::GetTaskRequest { task_id: "synth-dev_calc".into() }).await.expect("get").into_inner();
        if t.state == v1::TaskState::Done as i32 || t.state == v1::TaskState::Failed as i32 {
            break t;
        }
        assert!(Instant::now() < deadline, "the synthesis job did not finish: {t:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let result = status.rollouts[0].result.clone().expect("a result");
    assert_eq!(result.exit_reason, v1::ExitReason::Submitted as i32, "{status:?}");
    assert_eq!(result.records_published, 2);

    let records = stream_records(&redis.url, &stream).await;
    assert_eq!(records.len(), 2);
    let mut titles = Vec::new();
    for r in &records {
        assert_eq!(r.kind, RecordKind::Ctx);
        assert_eq!(r.task_id, "synth-dev_calc");
        let ctx = r.ctx.as_ref().expect("ctx payload");
        assert!(ctx.text.starts_with("# Repository Context"), "{}", ctx.text);
        assert!(ctx.text.contains("# Edits"), "{}", ctx.text);
        titles.push(ctx.title.clone());
    }
    titles.sort();
    assert_eq!(titles, ["Close files after reading", "Fix add"]);
    let _ = worker.kill();
    let _ = worker.wait();

    // The same job offline (`agentmill synth --offline` runs it here) writes the same PRs as JSONL.
    let out = Command::new(binary("agentmill")).args(["synth", "--offline", "--git"]).arg(&repo).args(["--repo", "dev/calc"]).output().expect("offline synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let offline: Vec<TrajectoryRecord> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a record per line")).collect();
    assert_eq!(offline.len(), 2);
    let mut ids: Vec<&str> = offline.iter().map(|r| r.record_id.as_str()).collect();
    let mut online: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
    ids.sort();
    online.sort();
    assert_eq!(ids, online, "the same PRs, the same record ids");
}
