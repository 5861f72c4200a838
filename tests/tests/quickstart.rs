//! The README's main job, run as a user runs it: `deploy/quickstart.sh --quick` (the same script
//! and code path, fewer rollouts and a shorter idle wait) — its summary, its checkpoint, and that
//! it leaves nothing running, at the end and after Ctrl-C. The first run is the closed loop
//! (`--closed-loop`): round 1 trains a checkpoint, round 2 runs the bundled tasks again with the
//! `openai` policy against llama.cpp's server serving that checkpoint, and the learner trains it.
//!
//! The two runs here take turns: each starts a whole cluster on this machine.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agentmill_tests::workspace;

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The sandbox to ask for: Docker, unless the run declares it has no engine.
fn sandbox() -> &'static str {
    if agentmill_testkit::docker::declared_absent() {
        eprintln!("AGENTMILL_NO_DOCKER=1: the quickstart's worker runs episodes as processes");
        "process"
    } else {
        if let Err(e) = agentmill_testkit::docker::engine() {
            panic!("the quickstart test needs a Docker engine ({e}); set AGENTMILL_NO_DOCKER=1 to declare a run without Docker");
        }
        "docker"
    }
}

fn quickstart(run_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(workspace().join("deploy/quickstart.sh"))
        .args(extra)
        .args(["--quick", "--profile", if cfg!(debug_assertions) { "dev" } else { "release" }])
        .args(["--sandbox", sandbox(), "--timeout", "8m", "--run-dir"])
        .arg(run_dir)
        .current_dir(workspace())
        .env_remove("AGENTMILL_ADDR")
        .env_remove("AGENTMILL_TOKEN");
    cmd
}

/// `KEY=value` lines of the run's cluster.env.
fn cluster_env(run_dir: &Path) -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(run_dir.join("cluster.env")).expect("the quickstart writes cluster.env");
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string())).collect()
}

/// Nothing the run started is left: processes, ports, containers.
fn assert_all_stopped(run_dir: &Path) {
    let env = cluster_env(run_dir);
    for pid in env["PIDS"].split_whitespace() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // A reused pid would be some other program; ours would still be named here.
        let ours = ["redis-server", "agentmill"].iter().any(|n| stat.contains(n));
        assert!(!ours, "process {pid} of the quickstart is still running: {stat}");
    }
    if let Some(pid) = env.get("LLAMA_PID") {
        // The model server of --closed-loop is a Python process: known by its command line.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&cmdline).contains("llama_cpp.server"), "llama.cpp's server (pid {pid}) is still running");
    }
    for port in env["PORTS"].split_whitespace() {
        let port: u16 = port.parse().expect("a port");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} is still open after the quickstart");
    }
    if sandbox() == "docker" {
        let out = Command::new("docker").args(["ps", "-aq", "--filter"]).arg(format!("label=org.agentmill.worker={}", env["WORKER_ID"])).output().expect("docker ps");
        assert!(out.stdout.is_empty(), "containers left behind: {}", String::from_utf8_lossy(&out.stdout));
    }
}

fn bundled_task_count() -> u64 {
    std::fs::read_to_string(workspace().join("deploy/tasks/tasks.jsonl")).expect("tasks.jsonl").lines().filter(|l| !l.trim().is_empty()).count() as u64
}

