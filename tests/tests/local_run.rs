//! `agentmill-worker run FILE`: a task file's episodes on this host, with no coordinator and
//! no Redis, in real Docker containers. With `--policy replay --validate` it is the check a
//! dataset's environments pass before a cluster runs them: every gold patch must resolve.
//!
//! Real Docker: this fails loudly where no engine answers (see `docker_or_skip`).

use std::path::Path;
use std::process::{Command, Output};

use agentmill_proto::{ExitReason, Resolution, Role, TrajectoryRecord};
use agentmill_tests::{binary, docker_or_skip, unique, workspace};

/// The bundled task `id`'s row with its archive path made absolute (so the row works from any
/// folder) and, when given, another patch in place of the gold one.
fn row(id: &str, patch: Option<&str>) -> String {
    let file = workspace().join("deploy/tasks/tasks.jsonl");
    let text = std::fs::read_to_string(&file).expect("read the bundled tasks");
    let mut row: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON row"))
        .find(|r| r["instance_id"] == id)
        .unwrap_or_else(|| panic!("{id} is not a bundled task"));
    let archive = workspace().join("deploy/tasks").join(row["archive"].as_str().expect("an archive path"));
    row["archive"] = archive.to_string_lossy().into_owned().into();
    if let Some(p) = patch {
        row["patch"] = p.into();
    }
    row.to_string()
}

/// `agentmill-worker run FILE` as `worker_id`, two episodes at once, plus `extra`.
fn run_cmd(worker_id: &str, file: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(binary("agentmill-worker"));
    // The rows name the bundled archives in the workspace, outside the task file's folder.
    cmd.args(["--worker-id", worker_id, "--episodes", "2", "run"]).arg(file).arg("--host-root").arg(workspace().join("deploy/tasks")).args(extra).env("RUST_LOG", "warn");
    cmd
}

fn run(worker_id: &str, dir: &Path, tasks: &[String], extra: &[&str]) -> Output {
    let file = dir.join("tasks.jsonl");
    std::fs::write(&file, tasks.join("\n") + "\n").expect("write the task file");
    run_cmd(worker_id, &file, extra).output().expect("run agentmill-worker")
}

