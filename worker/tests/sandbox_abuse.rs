//! Abuse from inside a sandbox — a fork bomb, a memory hog, an endless loop, 100 MB on stdout, a
//! network connection, writes outside the workdir — each run as a real `bash` (or editor) call
//! of a real agent episode (a scripted policy through `run_agent`) or through the `Sandbox`
//! trait, each ending in its typed outcome with the host unharmed.
//!
//! Docker: every test labels its containers with its own worker name, reaps them at the start
//! and (through [`Reaper`]) at the end even when an assertion fails, and checks that
//! `containers_of(worker)` is empty. Process backend: the abuses it can meaningfully stop
//! (endless loop, output flood, memory hog by address space, writes outside, network under
//! bubblewrap); a fork bomb is left out, since `RLIMIT_NPROC` does not bind a root worker.

mod sandbox_support;

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agentmill_proto::ExitReason;
use agentmill_worker::agent::tools::EXIT_TOOL_ERROR;
use agentmill_worker::agent::{AgentConfig, run_agent};
use agentmill_worker::sandbox::process::{Isolation, ProcessSandbox, ProcessSpec};
use agentmill_worker::sandbox::{ExecRequest, Sandbox, SandboxError};
use sandbox_support::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// An agent config whose first timed-out call ends the episode.
fn one_timeout_ends_it() -> AgentConfig {
    AgentConfig { max_consecutive_timeouts: 1, ..AgentConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Docker

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_fork_bomb_is_bounded_by_the_pids_limit_and_the_host_is_unharmed() {
    let worker = "sandbox-abuse-fork-bomb";
    let Some(engine) = docker("docker_fork_bomb", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let mut task = bundled_task(TASK);
    let limits = small_limits();
    let pids = u64::from(limits.pids.expect("a pids limit"));
    let c = task_container(&engine, worker, &task, limits, false, "fork-bomb").await;
    let before = host_process_count();

    // One turn: the bomb. The episode then ends `max_steps`; collecting the diff afterwards may
    // fail in a container whose pids are all taken, which only empties the patch.
    task.limits.step_timeout_s = Some(3);
    task.limits.max_steps = Some(1);
    let config = AgentConfig { autosubmit_timeout_s: 10, ..AgentConfig::default() };
    let mut policy = Scripted::new(vec![bash(":(){ :|:& };:")]);
    let started = Instant::now();
    let outcome = run_agent(&mut policy, &c, &task, &config, &CancellationToken::new()).await;
    let during = host_process_count();
    assert_eq!(outcome.exit_reason, ExitReason::MaxSteps, "{:?}", outcome.error);
    assert!(started.elapsed() < Duration::from_secs(30), "the bomb held the episode for {:?}", started.elapsed());
    let bomb = tool_answers(&outcome)[0];
    // `:` itself returns at once (its pipeline runs in the background), so the call's exit code
    // is the shell's; what bounds the bomb is forks failing at the pids limit, or the timeout.
    assert!(
        bomb.content.contains("fork: retry: Resource temporarily unavailable") || bomb.exit_code == Some(137),
        "the pids limit or the step timeout stopped the bomb: {:?}",
        &bomb.content[..bomb.content.len().min(300)]
    );
    // Whatever of the bomb still runs is inside the container's pids limit (some slack for the
    // host's own churn and the tests beside this one).
    assert!(during <= before + pids + 48, "the host went from {before} to {during} processes with a pids limit of {pids}");

    remove_and_check_none_left(&engine, worker, &c).await;
    let after = host_process_count();
    assert!(after < before + 48, "the host has {after} processes after the bomb, {before} before");
    let spawned = std::process::Command::new("true").status().expect("the host still spawns processes");
    assert!(spawned.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_memory_hog_is_oom_killed_and_reported_as_the_commands_failure() {
    let worker = "sandbox-abuse-memory-hog";
    let Some(engine) = docker("docker_memory_hog", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let mut task = bundled_task(TASK);
    let c = task_container(&engine, worker, &task, small_limits(), false, "memory-hog").await;

    task.limits.step_timeout_s = Some(60);
    let mut policy = Scripted::new(vec![bash("python3 -c 'a = bytearray(1 << 30); print(len(a))'"), bash("echo still-alive"), submit()]);
    let outcome = run_agent(&mut policy, &c, &task, &AgentConfig::default(), &CancellationToken::new()).await;
    assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{:?}", outcome.error);
    let answers = tool_answers(&outcome);
    let hog = answers[0];
    assert!(
        hog.exit_code == Some(137) || (hog.exit_code == Some(1) && hog.content.contains("MemoryError")),
        "the hog is OOM-killed (137) or refused its memory: {hog:?}"
    );
    assert!(!hog.content.contains("1073741824"), "the gigabyte was never handed out: {hog:?}");
    assert!(!hog.content.contains("timed out"), "an OOM kill is not a timeout: {hog:?}");
    assert!(answers[1].content.contains("still-alive"), "only the hog died, not the container: {:?}", answers[1]);

    remove_and_check_none_left(&engine, worker, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_endless_loop_is_killed_at_the_step_timeout_and_ends_the_episode() {
    let worker = "sandbox-abuse-endless-loop";
    let Some(engine) = docker("docker_endless_loop", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let mut task = bundled_task(TASK);
    let c = task_container(&engine, worker, &task, small_limits(), false, "endless-loop").await;

    task.limits.step_timeout_s = Some(2);
    let mut policy = Scripted::new(vec![bash("while :; do :; done # agentmill-spin")]);
    let started = Instant::now();
    let outcome = run_agent(&mut policy, &c, &task, &one_timeout_ends_it(), &CancellationToken::new()).await;
    assert_eq!((outcome.exit_reason, outcome.steps), (ExitReason::StepTimeout, 1), "{:?}", outcome.error);
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    let answers = tool_answers(&outcome);
    assert_eq!(answers[0].exit_code, Some(137), "{:?}", answers[0]);
    assert!(answers[0].content.contains("timed out after 2 s"), "{:?}", answers[0]);

    // Nothing keeps spinning in the container (the pattern is built so it matches no scanner).
    let scan = "p=agentmill-; p=${p}spin; for f in /proc/[0-9]*/cmdline; do c=$(tr '\\0' ' ' < $f 2>/dev/null); [[ $c == *\"$p\"* ]] && echo \"$f $c\"; done; true";
    let left = c.exec(&ExecRequest::new(scan).timeout(Duration::from_secs(20))).await.expect("scan the container's processes");
    assert_eq!(left.output.trim(), "", "the loop survived its timeout");

    remove_and_check_none_left(&engine, worker, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_100_mb_of_stdout_is_truncated_counted_and_never_buffered() {
    let worker = "sandbox-abuse-stdout-flood";
    let Some(engine) = docker("docker_stdout_flood", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let mut task = bundled_task(TASK);
    let c = task_container(&engine, worker, &task, small_limits(), false, "stdout-flood").await;

    task.limits.step_timeout_s = Some(120);
    let peak_before = peak_rss_kib();
    let mut policy = Scripted::new(vec![bash("head -c 100000000 /dev/urandom | base64"), submit()]);
    let outcome = run_agent(&mut policy, &c, &task, &AgentConfig::default(), &CancellationToken::new()).await;
    let peak_after = peak_rss_kib();
    assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{:?}", outcome.error);
    let flood = tool_answers(&outcome)[0];
    assert_eq!((flood.exit_code, flood.truncated), (Some(0), Some(true)), "{:?}", &flood.content[flood.content.len().saturating_sub(200)..]);
    let omitted = omitted_bytes(&flood.content).expect("the truncation marker");
    let kept = flood.content.find("\n<output truncated by agentmill").expect("the marker") as u64;
    // base64 writes 4 bytes per 3, plus a newline per 76.
    assert!(kept + omitted >= 133_000_000, "only {} bytes counted", kept + omitted);
    assert!(flood.content.len() < 40 * 1024, "the observation keeps the cap, not the flood: {} bytes", flood.content.len());
    assert!(peak_after < peak_before + 64 * 1024, "the test process peaked at {peak_after} KiB (from {peak_before} KiB): output was buffered");

    remove_and_check_none_left(&engine, worker, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_sandbox_has_no_network_and_cannot_reach_a_listener() {
    let worker = "sandbox-abuse-network";
    let Some(engine) = docker("docker_network", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let mut task = bundled_task(TASK);
    // The listener: a container on a network this test creates (never the host's bridge).
    let listener = TestListener::start("sandbox-abuse");
    let connect = format!("timeout 5 bash -c 'exec 3<>/dev/tcp/{}/{}' && echo CONNECTED", listener.ip, listener.port);

    // The control: a container given that network reaches the listener, so the same attempt
    // failing in the sandbox proves the sandbox.
    let control = task_container_on(&engine, worker, &task, small_limits(), &listener.network, "network-control").await;
    let reached = control.exec(&ExecRequest::new(&connect)).await.expect("connect from the control");
    assert!(reached.output.contains("CONNECTED"), "the control container cannot reach the listener either; the test proves nothing: {}", reached.output);
    control.remove().await;
    let by_control = listener.accepted_at_least(1);
    assert_eq!(by_control, 1);

    let c = task_container(&engine, worker, &task, small_limits(), false, "network").await;
    task.limits.step_timeout_s = Some(20);
    let mut policy = Scripted::new(vec![
        bash("cat /proc/net/dev"),
        bash(&connect),
        bash(&format!("timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{}' && echo CONNECTED", listener.port)),
        bash(&format!("python3 -c \"import socket; socket.create_connection(('{}', 9), timeout=3)\"", listener.ip)),
        submit(),
    ]);
    let outcome = run_agent(&mut policy, &c, &task, &AgentConfig::default(), &CancellationToken::new()).await;
    assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{:?}", outcome.error);
    let answers = tool_answers(&outcome);
    let interfaces: Vec<&str> = answers[0].content.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(interfaces, ["lo"], "{}", answers[0].content);
    for attempt in &answers[1..4] {
        assert_ne!(attempt.exit_code, Some(0), "{attempt:?}");
        assert!(!attempt.content.contains("CONNECTED"), "{attempt:?}");
        assert!(attempt.content.contains("unreachable") || attempt.content.contains("refused"), "{attempt:?}");
    }
    assert_eq!(listener.accepted(), by_control, "the sandbox's attempts never reached the listener");

    remove_and_check_none_left(&engine, worker, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_writes_outside_the_workdir_stay_in_the_container() {
    let worker = "sandbox-abuse-escape";
    let Some(engine) = docker("docker_writes_outside", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let task = bundled_task(TASK);
    let c = task_container(&engine, worker, &task, small_limits(), false, "escape").await;

    let etc = format!("/etc/{}", unique("escape"));
    let root = format!("/{}", unique("host-file"));
    let by_editor = format!("/etc/{}", unique("editor-escape"));
    let mut policy = Scripted::new(vec![
        bash(&format!("echo escaped > {etc} && echo escaped > /../..{root} && cat {etc} /../..{root}")),
        call("str_replace_editor", json!({"command": "create", "path": by_editor, "file_text": "escaped\n"})),
        bash(&format!("cat {by_editor}")),
        submit(),
    ]);
    let outcome = run_agent(&mut policy, &c, &task, &AgentConfig::default(), &CancellationToken::new()).await;
    assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{:?}", outcome.error);
    let answers = tool_answers(&outcome);
    // Root in the container may write its own /etc: the writes land in the container's layer.
    assert_eq!((answers[0].exit_code, answers[0].content.as_str()), (Some(0), "escaped\nescaped\n"), "{:?}", answers[0]);
    assert_eq!((answers[2].exit_code, answers[2].content.as_str()), (Some(0), "escaped\n"), "{:?}", answers[2]);
    assert_eq!(outcome.model_patch, "", "nothing outside the workdir is in the patch");
    for path in [&etc, &root, &by_editor] {
        assert!(!Path::new(path).exists(), "{path} appeared on the host");
    }

    remove_and_check_none_left(&engine, worker, &c).await;
    for path in [&etc, &root, &by_editor] {
        assert!(!Path::new(path).exists(), "{path} appeared on the host");
    }
}

// ---------------------------------------------------------------------------------------------
// The process backend

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_endless_loop_is_killed_at_the_step_timeout_and_nothing_keeps_spinning() {
    let mut task = bundled_task(TASK);
    for isolation in isolations("process_endless_loop") {
        let marker = unique("spin");
        let s = process_task_sandbox(&task, isolation, "endless-loop", None).await;
        let command = format!("while :; do :; done # {marker}");
        let started = Instant::now();
        if isolation == Isolation::Bubblewrap {
            // Through the agent loop (plain mode has no /agentmill for the autosubmitted diff).
            task.limits.step_timeout_s = Some(2);
            let mut policy = Scripted::new(vec![bash(&command)]);
            let outcome = run_agent(&mut policy, &s, &task, &one_timeout_ends_it(), &CancellationToken::new()).await;
            assert_eq!((outcome.exit_reason, outcome.steps), (ExitReason::StepTimeout, 1), "{:?}", outcome.error);
            let answer = tool_answers(&outcome)[0];
            assert_eq!(answer.exit_code, Some(137), "{answer:?}");
            assert!(answer.content.contains("timed out after 2 s"), "{answer:?}");
        } else {
            let out = s.exec(&ExecRequest::new(&command).timeout(Duration::from_secs(2))).await.expect("exec");
            assert!(out.timed_out && out.exit_code == 137, "{isolation:?}: {out:?}");
            assert!(out.duration >= Duration::from_secs(2) && out.duration < Duration::from_secs(5), "{out:?}");
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{isolation:?}: {:?}", started.elapsed());
        let left = host_processes_with(&marker);
        assert!(left.is_empty(), "{isolation:?}: the loop survived its timeout: {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_100_mb_of_stdout_is_truncated_counted_and_never_buffered() {
    let task = bundled_task(TASK);
    for isolation in isolations("process_stdout_flood") {
        let s = process_sandbox(&task, isolation, "stdout-flood", None).await;
        let peak_before = peak_rss_kib();
        let req = ExecRequest::new("head -c 100000000 /dev/urandom | base64").timeout(Duration::from_secs(60)).max_output(32 * 1024);
        let out = s.exec(&req).await.expect("exec");
        let peak_after = peak_rss_kib();
        assert_eq!((out.exit_code, out.truncated, out.timed_out), (0, true, false), "{isolation:?}");
        assert!(out.total_bytes >= 133_000_000, "{isolation:?}: {} bytes counted", out.total_bytes);
        let kept = out.output.find("\n<output truncated by agentmill").expect("the marker") as u64;
        assert_eq!(omitted_bytes(&out.output), Some(out.total_bytes - kept), "{isolation:?}");
        assert!(out.output.len() < 33 * 1024, "{isolation:?}: {} bytes kept", out.output.len());
        assert!(peak_after < peak_before + 64 * 1024, "{isolation:?}: the test process peaked at {peak_after} KiB (from {peak_before} KiB)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_memory_hog_is_stopped_by_the_address_space_limit() {
    let task = bundled_task(TASK);
    for isolation in isolations("process_memory_hog") {
        let mut spec = ProcessSpec::new(&task.workdir, unique("memory-hog"));
        spec.isolation = isolation;
        spec.limits.address_space_bytes = Some(256 << 20);
        let s = ProcessSandbox::start(&spec).await.expect("start");
        // `tail` keeps a line that never ends in memory: 600 MB of zeros with no newline.
        let out = s.exec(&ExecRequest::new("head -c 600000000 /dev/zero | tail | wc -c").timeout(Duration::from_secs(60))).await.expect("exec");
        assert!(!out.timed_out, "{isolation:?}: {out:?}");
        assert!(out.output.contains("memory exhausted"), "{isolation:?}: {out:?}");
        assert_eq!(out.output.lines().last(), Some("0"), "{isolation:?}: tail never printed its line: {out:?}");
        let limit = s.exec(&ExecRequest::new("ulimit -v")).await.expect("exec");
        assert_eq!(limit.output.trim(), (256 * 1024).to_string(), "{isolation:?}");
        let alive = s.exec(&ExecRequest::new("echo still-alive")).await.expect("exec");
        assert_eq!(alive.output, "still-alive\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_writes_outside_the_workdir_are_refused() {
    let mut task = bundled_task(TASK);
    for isolation in isolations("process_writes_outside") {
        let s = process_task_sandbox(&task, isolation, "escape", None).await;
        let host_outside = std::env::temp_dir().join(unique("outside"));
        std::fs::create_dir(&host_outside).expect("make a host folder");
        let etc = format!("/etc/{}", unique("escape"));
        let host_file = unique("host-file");
        let workdir = s.workdir().to_string();

        // The worker's own file access: `..`, absolute paths and symlinks climbing out are refused.
        run(&s, &format!("ln -s {} host-link && ln -s ../../../../../../.. up-link", host_outside.display())).await;
        let refused = [etc.clone(), format!("{workdir}/../../../{host_file}"), format!("{workdir}/up-link/etc/{host_file}"), format!("/{host_file}")];
        for path in &refused {
            match s.write_file(path, b"escaped\n").await {
                Err(SandboxError::WriteRefused { reason, .. }) => assert!(!reason.is_empty()),
                other => panic!("{isolation:?}: writing {path} was not refused: {other:?}"),
            }
        }
        // An absolute symlink means the sandbox's path: under bubblewrap that is the sandbox's
        // private /tmp, in plain mode the host folder, which is outside and refused.
        let through_link = s.write_file(&format!("{workdir}/host-link/planted"), b"planted\n").await;
        match isolation {
            Isolation::Plain => assert!(matches!(through_link, Err(SandboxError::WriteRefused { .. })), "{through_link:?}"),
            _ => {
                through_link.expect("a write into the sandbox's own /tmp");
                let private = s.host_root().join("tmp").join(host_outside.file_name().expect("a name")).join("planted");
                assert!(private.is_file(), "the write landed in the sandbox's private /tmp");
            }
        }
        match s.read_file(&format!("{workdir}/up-link/etc/passwd")).await {
            Err(SandboxError::NotFound(_)) if isolation == Isolation::Plain => {}
            Ok(_) if isolation == Isolation::Bubblewrap => {} // the sandbox's own read-only /etc
            other => panic!("{isolation:?}: {other:?}"),
        }
        assert!(matches!(s.read_file("/proc/self/environ").await, Err(SandboxError::NotFound(_))), "{isolation:?}: the worker's environment");

        if isolation == Isolation::Bubblewrap {
            // From inside: the root and the host's folders are read-only, the editor is refused.
            let by_editor = format!("/etc/{}", unique("editor-escape"));
            task.limits.step_timeout_s = Some(20);
            let mut policy = Scripted::new(vec![
                bash(&format!("echo escaped > {etc}")),
                bash(&format!("echo escaped > /../../{host_file}")),
                bash("echo escaped > /usr/agentmill-escape"),
                call("str_replace_editor", json!({"command": "create", "path": by_editor, "file_text": "escaped\n"})),
                submit(),
            ]);
            let outcome = run_agent(&mut policy, &s, &task, &AgentConfig::default(), &CancellationToken::new()).await;
            assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{:?}", outcome.error);
            let answers = tool_answers(&outcome);
            for answer in &answers[..3] {
                assert_eq!(answer.exit_code, Some(1), "{answer:?}");
                assert!(answer.content.contains("Read-only file system"), "{answer:?}");
            }
            assert_eq!(answers[3].exit_code, Some(EXIT_TOOL_ERROR), "{:?}", answers[3]);
            assert!(!Path::new(&by_editor).exists());
            assert!(!Path::new("/usr/agentmill-escape").exists());
        }

        assert!(!Path::new(&etc).exists(), "{etc} appeared on the host");
        assert!(!host_outside.join("planted").exists(), "a file was planted outside the sandbox");
        for dir in [Path::new("/"), &std::env::temp_dir()] {
            assert!(!dir.join(&host_file).exists(), "{host_file} landed in {}", dir.display());
        }
        std::fs::remove_dir_all(&host_outside).expect("clean up");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_sandbox_under_bwrap_has_no_network() {
    if !bwrap("process_network") {
        return;
    }
    let task = bundled_task(TASK);
    let (port, accepted) = listen(("127.0.0.1", 0));
    let connect = format!("timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' && echo CONNECTED");

    // The control: a plain process reaches the listener (the plain mode shares the host's network).
    let plain = process_sandbox(&task, Isolation::Plain, "network-control", None).await;
    assert!(run(&plain, &connect).await.output.contains("CONNECTED"), "the control cannot connect; the test proves nothing");
    // The client's connect returns once the kernel completes the handshake; the listener's
    // thread counts the accept a moment later, which on a loaded machine can come after.
    let by_control = accepted_at_least(&accepted, 1);
    assert_eq!(by_control, 1);

    let s = process_sandbox(&task, Isolation::Bubblewrap, "network", None).await;
    let dev = run(&s, "cat /proc/net/dev").await;
    let interfaces: Vec<&str> = dev.output.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(interfaces, ["lo"], "{}", dev.output);
    let attempt = run(&s, &connect).await;
    assert!(attempt.exit_code != 0 && !attempt.output.contains("CONNECTED"), "{attempt:?}");
    assert!(attempt.output.contains("refused"), "the sandbox's own loopback has nothing listening: {attempt:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), by_control, "the sandbox never reached the host's listener");
    // No route leaves the namespace: a listener in a container on a network this test creates,
    // which the host itself reaches, is unreachable from the sandbox.
    if agentmill_testkit::docker::skipped("the outside part of process_network (the outside listener runs in a container)") {
        return;
    }
    let listener = TestListener::start("process-network");
    let outside = format!("timeout 5 bash -c 'exec 3<>/dev/tcp/{}/{}' && echo CONNECTED", listener.ip, listener.port);
    assert!(run(&plain, &outside).await.output.contains("CONNECTED"), "the host cannot reach the listener; the test proves nothing");
    let by_plain = listener.accepted_at_least(1);
    assert_eq!(by_plain, 1);
    let attempt = run(&s, &outside).await;
    assert!(attempt.exit_code != 0 && attempt.output.contains("unreachable"), "{attempt:?}");
    assert_eq!(listener.accepted(), by_plain, "the sandbox never reached the listener");
}

/// A listener on the host that counts the connections it accepts.
/// The listener's count once it reaches `n`, or after 10 s, whichever comes first.
fn accepted_at_least(accepted: &AtomicUsize, n: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let count = accepted.load(Ordering::SeqCst);
        if count >= n || std::time::Instant::now() > deadline {
            return count;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn listen(addr: (&str, u16)) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(addr).expect("bind a listener on the host");
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