#[test]
fn quickstart_trains_on_every_bundled_task_and_closes_the_loop_on_its_checkpoint() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    let started = Instant::now();
    let out = quickstart(&run_dir, &["--closed-loop"]).output().expect("run deploy/quickstart.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs = |name: &str| std::fs::read_to_string(run_dir.join("logs").join(name)).unwrap_or_default();
    assert!(
        out.status.success(),
        "quickstart failed ({}):\n{stdout}\n{stderr}\n--- worker log tail:\n{}\n--- learner log tail:\n{}\n--- llama.cpp log tail:\n{}",
        out.status,
        tail(&logs("worker.log"), 40),
        tail(&logs("learner.log"), 40),
        tail(&logs("llama.log"), 20)
    );
    eprintln!("quickstart --quick --closed-loop took {:.0} s:\n{stdout}", started.elapsed().as_secs_f64());

    // Round 1 (replay): its report and the learner's summary as they were before round 2.
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).expect("summary.json")).expect("summary.json is JSON");
    let n = bundled_task_count();
    assert_eq!(summary["episode_tasks"], n, "{summary:#}");
    assert_eq!(summary["tasks_resolved"], n, "every bundled task resolves in every rollout: {summary:#}");
    assert_eq!(summary["rollouts_by_resolution"]["FULL"], 2 * n, "--quick runs 2 rollouts per task: {summary:#}");
    assert!(summary["synth_records"].as_u64().unwrap_or(0) > 0, "the synthesis job published ctx records: {summary:#}");
    let learner = &summary["learner"];
    assert_eq!(learner["stop_reason"], "until_idle", "{summary:#}");
    // Every record is trained or held out for evaluation (the quickstart holds out about 30%).
    let count = |k: &str| learner["records"][k].as_u64().unwrap_or(0);
    let held_out = learner["held_out"].as_u64().unwrap_or(0);
    assert_eq!(count("env_fail"), 0, "{summary:#}");
    assert_eq!(
        count("env_pass") + count("ctx") + held_out,
        2 * n + summary["synth_records"].as_u64().unwrap_or(0),
        "every record trained or held out: {summary:#}"
    );
    assert!(held_out > 0 && count("env_pass") > 0 && count("ctx") > 0, "{summary:#}");
    let eval = learner["eval_loss"].as_array().expect("a held-out loss, first and last");
    assert!(eval.iter().all(|l| l.as_f64().is_some_and(f64::is_finite)), "{summary:#}");
    assert!(stdout.contains("held-out loss "), "{stdout}");
    let (first, last) = (learner["loss_first"].as_f64().expect("loss_first"), learner["loss_last"].as_f64().expect("loss_last"));
    assert!(last < first, "the loss fell: {first} -> {last}");
    assert!(learner["tokens_trained"].as_u64().unwrap_or(0) > 0);

    // The report a person reads says the same.
    assert!(stdout.contains(&format!("{n} episode tasks: {n} resolved in every rollout")), "{stdout}");
    assert!(stdout.contains("loss "), "{stdout}");

    let check: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("transformers_check.json")).expect("transformers_check.json")).expect("JSON");
    assert_eq!(check["loaded"], true);
    assert_eq!(check["architecture"], "Qwen2ForCausalLM");
    assert!(check["loss"].as_f64().is_some_and(f64::is_finite), "{check}");
    let checkpoint = PathBuf::from(learner["checkpoint"].as_str().expect("a checkpoint"));
    assert!(checkpoint.join("model.safetensors").is_file() && checkpoint.join("config.json").is_file());

    closed_loop_round_two(&run_dir, &stdout, &summary, &checkpoint, &logs("llama.log"));
    assert_all_stopped(&run_dir);
}

