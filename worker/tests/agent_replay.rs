//! The replay policy drives every bundled task's gold patch through the real tools in a real
//! sandbox, and the patch it submits resolves the task when graded in a fresh container — the
//! whole agent layer end to end, without a model. The trajectory's observations are checked to
//! be real: the `view` output holds the file's real lines, the test run's output is pytest's.

mod agent_support;
mod sandbox_support;

use agentmill_proto::{ExitReason, Resolution, Role, Task};
use agentmill_worker::agent::policy::ReplayPolicy;
use agentmill_worker::agent::{AgentConfig, AgentOutcome, run_agent};
use agentmill_worker::sandbox::docker::DockerEngine;
use agent_support::{grade_fresh, task_sandbox};
use futures::StreamExt;
use sandbox_support::{bundled_tasks, docker};
use tokio_util::sync::CancellationToken;

const WORKER: &str = "agent-replay";

async fn replay(engine: &DockerEngine, task: Task) -> String {
    let id = task.instance_id.clone();
    let sandbox = task_sandbox(engine, WORKER, &task, "replay").await;
    let mut policy = ReplayPolicy::new(&task).unwrap_or_else(|e| panic!("{id}: {e}"));
    let config = AgentConfig { step_timeout_s: 120, ..AgentConfig::default() };
    let outcome = run_agent(&mut policy, &*sandbox, &task, &config, &CancellationToken::new()).await;
    drop(sandbox);
    assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{id}: {:?}\n{}", outcome.error, transcript(&outcome));
    check_observations(&task, &outcome);
    let grading = grade_fresh(engine, WORKER, &task, &outcome.model_patch).await;
    assert_eq!(grading.resolution, Resolution::Full, "{id}: the replayed patch does not resolve: {grading:#?}\n{}", outcome.model_patch);
    format!("{id}: {} steps, {} bytes of patch, FULL", outcome.steps, outcome.model_patch.len())
}

/// The observations are the sandbox's real output.
fn check_observations(task: &Task, outcome: &AgentOutcome) {
    let id = &task.instance_id;
    assert_eq!(outcome.tools.len(), 3, "{id}: the record offers the three tools");
    assert_eq!(outcome.policy.name, "replay");
    assert_eq!(outcome.messages[0].role, Role::System);
    assert!(outcome.messages[1].content.contains(task.problem_statement.trim()), "{id}: the task message carries the issue");
    for (i, m) in outcome.messages.iter().enumerate().filter(|(_, m)| m.role == Role::Tool) {
        let asked = &outcome.messages[..i].iter().rev().find(|m| m.role == Role::Assistant).expect("an assistant turn before each tool message").tool_calls;
        assert!(asked.iter().any(|c| Some(&c.id) == m.tool_call_id.as_ref()), "{id}: tool message {i} answers a call of the turn before");
        assert!(m.name.is_some() && m.exit_code.is_some() && m.duration_ms.is_some() && m.truncated.is_some(), "{id}: message {i} lacks metadata: {m:?}");
    }
    // Every view of a file shows that file's real lines (here: the first removed or context line
    // of the gold patch's first hunk, as it is at the base commit).
    let first_line = task
        .patch
        .lines()
        .skip_while(|l| !l.starts_with("@@"))
        .skip(1)
        .find(|l| (l.starts_with(' ') || l.starts_with('-')) && l.len() > 4)
        .map(|l| l[1..].to_string());
    let views: Vec<&str> = outcome
        .messages
        .iter()
        .filter(|m| m.role == Role::Tool && m.content.starts_with("Here's the result of running `cat -n`"))
        .map(|m| m.content.as_str())
        .collect();
    if let Some(line) = first_line {
        assert!(views.iter().any(|v| v.contains(&format!("\t{line}\n"))), "{id}: no view shows the real line {line:?}: {views:#?}");
    }
    // The test run is pytest's own output, and the fix keeps the existing tests passing.
    let test_run = outcome
        .messages
        .iter()
        .filter(|m| m.role == Role::Tool && m.name.as_deref() == Some("bash"))
        .find(|m| m.content.contains(" passed"))
        .unwrap_or_else(|| panic!("{id}: no pytest run in the trajectory:\n{}", transcript(outcome)));
    assert_eq!(test_run.exit_code, Some(0), "{id}: the existing tests fail after the fix:\n{}", test_run.content);
    assert!(
        test_run.content.lines().any(|l| l.contains(" passed in ") && l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit())),
        "{id}: not pytest's summary line:\n{}",
        test_run.content
    );
    let last = outcome.messages.last().expect("messages");
    assert_eq!(last.name.as_deref(), Some("submit"));
    assert!(last.content.contains(&outcome.model_patch), "{id}: the submit observation shows the patch");
}

