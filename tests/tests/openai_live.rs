//! The `openai` policy against a real model server: llama.cpp's (llama-cpp-python) serving the
//! learner's tiny checkpoint, with the grammar-constrained tool calls of
//! `tool_call_format = "xml"`. Bundled tasks run in real Docker containers through
//! `agentmill-worker run`; the barely trained model still writes calls the tools accept, so the
//! episodes end `submitted` or `max_steps` on real observations, and the records carry the
//! server's log-probabilities and usage. A call forced malformed (by a grammar that cuts it off)
//! becomes the tool's error observation, and the episode goes on.
//!
//! Real Docker: this fails loudly where no engine answers (see `docker_or_skip`).

use std::path::Path;
use std::process::Command;

use agentmill_proto::{ExitReason, Role, TrajectoryRecord};
use agentmill_tests::llama_server::{LlamaServer, MODEL_ALIAS, TURN_OUTCOMES, drift_check, tiny_checkpoint};
use agentmill_tests::{binary, docker_or_skip, unique, workspace};

/// The sampling seed of the first run.
const SEED: u64 = 11;

/// Bundled task rows (archive paths absolute) with at most `max_steps` agent steps.
fn rows(ids: &[&str], max_steps: u32) -> String {
    let text = std::fs::read_to_string(workspace().join("deploy/tasks/tasks.jsonl")).expect("bundled tasks");
    let mut out = String::new();
    for line in text.lines() {
        let mut row: serde_json::Value = serde_json::from_str(line).expect("a row");
        if !ids.contains(&row["instance_id"].as_str().unwrap_or("")) {
            continue;
        }
        let archive = workspace().join("deploy/tasks").join(row["archive"].as_str().expect("archive"));
        row["archive"] = archive.to_string_lossy().into_owned().into();
        row["limits"] = serde_json::json!({"max_steps": max_steps});
        out.push_str(&row.to_string());
        out.push('\n');
    }
    out
}

