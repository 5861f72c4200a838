//! Disk limits on any storage driver: a container whose engine cannot enforce `--storage-opt
//! size` (fuse-overlayfs, overlay2 over ext4, vfs, ...) gets a per-file size limit and a watchdog
//! that kills it once its writable layer outgrows the limit; every operation on it then fails
//! with `SandboxError::DiskLimit`, and an agent episode ends `sandbox_error` with that message.
//!
//! Real Docker, nothing mocked; without Docker the tests fail loudly unless the run declares
//! `AGENTMILL_NO_DOCKER=1`. Each test labels its containers with its own worker name and reaps
//! them at the start and (through [`Reaper`]) at the end.
//!
//! On an engine whose storage driver does support `--storage-opt size` (overlay2 over xfs with
//! `pquota`, btrfs, zfs) the limit is the driver's and there is no watchdog: the runaway test
//! then checks for a real ENOSPC instead, and the watchdog-only tests say they have nothing to
//! check. That path — the `storage_opt` as before — cannot be exercised on an engine without it.

mod sandbox_support;

use std::time::{Duration, Instant};

use agentmill_proto::ExitReason;
use agentmill_worker::agent::{AgentConfig, run_agent};
use agentmill_worker::metrics::{WorkerMetrics, disk_limit_kills};
use agentmill_worker::sandbox::docker::{DockerContainer, DockerEngine};
use agentmill_worker::sandbox::{ExecRequest, SandboxError, SandboxLimits, SandboxSpec};
use bollard::query_parameters::InspectContainerOptionsBuilder;
use sandbox_support::*;
use tokio_util::sync::CancellationToken;

const MB: u64 = 1 << 20;

/// The limit every limited container here gets.
const LIMIT: u64 = 50 * MB;

/// What a runaway may have written before it was stopped, at most (it asks for 400 MB).
const RUNAWAY_CEILING: u64 = 300 * MB;

/// Long enough for the watchdog to look at a container at least once more, even on a driver
/// whose size computation takes seconds (it waits at least a poll's own duration between polls).
const A_FEW_POLLS: Duration = Duration::from_secs(8);

fn limits(disk: Option<u64>) -> SandboxLimits {
    SandboxLimits { cpus: None, memory_bytes: Some(512 * MB), pids: Some(256), disk_bytes: disk }
}

async fn bare_container(engine: &DockerEngine, worker: &str, disk: Option<u64>, tag: &str) -> DockerContainer {
    let mut spec = SandboxSpec::new(SANDBOX_IMAGE, "/work", worker, unique(tag));
    spec.limits = limits(disk);
    engine.start(&spec).await.unwrap_or_else(|e| panic!("start a container with disk limit {disk:?}: {e}"))
}

fn long(command: &str) -> ExecRequest {
    ExecRequest::new(command).timeout(Duration::from_secs(120))
}