/// Round 2 of `--closed-loop`: the bundled tasks under new ids with the `openai` policy against
/// llama.cpp's server serving round 1's `checkpoint`, its records naming that step, the report
/// showing both rounds, and the learner training round 2's failures as `env_fail`.
fn closed_loop_round_two(run_dir: &Path, stdout: &str, round1: &serde_json::Value, checkpoint: &Path, llama_log: &str) {
    let n = bundled_task_count();
    let step = checkpoint.file_name().expect("step-NNNNNNNN").to_string_lossy().into_owned();
    assert!(step.starts_with("step-"), "{step}");
    let rounds: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("rounds.json")).expect("rounds.json")).expect("rounds.json is JSON");
    let columns = rounds["columns"].as_array().expect("columns");
    assert_eq!(columns.iter().map(|c| c["value"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["1", "2"], "{rounds:#}");
    let (one, two) = (&columns[0], &columns[1]);
    assert_eq!(one["policies"], serde_json::json!({"replay": 2 * n}), "{rounds:#}");
    assert_eq!(one["report"]["rollouts_by_resolution"]["FULL"], 2 * n, "{rounds:#}");
    // Round 2: every rollout finished with the endpoint's policy, and every record says it came
    // from the model the server serves, at round 1's checkpoint step.
    assert_eq!(two["report"]["episode_tasks"], n, "{rounds:#}");
    assert_eq!(two["report"]["episodes"], 2 * n, "{rounds:#}");
    assert_eq!(two["policies"], serde_json::json!({"local": 2 * n}), "{rounds:#}");
    assert_eq!(two["served_by"], serde_json::json!({format!("local/agentmill-quickstart@{step}"): 2 * n}), "{rounds:#}");
    // The turns came from the server: its usage on each, its access log with the calls.
    assert!(two["model_turns"].as_u64().unwrap_or(0) >= 2 * n && two["completion_tokens"].as_u64().unwrap_or(0) > 0, "{rounds:#}");
    assert_eq!(one["model_turns"], 0, "replay calls no model: {rounds:#}");
    assert!(llama_log.contains("POST /v1/chat/completions"), "llama.cpp's server answered the worker:\n{}", tail(llama_log, 20));
    let exits = two["report"]["rollouts_by_exit"].as_object().expect("exits");
    assert!(exits.keys().all(|e| ["submitted", "max_steps", "context_overflow", "step_timeout"].contains(&e.as_str())), "round 2 episodes end on the agent's side: {rounds:#}");
    let two_full = two["report"]["rollouts_by_resolution"]["FULL"].as_u64().unwrap_or(0);
    // The learner resumed and trained round 2: its failures as env_fail, every record trained or
    // held out (the counts are over the whole run, round 1's included).
    let (l1, l2) = (&round1["learner"]["records"], &rounds["learner"]["records"]);
    let count = |l: &serde_json::Value, k: &str| l[k].as_u64().unwrap_or(0);
    let held = |r: &serde_json::Value| r["held_out"].as_u64().unwrap_or(0);
    let round1_learner: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("round1-learner-summary.json")).expect("round 1's learner summary")).expect("JSON");
    let (held1, held2) = (held(&round1["learner"]), held(&rounds["learner"]));
    let pass2 = count(l2, "env_pass") - count(l1, "env_pass");
    assert_eq!(count(l2, "env_fail") + pass2 + held2 - held1, 2 * n, "every round-2 record trained or held out: {rounds:#}\nround 1: {round1_learner:#}");
    assert!(count(l2, "env_fail") > 0 && pass2 <= two_full, "failed episodes trained as env_fail, never as env_pass: {rounds:#}");
    assert!(rounds["learner"]["steps"].as_u64().unwrap_or(0) > round1["learner"]["steps"].as_u64().unwrap_or(0), "the learner stepped on round 2: {rounds:#}");
    // Round 2's turns carry the tokens llama.cpp sampled (by text); the learner, on the served
    // checkpoint's tokenizer, finds each turn's tokens its own text and on its boundaries.
    let turns = rounds["learner"]["recorded_turns"].as_object().unwrap_or_else(|| panic!("no recorded turns: {rounds:#}"));
    let total: u64 = turns.values().filter_map(serde_json::Value::as_u64).sum();
    assert!(total > 0, "{rounds:#}");
    for never in ["other_text", "out_of_vocab", "misaligned"] {
        assert!(!turns.contains_key(never), "{never}: {rounds:#}");
    }
    eprintln!("closed loop: recorded turns {turns:?}, match share {:.2}", turns.get("match").and_then(serde_json::Value::as_u64).unwrap_or(0) as f64 / total as f64);
    // The side-by-side report a person reads, with round 2's episodes per hour (the figure).
    assert!(stdout.contains("both rounds"), "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("served by")).unwrap_or_else(|| panic!("no served-by line:\n{stdout}"));
    assert!(line.contains(&format!("local/agentmill-quickstart@{step}")), "{line}");
    let rate = stdout.lines().find(|l| l.starts_with("episodes per hour")).expect("an episodes-per-hour line");
    eprintln!("closed loop: {rate}");
}

#[test]
fn ctrl_c_stops_everything_the_quickstart_started() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    let mut cmd = quickstart(&run_dir, &[]);
    // Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start deploy/quickstart.sh");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let running = line.contains("running (Ctrl-C");
            let _ = tx.send(line);
            if running {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                let running = line.contains("running (Ctrl-C");
                seen.push(line);
                if running {
                    break;
                }
            }
            Err(_) => {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    let logs: Vec<String> = ["coordinator", "worker", "learner"]
                        .iter()
                        .map(|name| format!("--- {name} log tail:\n{}", tail(&std::fs::read_to_string(run_dir.join("logs").join(format!("{name}.log"))).unwrap_or_default(), 40)))
                        .collect();
                    panic!("quickstart exited ({status}) before its episodes ran:\n{}\n{}", seen.join("\n"), logs.join("\n"));
                }
                assert!(Instant::now() < deadline, "quickstart never started its episodes:\n{}", seen.join("\n"));
            }
        }
    }
    // Let episodes start (containers exist), then press Ctrl-C.
    std::thread::sleep(Duration::from_secs(3));
    let pgid = child.id();
    let status = Command::new("kill").args(["-INT", "--", &format!("-{pgid}")]).status().expect("kill");
    assert!(status.success());
    let stop_deadline = Instant::now() + Duration::from_secs(90);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(Instant::now() < stop_deadline, "quickstart did not stop within 90 s of Ctrl-C");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!exit.success(), "an interrupted quickstart exits non-zero: {exit}");
    assert_all_stopped(&run_dir);
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
