//! `agentmill-worker build`: environments built ahead of a run, as the episodes build them.
//! The real binary on Harbor task directories (copies of the fixtures, each Dockerfile given a
//! unique label so its tag is this test's own): a first run builds, a second finds them cached,
//! a broken Dockerfile fails naming its step, and `--validate` runs the oracles. Real Docker,
//! offline.

use std::path::{Path, PathBuf};

use agentmill_tests::{docker_or_skip, unique, workspace};

/// A copy of the fixture task directory `name` under `into`, its Dockerfile made unique by
/// `label` (and `extra` lines appended).
fn task_copy(into: &Path, name: &str, label: &str, extra: &str) -> PathBuf {
    let from = workspace().join("tests/fixtures/harbor").join(name);
    let to = into.join(name);
    copy_dir(&from, &to);
    let dockerfile = to.join("environment/Dockerfile");
    let mut text = std::fs::read_to_string(&dockerfile).expect("the fixture's Dockerfile");
    text.push_str(&format!("\nLABEL agentmill.test={label}\n{extra}"));
    std::fs::write(&dockerfile, text).expect("write the Dockerfile");
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read the fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Runs `agentmill-worker build` with `args`: its exit code, stdout, stderr.
fn build(args: &[&Path], extra: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new(agentmill_tests::binary("agentmill-worker"));
    cmd.arg("build").args(extra).env("RUST_LOG", "warn");
    for dir in args {
        cmd.arg("--harbor").arg(dir);
    }
    let out = cmd.output().expect("run agentmill-worker build");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The tag on the line of task `id` that ends in `what` (`built`, `cached`, `failed`).
fn tag_of(stdout: &str, id: &str, what: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{id} ")))
        .unwrap_or_else(|| panic!("no line for {id}:\n{stdout}"));
    let rest = line.strip_prefix(&format!("{id} ")).expect("prefix");
    let (tag, outcome) = rest.split_once(": ").unwrap_or_else(|| panic!("{line}"));
    assert!(outcome.starts_with(what), "{id}: expected {what}: {line}");
    assert!(tag.starts_with("agentmill-env/"), "{line}");
    tag.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_makes_the_environments_then_finds_them_cached_and_validate_runs_the_oracles() {
    let Some(_engine) = docker_or_skip("build_makes_the_environments_then_finds_them_cached_and_validate_runs_the_oracles").await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let label = unique("env-build");
    // Each its own label: identical contexts would share one tag (and one build).
    let pass = task_copy(dir.path(), "pass-oracle", &format!("{label}-pass"), "");
    let fail = task_copy(dir.path(), "fail-oracle", &format!("{label}-fail"), "");
    let nothing = workspace().join("tests/fixtures/harbor/multi-reward");
    let mut tags = Vec::new();

    // First run: both environments built; the task with an image has nothing to build.
    let (code, out, err) = build(&[&pass, &fail, &nothing], &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    tags.push(tag_of(&out, "agentmill/pass-oracle", "built"));
    tags.push(tag_of(&out, "agentmill/fail-oracle", "built"));
    assert_ne!(tags[0], tags[1]);
    assert!(out.contains("agentmill/multi-reward: nothing to build (image "), "{out}");
    assert!(out.contains("2 built, 0 cached, 0 failed, 1 with nothing to build"), "{out}");

    // Second run: the same contexts, the same tags, found on the host.
    let (code, out, err) = build(&[&pass, &fail], &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(tag_of(&out, "agentmill/pass-oracle", "cached"), tags[0]);
    assert_eq!(tag_of(&out, "agentmill/fail-oracle", "cached"), tags[1]);

    // A Dockerfile whose RUN fails: exit 1, the failing step named, the log's end shown.
    let broken_dir = dir.path().join("broken");
    let broken = task_copy(&broken_dir, "pass-oracle", &format!("{label}-broken"), &format!("RUN echo about-to-fail-{label} && false\n"));
    let (code, out, err) = build(&[&broken], &[]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    tags.push(tag_of(&out, "agentmill/pass-oracle", "failed"));
    let failed = out.split(": failed: ").nth(1).expect("the failure");
    assert!(failed.contains("RUN echo about-to-fail"), "the failing step is named: {out}");
    assert!(out.contains("1 failed"), "{out}");

    // --validate: the oracle of pass-oracle resolves it; fail-oracle's does not.
    let (code, out, err) = build(&[&pass], &["--validate"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(err.contains("agentmill/pass-oracle r0: FULL"), "{err}");
    let (code, out, err) = build(&[&pass, &fail], &["--validate"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(err.contains("agentmill/fail-oracle r0: NO"), "{err}");

    // The images are this test's own (its unique label): remove them.
    for tag in &tags {
        let _ = std::process::Command::new("docker").args(["rmi", "-f", tag]).output();
    }
    // The failed build's completed steps stay as untagged layers carrying its unique label.
    let _ = std::process::Command::new("docker").args(["image", "prune", "-f", "--filter", &format!("label=agentmill.test={label}-broken")]).output();
}

/// An OpenSWE row (the bundled calc project, its Dockerfile made unique) in a rows file whose
/// archive path is relative to the file's folder: built, then `--validate` runs its gold patch
/// (FULL); a row with an `image_name` has nothing to build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_makes_an_openswe_rows_environment_with_paths_relative_to_the_rows_file() {
    let Some(_engine) = docker_or_skip("build_makes_an_openswe_rows_environment_with_paths_relative_to_the_rows_file").await else { return };
    let tasks = std::fs::read_to_string(workspace().join("deploy/tasks/tasks.jsonl")).expect("the bundled tasks");
    let task: serde_json::Value = tasks
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a row"))
        .find(|t| t["instance_id"] == "agentmill__calc-1")
        .expect("agentmill__calc-1");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(workspace().join("deploy/tasks").join(task["archive"].as_str().expect("archive")), dir.path().join("calc.tar.gz")).expect("copy the archive");
    let label = unique("env-build-openswe");
    let test_patch = task["test_patch"].as_str().expect("test_patch");
    let row = serde_json::json!({
        "instance_id": "agentmill__calc-openswe-build", "repo": "agentmill/calc", "base_commit": task["base_commit"],
        "problem_statement": task["problem_statement"], "patch": task["patch"], "test_patch": test_patch,
        "Dockerfile": format!("FROM {}\nLABEL agentmill.test={label}\nCOPY . /testbed\nWORKDIR /testbed\n", agentmill_tests::SANDBOX_IMAGE),
        "eval_script": format!("#!/bin/bash\ncd /testbed\ngit apply -v - <<'EOF_114329324912'\n{test_patch}\nEOF_114329324912\npython -m pytest -rA -p no:cacheprovider tests\nrc=$?\necho \"OPENSWE_EXIT_CODE=$rc\"\n"),
        "source": "archive", "archive": "calc.tar.gz",
    });
    let mut imaged = row.clone();
    imaged["instance_id"] = "agentmill__calc-openswe-imaged".into();
    imaged["image_name"] = agentmill_tests::SANDBOX_IMAGE.into();
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(&rows, format!("{row}\n{imaged}\n")).expect("rows");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(agentmill_tests::binary("agentmill-worker"))
            .arg("build")
            .arg(&rows)
            .args(extra)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run agentmill-worker build");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, out, err) = run(&[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let tag = tag_of(&out, "agentmill__calc-openswe-build", "built");
    assert!(out.contains(&format!("agentmill__calc-openswe-imaged: nothing to build (image {})", agentmill_tests::SANDBOX_IMAGE)), "{out}");
    let (code, out, err) = run(&["--validate"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(tag_of(&out, "agentmill__calc-openswe-build", "cached"), tag);
    assert!(err.contains("agentmill__calc-openswe-build r0: FULL"), "{err}");
    let _ = std::process::Command::new("docker").args(["rmi", "-f", &tag]).output();
}