/// Waits until `worker` owns no container, failing after `within`.
async fn wait_until_gone(engine: &DockerEngine, worker: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = engine.containers_of(worker).await.expect("list the worker's containers");
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "containers still there {within:?} after the kill: {left:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the container's disk watchdog has ended, failing after `within`.
async fn wait_watchdog_ended(c: &DockerContainer, within: Duration, what: &str) -> Duration {
    let started = Instant::now();
    while c.disk_watchdog_running() {
        assert!(started.elapsed() < within, "the disk watchdog still runs {within:?} after {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// The written size a `DiskLimit` error names, checked against the limit and the ceiling.
fn check_disk_limit_error(e: &SandboxError) -> u64 {
    let SandboxError::DiskLimit { written, limit } = e else { panic!("expected the disk-limit error, got: {e}") };
    assert_eq!(*limit, LIMIT);
    assert!(*written > LIMIT, "tripped at {written} bytes, under the limit");
    assert!(*written < RUNAWAY_CEILING, "the runaway wrote {written} bytes before it was stopped; the host took far more than the limit");
    let text = e.to_string();
    assert!(text.starts_with("disk limit exceeded: the container wrote ") && text.contains("its limit is 50 MB"), "{text}");
    *written
}

// ---------------------------------------------------------------------------------------------

/// (a) 20 MB fits under a 50 MB limit; a 400 MB `dd` is stopped, later commands fail with the
/// disk-limit error, the container is removed and the host got nowhere near 400 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_disk_limit_stops_a_runaway_write() {
    let worker = "disk-limit-runaway";
    let Some(engine) = docker("docker_disk_limit_stops_a_runaway_write", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let metrics = WorkerMetrics::new();
    let kills_before = disk_limit_kills().get();
    let c = bare_container(&engine, worker, Some(LIMIT), "runaway").await;

    let small = c.exec(&long("dd if=/dev/zero of=/tmp/small bs=1M count=20 status=none")).await.expect("write 20 MB");
    assert_eq!(small.exit_code, 0, "writing 20 MB under a 50 MB limit failed:\n{}", small.output);
    // Still fine after the watchdog had a look (or several) at the 20 MB.
    tokio::time::sleep(A_FEW_POLLS).await;
    let after = c.exec(&long("test -s /tmp/small && echo ok")).await.expect("the container lives on with 20 MB written");
    assert_eq!(after.output.trim(), "ok");
    assert!(c.is_running().await);

    if !c.has_disk_watchdog() {
        // The storage driver enforces the limit itself: a real ENOSPC, the container lives.
        eprintln!("the engine enforces --storage-opt size: checking ENOSPC instead of the watchdog");
        assert!(!engine.disk_limits_by_watchdog());
        let out = c.exec(&long("dd if=/dev/zero of=/tmp/big bs=1M count=400 status=none")).await.expect("dd runs");
        assert_ne!(out.exit_code, 0, "400 MB fitted under a 50 MB limit");
        assert!(out.output.contains("No space left on device"), "{}", out.output);
        assert!(c.is_running().await);
        remove_and_check_none_left(&engine, worker, &c).await;
        return;
    }
    assert!(engine.disk_limits_by_watchdog(), "a watched container on an engine that takes --storage-opt");
    assert!(c.disk_watchdog_running());

    let started = Instant::now();
    let error = match c.exec(&long("dd if=/dev/zero of=/tmp/big bs=1M count=400 status=none; echo dd exit $?")).await {
        // The per-file limit (the limit itself) stopped dd at once (SIGXFSZ: 128 + 25); the
        // watchdog sees the 70 MB layer at its next poll, so a later command gets the error.
        Ok(out) => {
            assert!(out.output.contains("dd exit 153"), "dd was not stopped by the per-file limit:\n{}", out.output);
            eprintln!("dd stopped by the per-file size limit after {:?}", started.elapsed());
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match c.exec(&ExecRequest::new("true")).await {
                    Ok(_) => assert!(Instant::now() < deadline, "60 s after the runaway write the container still runs commands"),
                    Err(e) => break e,
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // The watchdog was faster than the exec's end.
        Err(e) => e,
    };
    let written = check_disk_limit_error(&error);
    eprintln!("the disk watchdog stopped the container {:?} after the runaway began, at {written} bytes written", started.elapsed());

    // Every later operation fails the same way, and the container is gone.
    let again = c.exec(&ExecRequest::new("echo still here")).await.expect_err("a command after the kill");
    assert_eq!(check_disk_limit_error(&again), written);
    let read = c.read_file("/tmp/small").await.expect_err("a read after the kill");
    check_disk_limit_error(&read);
    let write = agentmill_worker::sandbox::Sandbox::write_file(&c, "/tmp/x", b"x").await.expect_err("a write after the kill");
    check_disk_limit_error(&write);
    assert!(!c.is_running().await);
    wait_until_gone(&engine, worker, Duration::from_secs(30)).await;
    wait_watchdog_ended(&c, Duration::from_secs(5), "the kill").await;

    assert!(disk_limit_kills().get() > kills_before, "the kill was not counted");
    let rendered = metrics.render();
    assert!(rendered.lines().any(|l| l.starts_with("agentmill_worker_disk_limit_kills_total ")), "{rendered}");
    c.remove().await; // a no-op on a removed container
}

/// A runaway spread over many small files (which the per-file limit does not stop) in a real
/// agent episode: the command still running is failed with the disk-limit error and the episode
/// ends `sandbox_error` with that message, not as a model result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_disk_limit_fails_the_running_command_and_ends_the_episode_as_sandbox_error() {
    let worker = "disk-limit-episode";
    let Some(engine) = docker("docker_disk_limit_episode", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let mut task = bundled_task(TASK);
    let c = task_container(&engine, worker, &task, limits(Some(LIMIT)), false, "episode").await;
    if !c.has_disk_watchdog() {
        eprintln!("SKIPPED the rest of docker_disk_limit_episode: this engine enforces --storage-opt size, there is no watchdog");
        remove_and_check_none_left(&engine, worker, &c).await;
        return;
    }

    // 1 MB files, a few dozen per second: 400 MB would take far longer than the watchdog.
    let writer = "for i in $(seq 1 400); do dd if=/dev/zero of=/tmp/f$i bs=1M count=1 status=none || exit 1; sleep 0.05; done; echo wrote all";
    task.limits.step_timeout_s = Some(120);
    task.limits.max_steps = Some(3);
    let mut policy = Scripted::new(vec![bash(writer), submit()]);
    let started = Instant::now();
    let outcome = run_agent(&mut policy, &c, &task, &AgentConfig::default(), &CancellationToken::new()).await;
    eprintln!("the episode ended {:?} after it began: {:?}", started.elapsed(), outcome.error);
    assert_eq!(outcome.exit_reason, ExitReason::SandboxError, "{:?}", outcome.error);
    let error = outcome.error.as_deref().unwrap_or_default();
    assert!(error.contains("disk limit exceeded: the container wrote ") && error.contains("its limit is 50 MB"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(60), "the runaway ran for {:?}", started.elapsed());
    let e = c.exec(&ExecRequest::new("true")).await.expect_err("the container was stopped");
    let written = check_disk_limit_error(&e);
    eprintln!("stopped at {written} bytes written");
    wait_until_gone(&engine, worker, Duration::from_secs(30)).await;
    wait_watchdog_ended(&c, Duration::from_secs(5), "the kill").await;
}

/// (b) Without a disk limit there is no watchdog, and 100 MB is just written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_without_a_disk_limit_has_no_watchdog() {
    let worker = "disk-limit-none";
    let Some(engine) = docker("docker_without_a_disk_limit_has_no_watchdog", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let c = bare_container(&engine, worker, None, "unlimited").await;
    assert!(!c.has_disk_watchdog());
    assert!(!c.disk_watchdog_running());
    let out = c.exec(&long("dd if=/dev/zero of=/tmp/big bs=1M count=100 status=none && stat -c %s /tmp/big")).await.expect("write 100 MB");
    assert_eq!((out.exit_code, out.output.trim()), (0, (100 * MB).to_string().as_str()), "writing 100 MB without a limit failed:\n{}", out.output);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ulimit = c.exec(&ExecRequest::new("ulimit -f")).await.expect("ulimit");
    assert_eq!(ulimit.output.trim(), "unlimited", "a container without a disk limit got a per-file limit");
    assert!(c.is_running().await);
    remove_and_check_none_left(&engine, worker, &c).await;
}

/// The watchdog neither leaks nor keeps its container alive: removed through the handle it ends
/// at once, removed behind its back (the reaper, `docker rm`) at its next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_disk_watchdog_ends_when_its_container_is_removed() {
    let worker = "disk-limit-watchdog-end";
    let Some(engine) = docker("docker_disk_watchdog_ends_when_its_container_is_removed", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let by_handle = bare_container(&engine, worker, Some(LIMIT), "by-handle").await;
    if !by_handle.has_disk_watchdog() {
        eprintln!("SKIPPED the rest of docker_disk_watchdog_ends: this engine enforces --storage-opt size, there is no watchdog");
        remove_and_check_none_left(&engine, worker, &by_handle).await;
        return;
    }
    let behind_its_back = bare_container(&engine, worker, Some(LIMIT), "behind-its-back").await;
    assert!(by_handle.disk_watchdog_running() && behind_its_back.disk_watchdog_running());
    // The per-file limit is the disk limit (bash counts 1024-byte blocks).
    let ulimit = by_handle.exec(&ExecRequest::new("ulimit -f")).await.expect("ulimit");
    assert_eq!(ulimit.output.trim(), (LIMIT / 1024).to_string());

    by_handle.remove().await;
    let took = wait_watchdog_ended(&by_handle, Duration::from_secs(2), "remove()").await;
    eprintln!("the watchdog ended {took:?} after remove()");
    assert!(behind_its_back.disk_watchdog_running(), "removing one container ended another's watchdog");

    engine.remove_by_id(behind_its_back.id()).await;
    let took = wait_watchdog_ended(&behind_its_back, Duration::from_secs(60), "a removal by id").await;
    eprintln!("the watchdog ended {took:?} after a removal by id");
    let left = engine.containers_of(worker).await.expect("list the worker's containers");
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

/// What one watchdog poll (an inspect with `size=true`) costs on a container that wrote a few
/// thousand files, against a plain inspect. Printed (run with `--nocapture`); the test only
/// insists that the engine reports the size the watchdog reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_disk_poll_cost() {
    let worker = "disk-limit-poll-cost";
    let Some(engine) = docker("docker_disk_poll_cost", worker).await else { return };
    let _reaper = Reaper(worker.into());
    let c = bare_container(&engine, worker, Some(LIMIT), "poll-cost").await;
    let files = 3000;
    let out = c
        .exec(&long(&format!("mkdir -p /tmp/many && cd /tmp/many && for i in $(seq 1 {files}); do head -c 1024 /dev/urandom > f$i; done && ls | wc -l")))
        .await
        .expect("write the files");
    assert_eq!(out.output.trim(), files.to_string(), "{}", out.output);
    let docker = engine.client();
    let driver = docker.info().await.ok().and_then(|i| i.driver).unwrap_or_default();
    let time = |size: bool| {
        let id = c.id().to_string();
        async move {
            let mut costs = Vec::new();
            let mut size_rw = None;
            for _ in 0..5 {
                let started = Instant::now();
                let info = docker.inspect_container(&id, Some(InspectContainerOptionsBuilder::new().size(size).build())).await.expect("inspect");
                costs.push(started.elapsed());
                size_rw = info.size_rw;
            }
            costs.sort();
            (costs, size_rw)
        }
    };
    let (sized, size_rw) = time(true).await;
    let (plain, _) = time(false).await;
    eprintln!(
        "storage driver {driver}, {files} files written (size_rw {size_rw:?}): inspect with size=true min {:?} median {:?} max {:?}; \
         plain inspect min {:?} median {:?} max {:?}; watchdog running: {}",
        sized[0],
        sized[2],
        sized[4],
        plain[0],
        plain[2],
        plain[4],
        c.disk_watchdog_running()
    );
    let size_rw = size_rw.expect("the engine reports SizeRw, which the watchdog reads");
    assert!(size_rw >= (files * 1024) as i64, "size_rw {size_rw} misses the {files} files");
    remove_and_check_none_left(&engine, worker, &c).await;
}
