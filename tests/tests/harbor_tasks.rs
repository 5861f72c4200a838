//! Harbor tasks through the cluster: `agentmill submit --harbor` packs each task directory and
//! uploads it as content with its row; a real `agentmill-worker` process (Docker) fetches it,
//! builds the environment from its Dockerfile, runs the oracle (`--policy replay`) and grades by
//! the verifier's reward. Real coordinator, worker, Redis and Docker.

use std::time::Duration;

use agentmill_cli::client::{self, ClientConfig};
use agentmill_proto::{ExitReason, Resolution};
use agentmill_tests::{CoordinatorProcess, TestRedis, WorkerProcess, agentmill, docker_or_skip, stream_records, unique, wait_all_done, workspace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_harbor_directories_run_on_a_worker_and_grade_by_reward() {
    let Some(_engine) = docker_or_skip("submitted_harbor_directories_run_on_a_worker_and_grade_by_reward").await else { return };
    let redis = TestRedis::start();
    let stream = unique("test:traj");
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let _worker = WorkerProcess::start(&coord, &redis.url, &stream, &unique("w-harbor"), 2);
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    let fixtures = workspace().join("tests/fixtures/harbor");

    // A directory with a link out of it is refused on the client, naming the link.
    let dir = tempfile::tempdir().expect("tempdir");
    let leaky = dir.path().join("leaky");
    std::fs::create_dir_all(leaky.join("environment")).expect("mkdir");
    for f in ["task.toml", "instruction.md"] {
        std::fs::copy(fixtures.join("pass-oracle").join(f), leaky.join(f)).expect("copy");
    }
    for d in ["tests", "solution"] {
        std::fs::create_dir_all(leaky.join(d)).expect("mkdir");
    }
    std::fs::copy(fixtures.join("pass-oracle/tests/test.sh"), leaky.join("tests/test.sh")).expect("copy");
    std::fs::write(leaky.join("environment/Dockerfile"), "FROM agentmill/sandbox-python:bookworm\n").expect("write");
    std::os::unix::fs::symlink("/etc/hostname", leaky.join("environment/hostname")).expect("link");
    let out = agentmill(&coord.addr, &["submit", "--harbor", leaky.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("environment/hostname") && text.contains("outside the task directory"), "{text}");

    let pass = fixtures.join("pass-oracle");
    let fail = fixtures.join("fail-oracle");
    let out = agentmill(&coord.addr, &["submit", "--policy", "replay", "--harbor", pass.to_str().expect("utf-8"), "--harbor", fail.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 accepted"), "{}", String::from_utf8_lossy(&out.stdout));
    wait_all_done(&mut c, 2, Duration::from_secs(300)).await;

    let records = stream_records(&redis.url, &stream).await;
    let of = |id: &str| records.iter().find(|r| r.task_id == id).unwrap_or_else(|| panic!("no record of {id}: {records:?}"));
    let p = of("agentmill/pass-oracle");
    let g = p.grading.as_ref().expect("graded");
    assert_eq!((p.exit_reason, g.resolution, p.reward), (Some(ExitReason::Submitted), Resolution::Full, Some(1.0)), "{:?}", p.error);
    assert_eq!(g.rewards.get("reward"), Some(&1.0));
    let f = of("agentmill/fail-oracle");
    let g = f.grading.as_ref().expect("graded");
    assert_eq!((g.resolution, f.reward), (Resolution::No, Some(0.0)), "{:?}", f.error);
    assert_eq!(g.rewards.get("reward"), Some(&0.0));
    assert!(p.provenance.image.starts_with("agentmill-env/"), "{}", p.provenance.image);
    for tag in [&p.provenance.image, &f.provenance.image] {
        let _ = std::process::Command::new("docker").args(["rmi", "-f", tag]).output();
    }
}

/// `agentmill-worker run --harbor DIR --validate` proves a task dataset by its oracles: exit 0
/// when every oracle resolves its task, 1 when one does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_validate_run_proves_harbor_tasks_by_their_oracles() {
    let Some(_engine) = docker_or_skip("a_local_validate_run_proves_harbor_tasks_by_their_oracles").await else { return };
    let fixtures = workspace().join("tests/fixtures/harbor");
    let run = |dirs: &[&str]| {
        let mut cmd = std::process::Command::new(agentmill_tests::binary("agentmill-worker"));
        cmd.args(["run", "--validate"]).env("RUST_LOG", "warn");
        for d in dirs {
            cmd.arg("--harbor").arg(fixtures.join(d));
        }
        let out = cmd.output().expect("run agentmill-worker");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, err, records) = run(&["pass-oracle"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("agentmill/pass-oracle r0: FULL"), "{err}");
    let record: agentmill_proto::TrajectoryRecord = serde_json::from_str(records.lines().next().expect("a record")).expect("record");
    assert_eq!(record.grading.as_ref().and_then(|g| g.rewards.get("reward")), Some(&1.0));
    let (code, err, _) = run(&["pass-oracle", "fail-oracle"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("agentmill/fail-oracle r0: NO"), "{err}");
}