fn transcript(outcome: &AgentOutcome) -> String {
    outcome
        .messages
        .iter()
        .map(|m| {
            let calls: Vec<String> = m.tool_calls.iter().map(|c| format!("{}({})", c.function.name, c.function.arguments)).collect();
            format!("[{:?}] {} {}", m.role, m.content.chars().take(600).collect::<String>(), calls.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_resolves_every_bundled_task_through_the_real_tools() {
    let Some(engine) = docker("replay_resolves_every_bundled_task_through_the_real_tools", WORKER).await else { return };
    let tasks = bundled_tasks();
    assert!(tasks.len() >= 9, "expected the bundled corpus, found {} tasks", tasks.len());
    let engine_ref = &engine;
    let reports: Vec<String> = futures::stream::iter(tasks).map(|t| replay(engine_ref, t)).buffer_unordered(2).collect().await;
    for r in &reports {
        eprintln!("{r}");
    }
    assert!(engine.containers_of(WORKER).await.expect("list containers").is_empty(), "containers were left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_widens_a_hunk_whose_text_occurs_twice_until_it_is_unique() {
    let worker = "agent-replay-widen";
    let Some(engine) = docker("replay_widens_a_hunk_whose_text_occurs_twice_until_it_is_unique", worker).await else { return };
    let c = agent_support::start(&engine, worker, "/testbed", "widen").await;
    let block = |name: &str, value: u32| format!("class {name}:\n    def f(self):\n        x = {value}\n        return x\n");
    let before = format!("{}\n{}", block("A", 1), block("B", 1));
    let after = format!("{}\n{}", block("A", 1), block("B", 2));
    // The gold patch, made by git with one line of context: its pre-image occurs in both classes.
    let script = format!(
        "set -e\nprintf '%s' {before} > dup.py\n{init}\nprintf '%s' {after} > dup.py\ngit diff -U1 > /agentmill/gold.patch\ngit checkout -q -- dup.py\n",
        before = agentmill_worker::shell::quote(&before),
        after = agentmill_worker::shell::quote(&after),
        init = agentmill_worker::repo::init_archive_repo_script(),
    );
    let made = agent_support::run(&c, &format!("mkdir -p /agentmill && {{ {script} }} && cat /agentmill/gold.patch")).await;
    assert_eq!(made.exit_code, 0, "{}", made.output);
    let patch = made.output.split_once("diff --git").map(|(_, p)| format!("diff --git{p}")).expect("a diff");
    let row = serde_json::json!({
        "instance_id": "local__dup-1", "repo": "local/dup", "base_commit": "", "problem_statement": "B.f returns 1",
        "patch": patch, "FAIL_TO_PASS": ["tests/test_dup.py::test_b"], "test_cmd": "true",
    });
    let task = Task::from_json_row(&row.to_string()).expect("a valid task");
    let mut policy = ReplayPolicy::new(&task).expect("plans the replay");
    let outcome = run_agent(&mut policy, &*c, &task, &AgentConfig::default(), &CancellationToken::new()).await;
    assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{:?}\n{}", outcome.error, transcript(&outcome));
    let refused = outcome.messages.iter().find(|m| m.content.contains("occurs 2 times")).map(|m| m.content.clone());
    assert!(refused.is_some_and(|r| r.contains("lines 2, 7")), "the first str_replace must be refused as ambiguous:\n{}", transcript(&outcome));
    let content = agentmill_worker::sandbox::Sandbox::read_file(&*c, "/testbed/dup.py").await.expect("read");
    assert_eq!(String::from_utf8_lossy(&content), after, "only class B changed");
    assert!(outcome.model_patch.contains("-        x = 1\n+        x = 2\n"), "{}", outcome.model_patch);
}
