//! The README's main job, run as a user runs it: `deploy/quickstart.sh --quick` (the same script
//! and code path, fewer rollouts and a shorter idle wait) — its summary, its checkpoint, and that
//! it leaves nothing running, at the end and after Ctrl-C.
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
    if std::env::var("AGENTMILL_NO_DOCKER").is_ok_and(|v| v == "1") {
        eprintln!("AGENTMILL_NO_DOCKER=1: the quickstart's worker runs episodes as processes");
        "process"
    } else {
        let ok = Command::new("docker").arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
        assert!(ok, "the quickstart test needs a Docker engine (`docker info` failed); set AGENTMILL_NO_DOCKER=1 to declare a run without Docker");
        "docker"
    }
}

fn quickstart(run_dir: &Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(workspace().join("deploy/quickstart.sh"))
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
fn quickstart_trains_on_every_bundled_task_and_leaves_a_checkpoint_transformers_loads() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    let started = Instant::now();
    let out = quickstart(&run_dir).output().expect("run deploy/quickstart.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs = |name: &str| std::fs::read_to_string(run_dir.join("logs").join(name)).unwrap_or_default();
    assert!(
        out.status.success(),
        "quickstart failed ({}):\n{stdout}\n{stderr}\n--- worker log tail:\n{}\n--- learner log tail:\n{}",
        out.status,
        tail(&logs("worker.log"), 40),
        tail(&logs("learner.log"), 40)
    );
    eprintln!("quickstart --quick took {:.0} s:\n{stdout}", started.elapsed().as_secs_f64());

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

    assert_all_stopped(&run_dir);
}

#[test]
fn ctrl_c_stops_everything_the_quickstart_started() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    let mut cmd = quickstart(&run_dir);
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