fn run_worker(dir: &Path, worker: &str, endpoint: &str, tasks: &str) -> Vec<TrajectoryRecord> {
    let config = dir.join("worker.toml");
    std::fs::write(&config, format!("[policy]\ndefault = \"replay\"\n\n[policy.endpoints.tiny]\n{endpoint}")).expect("config");
    let file = dir.join("tasks.jsonl");
    std::fs::write(&file, tasks).expect("tasks");
    let out = dir.join("records.jsonl");
    let o = Command::new(binary("agentmill-worker"))
        .arg("--config")
        .arg(&config)
        .args(["--worker-id", worker, "--episodes", "2", "run"])
        .arg(&file)
        .arg("--host-root")
        .arg(workspace().join("deploy/tasks"))
        .args(["--policy", "tiny", "--out"])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run agentmill-worker");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "agentmill-worker run failed:\n{stderr}");
    std::fs::read_to_string(&out).expect("records").lines().map(|l| serde_json::from_str(l).expect("a record")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn episodes_against_llama_cpp_end_on_real_observations_with_logprobs() {
    let Some(engine) = docker_or_skip("episodes_against_llama_cpp_end_on_real_observations_with_logprobs").await else { return };
    let server = LlamaServer::start(&tiny_checkpoint().gguf);
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = unique("w-llama");
    let endpoint = format!(
        "base_url = \"{}\"\nmodel = \"{MODEL_ALIAS}\"\napi_key_env = \"\"\ntemperature = 1.0\nmax_tokens = 600\nlogprobs = true\ntool_call_format = \"xml\"\ngrammar_max_value_chars = 40\nweight_version = \"tiny-init\"\n",
        server.base_url
    );
    // Sampled (a fixed seed: llama.cpp samples the same tokens again), so the barely trained
    // model calls more than `submit`.
    let sampled = format!("{endpoint}extra_body = {{ seed = {SEED} }}\n");
    let records = run_worker(dir.path(), &worker, &sampled, &rows(&["agentmill__calc-1", "agentmill__inifile-1"], 4));
    assert_eq!(records.len(), 2, "one record per episode");
    let tools: Vec<String> = ["bash", "str_replace_editor", "submit"].map(String::from).to_vec();
    for r in &records {
        let exit = r.exit_reason.expect("an exit reason");
        assert!(matches!(exit, ExitReason::Submitted | ExitReason::MaxSteps), "{}: {exit:?} ({:?})", r.task_id, r.error);
        let policy = r.provenance.policy.as_ref().expect("policy info");
        assert_eq!((policy.name.as_str(), policy.model.as_str(), policy.weight_version.as_str()), ("tiny", MODEL_ALIAS, "tiny-init"));
        let turns: Vec<_> = r.messages.iter().filter(|m| m.role == Role::Assistant).collect();
        let calls: Vec<&str> = turns.iter().flat_map(|t| t.tool_calls.iter().map(|c| c.function.name.as_str())).collect();
        eprintln!("{}: {exit:?} after {} turns, calls {calls:?}", r.task_id, turns.len());
        assert!(!turns.is_empty() && turns.len() <= 4, "{}: {} turns", r.task_id, turns.len());
        for turn in &turns {
            // The grammar admits exactly one call of a known tool with JSON-object arguments.
            assert_eq!(turn.tool_calls.len(), 1, "{}: {turn:?}", r.task_id);
            let call = &turn.tool_calls[0];
            assert!(tools.contains(&call.function.name), "{}: {call:?}", r.task_id);
            let args: serde_json::Value = serde_json::from_str(&call.function.arguments).expect("JSON arguments");
            assert!(args.is_object(), "{args}");
            let usage = turn.usage.clone().expect("usage per turn");
            let logprobs = turn.logprobs.as_ref().expect("the server's logprobs");
            assert_eq!(logprobs.len() as u64, usage.completion_tokens, "one logprob per sampled token");
            // llama.cpp gives no ids; the sampled tokens' texts stand in, one per token.
            assert_eq!(turn.token_pieces.as_ref().map(Vec::len), Some(logprobs.len()), "the sampled tokens' texts are kept");
            assert!(usage.prompt_tokens > 0 && logprobs.iter().all(|l| *l <= 0.0));
        }
        // Environmentally native: each call was answered by the sandbox.
        let observations: Vec<_> = r.messages.iter().filter(|m| m.role == Role::Tool).collect();
        assert_eq!(observations.len(), turns.len(), "{}: every call observed", r.task_id);
        assert!(observations.iter().all(|m| m.exit_code.is_some()), "{}: observations carry exit codes", r.task_id);
    }
    // The sandbox's real answers: what bash printed for the model's commands (a random command
    // is mostly "command not found", exit 127), not a canned reply.
    let bash_answers: Vec<(&str, Option<i64>)> = records
        .iter()
        .flat_map(|r| r.messages.iter().filter(|m| m.role == Role::Tool && m.content.contains("bash:")).map(|m| (m.content.as_str(), m.exit_code)))
        .collect();
    eprintln!("bash observations: {bash_answers:?}");
    assert!(bash_answers.iter().any(|(_, code)| code.is_some_and(|c| c != 0)), "some command failed in the sandbox as bash reports it");
    // The learner's drift check with the served checkpoint's tokenizer: every turn is the text
    // the model wrote, on token boundaries, in its vocabulary (characters the model sampled in
    // bytes, which llama.cpp names by no text, rebuilt from the turn's text).
    let turns = drift_check(&records, &tiny_checkpoint().dir.join("tokenizer.json"));
    let n = |k: &str| turns[k].as_u64().unwrap_or_default();
    let total = TURN_OUTCOMES.iter().map(|k| n(k)).sum::<u64>();
    let assistant_turns = records.iter().flat_map(|r| &r.messages).filter(|m| m.role == Role::Assistant).count() as u64;
    assert_eq!(total, assistant_turns, "every turn carries its sampled tokens: {turns}");
    assert_eq!((n("other_text"), n("out_of_vocab"), n("misaligned")), (0, 0, 0), "{turns}");
    eprintln!("drift check of the openai policy's turns: {turns} (match share {:.2})", n("match") as f64 / total as f64);
    assert!(engine.containers_of(&worker).await.expect("list").is_empty(), "no container left behind");

    // A malformed call, forced: the grammar ends the call before its closing tags. The tools
    // answer with an error observation and the episode runs on to max_steps.
    let forced = format!("{endpoint}extra_body = {{ grammar = 'root ::= \"<function=bash>\\n<parameter=command>\\nls\"' }}\n");
    let records = run_worker(dir.path(), &worker, &forced, &rows(&["agentmill__calc-1"], 2));
    let r = &records[0];
    assert_eq!(r.exit_reason, Some(ExitReason::MaxSteps), "{:?}", r.error);
    let observations: Vec<_> = r.messages.iter().filter(|m| m.role == Role::Tool).collect();
    assert_eq!(observations.len(), 2);
    for o in observations {
        assert!(o.content.contains("not valid JSON"), "{}", o.content);
    }
    assert!(engine.containers_of(&worker).await.expect("list").is_empty(), "no container left behind");
}
