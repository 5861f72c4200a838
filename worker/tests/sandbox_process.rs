//! The process sandbox backend, for real: a bundled task's repository extracted, committed at
//! its base commit, patched and tested (graded FULL with the gold patch, through an agent
//! episode and the worker's own grade stage under bubblewrap); timeouts that kill a whole process
//! group with its background children; the output cap; file access confined to the sandbox;
//! the environment a task expects; removal.
//!
//! Each test runs in plain mode and, where bubblewrap works here, under bubblewrap (see
//! `sandbox_support::isolations`). The pytest runs use the host's Python: `python3` when it has
//! pytest, else a venv with pytest the tests make once under the temp folder.

mod sandbox_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use agentmill_proto::{ExitReason, Resolution};
use agentmill_worker::agent::{AgentConfig, run_agent};
use agentmill_proto::dataset::{ScriptOptions, eval_plan};
use agentmill_worker::episode::grade::{grade, run_graded};
use agentmill_worker::repo::{applied_method, apply_patch_script};
use agentmill_worker::sandbox::process::{HostPython, Isolation, ProcessSandbox, ProcessSandboxError, ProcessSpec};
use agentmill_worker::sandbox::{AGENTMILL_DIR, ExecRequest, MAX_READ_FILE_BYTES, Sandbox, SandboxError, TRUNCATION_MARKER};
use sandbox_support::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Writes `patch` into the sandbox's agentmill folder and applies it with SWE-bench's
/// fallbacks; returns the method.
async fn apply(s: &ProcessSandbox, name: &str, patch: &str) -> String {
    let path = format!("{}/{name}.patch", s.agentmill_dir());
    s.write_file(&path, patch.as_bytes()).await.expect("write the patch");
    let out = run(s, &apply_patch_script(&path)).await;
    assert_eq!(out.exit_code, 0, "{name} patch does not apply:\n{}", out.output);
    applied_method(&out.output).unwrap_or("?").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundled_task_is_at_its_base_commit_and_the_gold_patch_resolves_it() {
    let task = bundled_task(TASK);
    let python = pytest_python();
    for isolation in isolations("a_bundled_task_in_the_process_sandbox") {
        // Extracted, committed, and at the row's base commit (checked inside).
        let s = process_task_sandbox(&task, isolation, "bundled", python.as_ref()).await;
        let status = run(&s, "git status --porcelain && git rev-parse HEAD").await;
        assert_eq!(status.output.trim(), task.base_commit, "{isolation:?}: a clean tree at the base commit");
        assert_eq!(apply(&s, "gold", &task.patch).await, "git apply", "{isolation:?}");
        assert_eq!(apply(&s, "test", &task.test_patch).await, "git apply", "{isolation:?}");
        let diff = run(&s, "git diff --stat HEAD").await;
        assert!(diff.output.contains("inifile/lexer.py") && diff.output.contains("tests/test_lexer.py"), "{isolation:?}: {}", diff.output);

        if python.is_none() {
            continue;
        }
        let plan = eval_plan(&task, &ScriptOptions::default()).expect("plan");
        let grading = run_graded(&s, &task, &plan, "git apply", Duration::from_secs(300)).await.expect("run the tests");
        assert_eq!(grading.resolution, Resolution::Full, "{isolation:?}: exit {:?}\n{}", grading.test_exit_code, grading.log_tail);
        assert_eq!(grading.test_exit_code, Some(0), "{isolation:?}");
    }

    // Under bubblewrap the sandbox is a drop-in for a container: an agent episode fixes the
    // task through the tools, and the worker's own grade stage grades the patch in a fresh one.
    if !bwrap("a_bundled_task_in_the_process_sandbox") {
        return;
    }
    let s = process_task_sandbox(&task, Isolation::Bubblewrap, "agent", python.as_ref()).await;
    assert_eq!(s.workdir(), task.workdir, "the agent sees the workdir the task names");
    let fix = json!({"command": "str_replace", "path": "/testbed/inifile/lexer.py", "old_str": "    index = max(positions)\n", "new_str": "    index = min(positions)\n"});
    let mut policy = Scripted::new(vec![bash("grep -n 'positions' inifile/lexer.py"), call("str_replace_editor", fix), submit()]);
    let outcome = run_agent(&mut policy, &s, &task, &AgentConfig::default(), &CancellationToken::new()).await;
    assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{:?}", outcome.error);
    let answers = tool_answers(&outcome);
    assert!(answers[0].content.contains("index = max(positions)"), "{:?}", answers[0]);
    assert!(outcome.model_patch.contains("+    index = min(positions)"), "{}", outcome.model_patch);
    drop(s);

    let Some(python) = &python else { return };
    let fresh = process_task_sandbox(&task, Isolation::Bubblewrap, "grade", Some(python)).await;
    let grading = grade(&fresh, &task, &outcome.model_patch, Duration::from_secs(300)).await.expect("grade");
    assert_eq!(grading.resolution, Resolution::Full, "{}", grading.log_tail);
    let unfixed = process_task_sandbox(&task, Isolation::Bubblewrap, "grade-empty", Some(python)).await;
    let grading = grade(&unfixed, &task, "", Duration::from_secs(300)).await.expect("grade");
    assert_eq!(grading.resolution, Resolution::No, "the base commit fails its FAIL_TO_PASS tests: {}", grading.log_tail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_whole_process_group_and_nothing_outlives_a_call() {
    let task = bundled_task(TASK);
    for isolation in isolations("a_timeout_kills_the_whole_process_group") {
        let s = process_sandbox(&task, isolation, "timeout", None).await;
        let late = format!("{}/late", s.workdir());
        let marker = unique("sleeper");

        // A background child that would write a file after the deadline, and a foreground sleep.
        let started = Instant::now();
        let command = format!("(sleep 2; echo late > {late}) & echo started; exec -a {marker} sleep 60");
        let out = s.exec(&ExecRequest::new(command).timeout(Duration::from_secs(1))).await.expect("exec");
        assert!(out.timed_out && out.exit_code == 137, "{isolation:?}: {out:?}");
        assert_eq!(out.output, "started\n", "{isolation:?}: the output before the kill is kept");
        assert!(started.elapsed() < Duration::from_secs(4), "{isolation:?}: {:?}", started.elapsed());
        assert!(host_processes_with(&marker).is_empty(), "{isolation:?}: the foreground sleep survived");

        // A call that ends leaves nothing behind either: its background jobs go with it, even
        // those that let go of the output.
        let quick = s.exec(&ExecRequest::new(format!("(sleep 2; echo late > {late}) >/dev/null 2>&1 & sleep 30 & echo done"))).await.expect("exec");
        assert_eq!((quick.exit_code, quick.output.as_str(), quick.timed_out), (0, "done\n", false), "{isolation:?}");
        assert!(quick.duration < Duration::from_secs(2), "{isolation:?}: a background job held the call for {:?}", quick.duration);

        tokio::time::sleep(Duration::from_millis(2500)).await;
        let host_late = s.host_root().join("workdir/late");
        assert!(!host_late.exists(), "{isolation:?}: a background child outlived its call and wrote {}", host_late.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_capped_with_the_docker_marker_and_exit_codes_are_real() {
    let task = bundled_task(TASK);
    for isolation in isolations("output_is_capped") {
        let s = process_sandbox(&task, isolation, "output", None).await;
        let out = s.exec(&ExecRequest::new("head -c 100000 /dev/zero | tr '\\0' x").max_output(1000)).await.expect("exec");
        assert_eq!((out.truncated, out.total_bytes, out.exit_code), (true, 100_000, 0), "{isolation:?}");
        let marker = TRUNCATION_MARKER.replace("{omitted}", "99000");
        assert_eq!(out.output, format!("{}{marker}", "x".repeat(1000)), "{isolation:?}");

        // A cut inside a multi-byte character drops the partial character, as Docker's does.
        let out = s.exec(&ExecRequest::new("printf 'a\\xc3\\xa9b'").max_output(2)).await.expect("exec");
        assert!(out.output.starts_with("a\n<output truncated") && out.output.contains("3 bytes omitted"), "{isolation:?}: {:?}", out.output);

        // stdout and stderr interleave as written; exit codes and signals are the command's.
        let out = s.exec(&ExecRequest::new("echo out; echo err >&2; echo out2; exit 3")).await.expect("exec");
        assert_eq!((out.output.as_str(), out.exit_code, out.truncated), ("out\nerr\nout2\n", 3, false), "{isolation:?}");
        let out = s.exec(&ExecRequest::new("kill -TERM $$")).await.expect("exec");
        assert_eq!(out.exit_code, 143, "{isolation:?}: killed by SIGTERM");
        let out = s.exec(&ExecRequest::new("ulimit -t; ulimit -u; ulimit -f; ulimit -c").timeout(Duration::from_secs(30))).await.expect("exec");
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        assert_eq!(out.output, format!("{}\n1024\n{}\n0\n", 31 * cpus, 1 << 20), "{isolation:?}: the rlimits of the defaults");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_are_byte_exact_and_confined_to_the_sandbox() {
    let task = bundled_task(TASK);
    for isolation in isolations("reads_and_writes_are_confined") {
        let s = process_sandbox(&task, isolation, "files", None).await;
        let w = s.workdir().to_string();

        // Byte for byte, parents created, seen by commands at the same path.
        let bytes: Vec<u8> = (0..=255u8).chain(b"\r\n\xe2\x80\xa8end".iter().copied()).collect();
        s.write_file(&format!("{w}/pkg/deep/data.bin"), &bytes).await.expect("write");
        assert_eq!(s.read_file(&format!("{w}/pkg/deep/data.bin")).await.expect("read"), bytes);
        assert_eq!(s.read_file("pkg/deep/data.bin").await.expect("a relative path is taken from the workdir"), bytes);
        let sum = run(&s, "sha256sum pkg/deep/data.bin | cut -c1-16").await;
        let host_sum = std::process::Command::new("sha256sum").arg(s.host_root().join("workdir/pkg/deep/data.bin")).output().expect("sha256sum");
        assert_eq!(sum.output.trim().as_bytes(), &host_sum.stdout[..16], "{isolation:?}");

        // An existing file keeps its mode; a symlink inside the sandbox is written through.
        run(&s, "printf '#!/bin/sh\\necho old\\n' > run.sh && chmod 755 run.sh && ln -s run.sh link.sh").await;
        s.write_file(&format!("{w}/link.sh"), b"#!/bin/sh\necho new\n").await.expect("write through the link");
        let out = run(&s, "./run.sh && test -L link.sh && echo still-a-link").await;
        assert_eq!(out.output, "new\nstill-a-link\n", "{isolation:?}");
        let mode = std::fs::metadata(s.host_root().join("workdir/run.sh")).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{isolation:?}");

        // What the path names is wrong: typed errors the editor reports to the model.
        run(&s, "mkfifo pipe && truncate -s 65M big").await;
        assert!(matches!(s.read_file(&format!("{w}/missing")).await, Err(SandboxError::NotFound(_))), "{isolation:?}");
        assert!(matches!(s.read_file(&w).await, Err(SandboxError::NotAFile(_))), "{isolation:?}");
        assert!(matches!(s.read_file(&format!("{w}/pipe")).await, Err(SandboxError::NotAFile(_))), "{isolation:?}: a fifo is never opened");
        assert!(matches!(s.read_file(&format!("{w}/big")).await, Err(SandboxError::TooLarge { limit: MAX_READ_FILE_BYTES, .. })), "{isolation:?}");
        for (path, why) in [(format!("{w}/pkg"), "is a directory"), (format!("{w}/pipe"), "named pipe")] {
            match s.write_file(&path, b"x").await {
                Err(e @ SandboxError::WriteRefused { .. }) => assert!(e.to_string().contains(why) && e.is_path_error(), "{e}"),
                other => panic!("{isolation:?}: {path}: {other:?}"),
            }
        }

        // Escapes: `..`, absolute paths outside, symlinks out of the sandbox.
        let outside = std::env::temp_dir().join(unique("outside"));
        std::fs::create_dir(&outside).expect("make a host folder");
        std::fs::write(outside.join("secret"), b"host secret").expect("write a host file");
        run(&s, &format!("ln -s {} out && ln -s ../../../../../../../.. up", outside.display())).await;
        let secret_by_climb = format!("{w}/up{}", outside.join("secret").display());
        for path in [format!("{w}/../../../../{}/secret", outside.display()), secret_by_climb.clone(), format!("{w}/out/secret")] {
            let read = s.read_file(&path).await;
            assert!(!matches!(&read, Ok(b) if b == b"host secret"), "{isolation:?}: the host file was read through {path}");
            let write = s.write_file(&path, b"overwritten").await;
            if isolation == Isolation::Plain {
                assert!(matches!(write, Err(SandboxError::WriteRefused { .. })), "{isolation:?}: {path}: {write:?}");
            }
            assert_eq!(std::fs::read(outside.join("secret")).expect("the host file"), b"host secret", "{isolation:?}: {path}");
        }
        std::fs::remove_dir_all(&outside).expect("clean up");

        // agentmill's folder and the private tmp are the sandbox's too; the worker's are not.
        s.write_file(&format!("{}/note", s.agentmill_dir()), b"mine").await.expect("write the agentmill folder");
        assert_eq!(run(&s, &format!("cat {}/note", s.agentmill_dir())).await.output, "mine", "{isolation:?}");
        if isolation == Isolation::Bubblewrap {
            assert_eq!(s.agentmill_dir(), AGENTMILL_DIR);
            assert!(s.read_file("/etc/passwd").await.is_ok(), "the sandbox's read-only /etc can be read");
            let refused = s.write_file("/etc/agentmill-never", b"x").await;
            assert!(matches!(refused, Err(SandboxError::WriteRefused { ref reason, .. }) if reason.contains("read-only")), "{refused:?}");
        } else {
            assert!(matches!(s.read_file("/etc/passwd").await, Err(SandboxError::NotFound(_))), "plain mode confines reads to its folders");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_see_the_task_environment_and_not_the_workers() {
    let task = bundled_task(TASK);
    assert!(std::env::vars().any(|(k, _)| k.starts_with("CARGO")), "cargo gives the test process CARGO_* variables to leak");
    for isolation in isolations("commands_see_the_task_environment") {
        let s = process_sandbox(&task, isolation, "env", None).await;
        assert_eq!(s.isolation(), isolation);
        let out = run(&s, "pwd; echo \"$TZ $PYTHONHASHSEED $LANG\"; env | grep -c '^CARGO' ; echo \"$HOME\"").await;
        let lines: Vec<&str> = out.output.lines().collect();
        assert_eq!(lines[0], s.workdir(), "{isolation:?}: commands start in the workdir");
        assert_eq!(lines[1], "UTC 0 C.UTF-8", "{isolation:?}");
        assert_eq!(lines[2], "0", "{isolation:?}: the worker's environment is not passed on");
        let mut req = ExecRequest::new("echo \"$EXTRA\"; pwd");
        req.env.insert("EXTRA".into(), "per-call".into());
        req.workdir = Some(format!("{}/sub", s.workdir()));
        run(&s, "mkdir sub").await;
        assert_eq!(s.exec(&req).await.expect("exec").output, format!("per-call\n{}/sub\n", s.workdir()), "{isolation:?}");

        // /tmp persists between calls and is private under bubblewrap.
        let name = unique("private-tmp");
        let tmp = if isolation == Isolation::Bubblewrap { "/tmp".to_string() } else { lines[3].to_string() };
        run(&s, &format!("echo kept > {tmp}/{name}")).await;
        assert_eq!(run(&s, &format!("cat {tmp}/{name}")).await.output, "kept\n", "{isolation:?}");
        assert!(s.host_root().join("tmp").join(&name).is_file(), "{isolation:?}");
        assert!(!Path::new("/tmp").join(&name).exists(), "{isolation:?}: the host's /tmp is untouched");
        if isolation == Isolation::Bubblewrap {
            assert_eq!(s.workdir(), "/testbed");
            let ps = run(&s, "ls /proc | grep -c '^[0-9]'").await;
            assert!(ps.output.trim().parse::<u32>().is_ok_and(|n| n <= 4), "a pid namespace of its own: {}", ps.output);
        } else {
            assert_eq!(Path::new(s.workdir()), s.host_root().join("workdir"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_deletes_the_folder_and_failed_starts_name_the_fix() {
    let task = bundled_task(TASK);
    for isolation in isolations("removal_deletes_the_folder") {
        let s = process_task_sandbox(&task, isolation, "remove", None).await;
        let root = s.host_root().to_path_buf();
        assert!(s.is_alive().await);
        // A command that takes away write permission does not keep the folder alive.
        run(&s, "mkdir -p locked/inner && touch locked/inner/f && chmod 0500 locked/inner locked").await;
        s.remove().await;
        assert!(!s.is_alive().await && !root.exists(), "{isolation:?}: {} is still there", root.display());
        let refused = s.exec(&ExecRequest::new("true")).await;
        assert!(matches!(&refused, Err(SandboxError::Io(m)) if m.contains("was removed")), "{refused:?}");

        let dropped = process_sandbox(&task, isolation, "drop", None).await;
        let root = dropped.host_root().to_path_buf();
        assert!(root.is_dir());
        drop(dropped);
        assert!(!root.exists(), "{isolation:?}: dropping removes the folder");
    }

    // What cannot start says what to do instead.
    let err = HostPython::locate("/nonexistent/bin/python").expect_err("no such interpreter");
    assert!(err.to_string().contains("install python3 or name an interpreter"), "{err}");
    let mut spec = ProcessSpec::new(&task.workdir, unique("bad-bind"));
    spec.ro_binds.push("/nonexistent/prefix".into());
    let err = ProcessSandbox::start(&spec).await.expect_err("a bind that does not exist");
    assert!(matches!(err, ProcessSandboxError::BadBind { .. }), "{err}");
    if bwrap("removal_deletes_the_folder") {
        let mut spec = ProcessSpec::new("/usr/src/app", unique("bad-workdir"));
        spec.isolation = Isolation::Bubblewrap;
        let err = ProcessSandbox::start(&spec).await.expect_err("a workdir inside /usr");
        assert!(matches!(err, ProcessSandboxError::BadWorkdir { .. }) && err.to_string().contains("such as /testbed"), "{err}");
        let auto = ProcessSandbox::start(&ProcessSpec::new(&task.workdir, unique("auto"))).await.expect("start");
        assert_eq!(auto.isolation(), Isolation::Bubblewrap, "Auto takes bubblewrap where it works");
    }
}

/// A venv reached through a symlinked folder (a checkout whose `.venv` links to another's): its
/// `bin` folder is named by its resolved path, inside a prefix the sandbox binds, so `python` is
/// on the sandbox's `PATH`.
#[test]
fn a_python_reached_through_a_symlink_has_its_bin_folder_inside_a_bound_prefix() {
    let real = tempfile::tempdir().expect("tempdir");
    let venv = real.path().join("venv");
    let made = std::process::Command::new("python3").args(["-m", "venv", "--without-pip"]).arg(&venv).status().expect("run python3 -m venv");
    assert!(made.success(), "python3 -m venv failed (install python3-venv)");
    let link = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(&venv, link.path().join("venv")).expect("symlink");
    let python = HostPython::locate(link.path().join("venv/bin/python")).expect("locate through the link");
    let resolved = std::fs::canonicalize(&venv).expect("resolve");
    assert_eq!(python.bin_dir, resolved.join("bin"), "the bin folder by its resolved path");
    assert!(python.prefixes.iter().any(|p| python.bin_dir.starts_with(p)), "bin {:?} outside every bound prefix {:?}", python.bin_dir, python.prefixes);
}
