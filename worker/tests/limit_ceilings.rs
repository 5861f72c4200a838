//! A task's limits have a ceiling: a task asking for `u32::MAX` processes, `u64::MAX` bytes of
//! memory, a thousand CPUs and `u32::MAX`-second timeouts runs with the worker's `[limits] max_*`
//! instead. The episode runs for real (the replay policy on a bundled task, real Docker); while it
//! runs the test inspects every container of the episode and reads the `HostConfig` Docker made
//! it with, and the record's `provenance.limits` names the limits applied.
//!
//! Without Docker the test fails loudly unless the run declares `AGENTMILL_NO_DOCKER=1`.

mod sandbox_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use agentmill_proto::ExitReason;
use agentmill_worker::config::WorkerConfig;
use agentmill_worker::episode::{Backend, EpisodeLease, run_episode};
use agentmill_worker::host::episode_env;
use agentmill_worker::metrics::WorkerMetrics;
use sandbox_support::{Reaper, TASK, bundled_task, docker, unique, workspace};
use tokio_util::sync::CancellationToken;

/// A container's (pids_limit, memory, memory_swap, nano_cpus), as Docker reports its HostConfig.
type Seen = (Option<i64>, Option<i64>, Option<i64>, Option<i64>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_asking_for_u32_max_limits_runs_with_the_worker_ceilings() {
    let worker = unique("ceilings");
    let Some(engine) = docker("a_task_asking_for_u32_max_limits_runs_with_the_worker_ceilings", &worker).await else { return };
    let _reaper = Reaper(worker.clone());

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("worker.toml");
    let tasks = std::fs::canonicalize(workspace().join("deploy/tasks")).expect("the bundled tasks folder");
    std::fs::write(
        &config,
        format!(
            "[limits]\nmax_cpus = 0.5\nmax_memory = \"768m\"\nmax_pids = 200\nmax_test_timeout = \"5m\"\nmax_step_timeout = \"90s\"\nmax_episode_timeout = \"10m\"\n\
             test_timeout = \"5m\"\ncpus = 0.5\nmemory = \"512m\"\npids = 128\n[agent]\nstep_timeout_s = 60\nepisode_timeout_s = 600\n[inputs]\nhost_roots = [{:?}]\n",
            tasks.display().to_string()
        ),
    )
    .expect("write the config");
    let cfg = WorkerConfig::load(Some(&config), &Default::default()).expect("the config loads");
    let env = episode_env(&cfg, Backend::Docker(engine.clone()), worker.clone(), &WorkerMetrics::new()).expect("the episode environment");

    let mut task = bundled_task(TASK);
    task.policy = Some("replay".into());
    task.limits.pids = Some(u32::MAX);
    task.limits.memory = Some(u64::from(u32::MAX));
    task.limits.cpus = Some(1000.0);
    task.limits.step_timeout_s = Some(u32::MAX);
    task.limits.episode_timeout_s = Some(u32::MAX);
    task.limits.test_timeout_s = Some(u32::MAX);

    // Every container of the episode, inspected while the episode runs.
    let done = CancellationToken::new();
    let watcher = {
        let (engine, worker, done) = (engine.clone(), worker.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
            while !done.is_cancelled() {
                for id in engine.containers_of(&worker).await.unwrap_or_default() {
                    if seen.contains_key(&id) {
                        continue;
                    }
                    if let Ok(c) = engine.client().inspect_container(&id, None).await
                        && let Some(h) = c.host_config
                    {
                        seen.insert(id, (h.pids_limit, h.memory, h.memory_swap, h.nano_cpus));
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            seen
        })
    };
    let id = EpisodeLease { episode: unique("ceilings-ep"), rollout: 0, attempt: 1, queued_at_unix_ms: 0 };
    let record = run_episode(Arc::clone(&env), task, id, |_| {}, CancellationToken::new()).await;
    done.cancel();
    let seen = watcher.await.expect("the watcher");

    assert_eq!(record.exit_reason, Some(ExitReason::Submitted), "the episode ran: {:?}", record.error);
    assert_eq!(record.reward, Some(1.0), "the replay resolves the task under the ceilings");
    assert!(!seen.is_empty(), "no container of the episode was seen while it ran");
    for (id, (pids, memory, swap, nano_cpus)) in &seen {
        assert_eq!(*pids, Some(200), "container {id}: pids_limit is the worker's max_pids, not the task's u32::MAX");
        assert_eq!(*memory, Some(768 << 20), "container {id}: memory is the worker's max_memory, not the task's 4 GiB (u32::MAX bytes)");
        assert_eq!(*swap, Some(768 << 20), "container {id}: swap pinned to the memory ceiling");
        assert_eq!(*nano_cpus, Some(500_000_000), "container {id}: CPUs are the worker's max_cpus, not the task's 1000");
    }
    let applied = record.provenance.limits.as_ref().expect("the record names the limits applied");
    assert_eq!(
        (applied.pids, applied.memory, applied.cpus, applied.step_timeout_s, applied.episode_timeout_s, applied.test_timeout_s),
        (Some(200), Some(768 << 20), Some(0.5), Some(90), Some(600), Some(300)),
        "the record's provenance.limits are the ceilings"
    );
}