fn records(path: &Path) -> Vec<TrajectoryRecord> {
    let text = std::fs::read_to_string(path).expect("the records file");
    text.lines().map(|l| serde_json::from_str(l).expect("a record")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_validates_gold_patches_and_names_the_task_whose_patch_does_not_resolve() {
    let Some(engine) = docker_or_skip("run_validates_gold_patches_and_names_the_task_whose_patch_does_not_resolve").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let worker_id = unique("w-local");
    let out = dir.path().join("records.jsonl");
    let out_arg = out.to_string_lossy().into_owned();

    // Two gold patches, and a tempting wrong fix that breaks a PASS_TO_PASS test in place of a
    // third task's gold patch: the replay drives it like any patch, and grading says NO.
    let wrong = std::fs::read_to_string(workspace().join("deploy/tasks/src/agentmill__globmatch-1/wrong.patch")).expect("wrong.patch");
    let tasks = [row("agentmill__calc-1", None), row("agentmill__inifile-1", None), row("agentmill__globmatch-1", Some(&wrong))];
    let o = run(&worker_id, dir.path(), &tasks, &["--policy", "replay", "--validate", "--out", &out_arg]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "--validate fails when a patch does not resolve:\n{stderr}");
    assert!(stderr.contains("agentmill__calc-1 r0: FULL (submitted"), "{stderr}");
    assert!(stderr.contains("3 episodes in"), "{stderr}");
    assert!(stderr.contains("not resolved: agentmill__globmatch-1 r0 (NO, submitted)"), "{stderr}");
    let got = records(&out);
    assert_eq!(got.len(), 3, "one record per episode");
    for r in &got {
        let full = r.grading.as_ref().map(|g| g.resolution) == Some(Resolution::Full);
        assert_eq!(full, r.task_id != "agentmill__globmatch-1", "{}: {:?}", r.task_id, r.grading);
        assert_eq!((r.exit_reason, r.worker.as_str()), (Some(ExitReason::Submitted), worker_id.as_str()));
        // Environmentally native: every tool message is what the sandbox printed.
        assert!(r.messages.iter().any(|m| m.role == Role::Tool && !m.content.is_empty()), "{}: no observations", r.task_id);
    }
    assert!(engine.containers_of(&worker_id).await.expect("list").is_empty(), "no container left behind");

    // Gold patches only: --validate passes. Two rollouts of one task give two records.
    let o = run(&worker_id, dir.path(), &tasks[..1], &["--policy", "replay", "--validate", "--rollouts", "2", "--out", &out_arg]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let got = records(&out);
    assert_eq!(got.iter().map(|r| r.rollout).collect::<std::collections::BTreeSet<_>>(), [0, 1].into());

    // A bad row is reported with its line and field; the good row beside it still runs; exit 2.
    let bad = r#"{"repo": "acme/x", "base_commit": "abc"}"#.to_string();
    let o = run(&worker_id, dir.path(), &[tasks[0].clone(), bad], &["--policy", "replay", "--out", &out_arg]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("row 2") && stderr.contains("instance_id"), "{stderr}");
    assert_eq!(records(&out).len(), 1, "the good row ran");

    // An --only id the file does not hold is an error naming it; nothing runs.
    let o = run(&worker_id, dir.path(), &tasks[..1], &["--only", "acme__nope-7"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("acme__nope-7"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Ctrl-C cancels the running episodes, removes every container of the run (one cancelled
/// while it was being created included) and exits 130; what finished is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_the_running_episodes_and_leaves_no_container() {
    let Some(engine) = docker_or_skip("ctrl_c_cancels_the_running_episodes_and_leaves_no_container").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let worker_id = unique("w-local-int");
    let out = dir.path().join("records.jsonl");
    let out_arg = out.to_string_lossy().into_owned();
    let mut child = run_cmd(&worker_id, &workspace().join("deploy/tasks/tasks.jsonl"), &["--policy", "replay", "--out", &out_arg])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start agentmill-worker run");
    // Interrupt once the first episode has finished, while others run.
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        let done = line.contains(" r0: ");
        seen.push(line);
        if done {
            break;
        }
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().expect("wait");
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(130), "an interrupted run exits 130:\n{text}");
    assert!(text.contains("stopping: cancelling the running episodes") && text.contains("cancelled"), "{text}");
    let written = records(&out);
    assert_eq!(written.len(), 9, "every episode ends in a record, the cancelled ones as cancelled");
    assert!(written.iter().any(|r| r.exit_reason == Some(ExitReason::Cancelled)), "some episodes were cancelled");
    assert!(engine.containers_of(&worker_id).await.expect("list").is_empty(), "no container left behind");
}

/// A checkout's tarball (with its `.git`) keeps its history: the row's base_commit, an older
/// commit than the tarball's HEAD, is checked out, and the gold patch resolves against it. A row
/// whose base_commit is not in that history is the task's fault (`sandbox_error`, named).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_tarball_keeps_its_history_and_its_base_commit_is_checked_out() {
    let Some(_engine) = docker_or_skip("a_checkout_tarball_keeps_its_history_and_its_base_commit_is_checked_out").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let id = "agentmill__calc-1";
    let plain: serde_json::Value = serde_json::from_str(&row(id, None)).expect("row");
    let tree = dir.path().join("checkout");
    std::fs::create_dir(&tree).expect("mkdir");
    let sh = |cmd: &str| {
        let o = Command::new("sh").arg("-c").arg(cmd).current_dir(&tree).output().expect("sh");
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    sh(&format!("tar -xzf {}", plain["archive"].as_str().expect("archive")));
    sh("git init -q && git add -A && git -c user.name=dev -c user.email=dev@example.com commit -q -m 'the base'");
    let base = sh("git rev-parse HEAD");
    // A later commit that the task must not see: the episode starts from `base`.
    sh("echo 'LATER = True' >> calc/__init__.py && git -c user.name=dev -c user.email=dev@example.com commit -q -am 'a later change'");
    let tarball = dir.path().join("checkout.tar.gz");
    sh(&format!("tar -czf {} .", tarball.display()));

    let mut r = plain.clone();
    r["archive"] = tarball.to_string_lossy().into_owned().into();
    r["base_commit"] = base.clone().into();
    let mut missing = r.clone();
    missing["instance_id"] = "agentmill__calc-missing".into();
    missing["base_commit"] = "0123456789abcdef0123456789abcdef01234567".into();
    let out = dir.path().join("records.jsonl");
    let o = run(&unique("w-local-git"), dir.path(), &[r.to_string(), missing.to_string()], &["--policy", "replay", "--out", &out.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let got = records(&out);
    let rec = |id: &str| got.iter().find(|x| x.task_id == id).unwrap_or_else(|| panic!("no record for {id}:\n{stderr}"));
    let ok = rec(id);
    assert_eq!(ok.grading.as_ref().map(|g| g.resolution), Some(Resolution::Full), "{stderr}\n{:?}", ok.error);
    assert!(!ok.model_patch.as_deref().unwrap_or_default().contains("LATER"), "the later commit is not part of the episode's base");
    let bad = rec("agentmill__calc-missing");
    assert_eq!(bad.exit_reason, Some(ExitReason::SandboxError));
    assert!(bad.error.as_deref().is_some_and(|e| e.contains("does not contain base_commit 0123456789abcdef")), "{:?}", bad.error);
}

/// A run the reference harness would not grade — here the task's test patch does not apply —
/// is the task's problem: the episode ends `sandbox_error` (never trained as the model's
/// failure) and keeps the grading, which says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_the_harness_would_not_grade_is_a_sandbox_error_not_a_failure() {
    let Some(_engine) = docker_or_skip("a_run_the_harness_would_not_grade_is_a_sandbox_error_not_a_failure").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r: serde_json::Value = serde_json::from_str(&row("agentmill__calc-1", None)).expect("row");
    r["test_patch"] = "diff --git a/nowhere/test_x.py b/nowhere/test_x.py\n--- a/nowhere/test_x.py\n+++ b/nowhere/test_x.py\n@@ -1 +1 @@\n-a\n+b\n".into();
    let out = dir.path().join("records.jsonl");
    let o = run(&unique("w-local-ng"), dir.path(), &[r.to_string()], &["--policy", "replay", "--out", &out.to_string_lossy()]);
    let got = records(&out);
    assert_eq!(got.len(), 1, "{}", String::from_utf8_lossy(&o.stderr));
    let rec = &got[0];
    assert_eq!(rec.exit_reason, Some(ExitReason::SandboxError), "{:?}", rec.error);
    assert!(!rec.exit_reason.expect("exit").is_trainable());
    let g = rec.grading.as_ref().expect("the grading stays on the record");
    assert!(g.not_graded.as_deref().is_some_and(|w| w.contains("test_patch does not apply")), "{:?}", g.not_graded);
    assert!(!g.resolved);
}

/// Logs and lists that do not fit the old limits: 5,000 listed tests (their ids, ~175 KB, no
/// longer pass through one argv string) and a passing test whose captured output makes the log
/// about 80 MB (past the grader's 64 MiB cap): the log's end, where pytest's summary is, is kept,
/// so every listed test is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_ids_and_a_log_past_the_cap_still_grade_every_test() {
    let Some(_engine) = docker_or_skip("thousands_of_ids_and_a_log_past_the_cap_still_grade_every_test").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("m")).expect("mkdir");
    std::fs::write(tree.join("m/__init__.py"), "def f():\n    return 1\n").expect("write");
    let tar = dir.path().join("m.tar.gz");
    let o = Command::new("tar").arg("-czf").arg(&tar).arg("-C").arg(&tree).arg(".").output().expect("tar");
    assert!(o.status.success());
    let n = 5000;
    let test_file = format!(
        "import pytest\nimport sys\nfrom m import f\n\ndef test_f():\n    assert f() == 2\n\n@pytest.mark.parametrize('i', range({n}))\ndef test_case_with_a_long_name(i):\n    assert i >= 0\n\ndef test_big():\n    chunk = 'x' * 1023 + '\\n'\n    for _ in range(80 * 1024):\n        sys.stdout.write(chunk)\n"
    );
    let test_patch = format!(
        "diff --git a/tests/test_m.py b/tests/test_m.py\nnew file mode 100644\n--- /dev/null\n+++ b/tests/test_m.py\n@@ -0,0 +1,{} @@\n{}",
        test_file.lines().count(),
        test_file.lines().map(|l| format!("+{l}\n")).collect::<String>()
    );
    let gold = "diff --git a/m/__init__.py b/m/__init__.py\n--- a/m/__init__.py\n+++ b/m/__init__.py\n@@ -1,2 +1,2 @@\n def f():\n-    return 1\n+    return 2\n";
    let mut p2p: Vec<String> = (0..n).map(|i| format!("tests/test_m.py::test_case_with_a_long_name[{i}]")).collect();
    p2p.push("tests/test_m.py::test_big".into());
    let ids_bytes: usize = p2p.iter().map(|s| s.len() + 1).sum();
    assert!(ids_bytes > 128 * 1024, "more than one argv string holds");
    let row = serde_json::json!({
        "instance_id": "agentmill__big-1", "repo": "agentmill/big", "problem_statement": "f() must return 2",
        "source": "archive", "archive": tar.to_string_lossy(), "image": agentmill_tests::SANDBOX_IMAGE,
        "patch": gold, "test_patch": test_patch, "FAIL_TO_PASS": ["tests/test_m.py::test_f"], "PASS_TO_PASS": p2p,
        "limits": {"memory": "2g"},
    });
    let out = dir.path().join("records.jsonl");
    let o = run(&unique("w-local-big"), dir.path(), &[row.to_string()], &["--policy", "replay", "--validate", "--out", &out.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let got = records(&out);
    assert_eq!(got.len(), 1, "{stderr}");
    let g = got[0].grading.as_ref().unwrap_or_else(|| panic!("graded: {:?}\n{stderr}", got[0].error));
    assert_eq!(g.resolution, Resolution::Full, "{stderr}\n{}", &g.log_tail[g.log_tail.len().saturating_sub(2000)..]);
    assert_eq!(g.pass_to_pass.len(), n + 1);
    assert!(g.pass_to_pass.iter().all(|t| t.status == agentmill_proto::TestStatus::Passed));
    assert_eq!(o.status.code(), Some(0), "{stderr}");
}
