//! mini-swe-agent (from PyPI, installed offline into agentmill/harness-mini-swe-agent:2.4.6 by
//! deploy/harness/build.sh) plays a bundled task in a real sandbox, through the worker's
//! per-episode LLM gateway, in the worker's own episode path (`run_episode`: init in the
//! harness's image, the harness, grading in a fresh container of the task's image).
//!
//! Between the gateway and the model server sits a recorder written here, which keeps every
//! body that crossed it, so the test knows independently what the server returned. The server is
//! a scripted OpenAI-compatible peer (this file) whose turns make mini-swe-agent probe the
//! network, fix the bug its own way, and submit.
//!
//! What is proved: the record's assistant turns equal, byte for byte, the server's (content,
//! tool-call ids, names and argument strings, token ids and logprobs); every call is in
//! `model_calls` with the server's body byte for byte and the harness's requests rebuilt exactly;
//! the harness reached the gateway and nothing else (an address on a network this test creates
//! and the host's address on that network's bridge both answer a control container, and not the
//! harness); the graded patch is the harness's own (it carries its marker) and resolves FULL.
//!
//! The same path also runs against llama.cpp's server (llama-cpp-python) serving the learner's
//! tiny checkpoint, with the gateway speaking the paper's text format to the server and tool
//! calls to the harness (`tool_call_format = "xml"`), where the learner's drift check finds
//! `match` on the recorded turns; and with a command as the harness (the contract's
//! environment, the refusal of streaming, and the step limit's 429 ending the episode
//! `max_steps`).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use agentmill_proto::{ExitReason, Resolution, Role};
use agentmill_testkit::docker::output as docker;
use agentmill_tests::{bundled_tasks, unique, workspace};
use agentmill_worker::config::WorkerConfig;
use agentmill_worker::episode::{EpisodeLease, run_episode};
use agentmill_worker::agent::policy::xml_calls;
use agentmill_worker::harness::MINI_SWE_AGENT_IMAGE;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// What crossed the recorder, in order: (path, request body, response body).
type Log = Arc<Mutex<Vec<(String, String, String)>>>;

/// The turns the scripted server has yet to give, in order.
type Turns = Arc<Mutex<std::collections::VecDeque<Value>>>;

/// The scripted server: answers chat completions with its turns in order, records every body.
/// Returns its base URL, its port, what it saw and its script.
async fn scripted_server() -> (String, u16, Log, Turns, tokio::task::JoinHandle<()>) {
    recorder(None).await
}

/// One request passed on to the server on 127.0.0.1:`port` as it came: (status, body).
fn forward(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the model server answers");
    let head = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8(raw).expect("the server answers UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status"), body.to_string())
}

/// A recorder: keeps every body that crosses it; answers from its script, or, with `upstream`,
/// passes each request to the server on that port and its answer back unchanged.
async fn recorder(upstream: Option<u16>) -> (String, u16, Log, Turns, tokio::task::JoinHandle<()>) {
    use http_body_util::BodyExt;
    // Every address: the harness must not reach this port through the host's bridge address.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let log: Log = Arc::default();
    let script: Turns = Arc::default();
    let (shared, turns) = (log.clone(), script.clone());
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (log, turns) = (shared.clone(), turns.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (log, turns) = (log.clone(), turns.clone());
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let request = String::from_utf8_lossy(&body).into_owned();
                        let (status, answer) = if let Some(port) = upstream {
                            let (method, p, r) = (if request.is_empty() { "GET" } else { "POST" }, path.clone(), request.clone());
                            tokio::task::spawn_blocking(move || forward(port, method, &p, &r)).await.expect("forward")
                        } else if path.ends_with("/models") {
                            (200, json!({"object": "list", "data": [{"id": "stand-in", "object": "model"}]}).to_string())
                        } else {
                            match turns.lock().expect("turns").pop_front() {
                                Some(t) => (200, t.to_string()),
                                None => (500, json!({"error": {"message": "the script ran out of turns"}}).to_string()),
                            }
                        };
                        log.lock().expect("log").push((path, request, answer.clone()));
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(http_body_util::Full::new(bytes::Bytes::from(answer)))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
    (format!("http://127.0.0.1:{port}/v1"), port, log, script, task)
}

/// A completion with one bash call, token ids and logprobs, spaced the way a server might
/// write it (the record must keep the argument string as it is).
fn turn(n: u32, content: &str, command: &str) -> Value {
    let arguments = format!("{{\"command\":  {}}}", serde_json::to_string(command).expect("json"));
    let ids: Vec<u32> = (0..5).map(|i| 100 * n + i).collect();
    json!({
        "id": format!("chatcmpl-{n}"), "object": "chat.completion", "created": 1_700_000_000 + n, "model": "stand-in",
        "choices": [{
            "index": 0, "finish_reason": "tool_calls", "token_ids": ids,
            "logprobs": {"content": ids.iter().map(|i| json!({"token": format!("t{i}"), "logprob": -0.25 * f64::from(*i % 7), "bytes": [116], "top_logprobs": []})).collect::<Vec<_>>()},
            "message": {"role": "assistant", "content": content,
                "tool_calls": [{"id": format!("call_{n}_x"), "type": "function", "function": {"name": "bash", "arguments": arguments}}]}
        }],
        "usage": {"prompt_tokens": 1000 + n, "completion_tokens": 5, "total_tokens": 1005 + n}
    })
}

/// A completion as llama.cpp's server writes one for a request with a grammar: the call as text
/// in `content`, each sampled token named by its text in `logprobs` (no ids).
fn text_turn(n: u32, text: &str, pieces: &[String]) -> Value {
    json!({
        "id": format!("chatcmpl-{n}"), "object": "chat.completion", "created": 1_700_000_000 + n, "model": "stand-in",
        "choices": [{
            "index": 0, "finish_reason": "stop",
            "logprobs": {"content": pieces.iter().map(|p| json!({"token": p, "logprob": -0.5, "bytes": null, "top_logprobs": []})).collect::<Vec<_>>()},
            "message": {"role": "assistant", "content": text}
        }],
        "usage": {"prompt_tokens": 900 + n, "completion_tokens": pieces.len(), "total_tokens": 900 + n + pieces.len() as u32}
    })
}

/// A bash call in the paper's text format.
fn bash_text(command: &str) -> String {
    format!("<function=bash>\n<parameter=command>\n{command}\n</parameter>\n</function>")
}

/// Removes what the test created, even when an assertion fails.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in self.0.iter().rev() {
            let _ = std::process::Command::new("docker").args(args).output();
        }
    }
}

const PROBE: &str = r#"import socket, sys
for host, port in [(sys.argv[1], 8000), (sys.argv[2], int(sys.argv[3]))]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        print(f"REACHED {host}:{port}")
    except OSError as e:
        print(f"BLOCKED {host}:{port} {e}")
"#;

/// Runs one episode of `task` through the worker's own path, with a harness endpoint on
/// `base_url` (`endpoint`: more of its keys, TOML); checks no container was left behind.
async fn run_endpoint(task: &agentmill_proto::Task, base_url: &str, model: &str, max_steps: u32, endpoint: &str) -> agentmill_proto::TrajectoryRecord {
    // The worker, as configured for a mini-swe-agent endpoint.
    let worker_id = unique("gw-test");
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("worker.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"worker_id = "{worker_id}"
sandbox = "docker"
[agent]
max_steps = {max_steps}
episode_timeout_s = 600
[inputs]
host_roots = ["{tasks}"]
[policy]
default = "mini"
[policy.endpoints.mini]
base_url = "{base_url}"
model = "{model}"
api_key_env = ""
{endpoint}
harness_image = "{MINI_SWE_AGENT_IMAGE}"
"#,
            tasks = workspace().join("deploy/tasks").display()
        ),
    )
    .expect("write the config");
    let cfg = WorkerConfig::load(Some(&config_path), &Default::default()).expect("the worker config loads");
    let backend = agentmill_worker::host::choose_backend(&cfg).await.expect("docker backend");
    let env = agentmill_worker::host::episode_env(&cfg, backend, worker_id.clone(), &agentmill_worker::metrics::WorkerMetrics::new()).expect("episode env");
    let id = EpisodeLease { episode: unique("gw-episode"), rollout: 0, attempt: 1, queued_at_unix_ms: 0 };
    let record = run_episode(env, task.clone(), id, |_| {}, CancellationToken::new()).await;
    let left = docker(&["ps", "-aq", "--filter", &format!("label=org.agentmill.worker={worker_id}")]);
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty(), "the episode left containers behind");

    record
}

/// The record keeps every call byte for byte (`seen`: what crossed the recorder), its requests
/// rebuild exactly, and its assistant turns are the server's: as it sent them, or, where the
/// server writes calls as text (`xml`), turns that render back to exactly that text.
fn assert_record_is_the_servers(record: &agentmill_proto::TrajectoryRecord, seen: &[(String, String, String)], model: &str, xml: bool) {
    // Every call crossed the recorder, and the record keeps each byte for byte.
    let chats: Vec<&(String, String, String)> = seen.iter().filter(|(p, _, _)| p.ends_with("/chat/completions")).collect();
    // Calls the gateway refused never reached the server; the rest pair with the recorder's.
    assert_eq!(record.model_calls.iter().filter(|c| c.upstream).count(), seen.len());
    let mut previous: Vec<Value> = Vec::new();
    let mut upstream = seen.iter();
    for call in &record.model_calls {
        let mut rebuilt = call.request.clone();
        if let Some(messages) = rebuilt.get_mut("messages").and_then(Value::as_array_mut) {
            let mut full = previous[..call.messages_from].to_vec();
            full.append(messages);
            *messages = full.clone();
            previous = full;
        }
        if !call.upstream {
            continue;
        }
        let (path, request, response) = upstream.next().expect("a recorded call");
        assert_eq!((call.path.as_str(), call.status), (path.as_str(), 200));
        assert_eq!(&call.response, response, "the response body, byte for byte");
        let sent: Value = serde_json::from_str(request).expect("the gateway sent JSON");
        assert_eq!(rebuilt, sent, "the request as the server got it, rebuilt from the record");
        if path.ends_with("/chat/completions") {
            assert_eq!((sent["model"].clone(), sent["logprobs"].clone()), (json!(model), json!(true)), "the worker's settings went in");
        }
    }

    // The assistant turns are the server's, byte for byte.
    let assistant: Vec<&agentmill_proto::Message> = record.messages.iter().filter(|m| m.role == Role::Assistant).collect();
    assert_eq!(assistant.len(), chats.len(), "one assistant turn per answered call");
    for (m, (_, _, response)) in assistant.iter().zip(&chats) {
        let body: Value = serde_json::from_str(response).expect("json");
        let choice = &body["choices"][0];
        let logprobs: Vec<f32> = choice["logprobs"]["content"].as_array().expect("logprobs").iter().map(|e| e["logprob"].as_f64().expect("lp") as f32).collect();
        assert_eq!(m.logprobs.as_ref(), Some(&logprobs));
        assert_eq!(m.usage.as_ref().map(|u| u.completion_tokens), body["usage"]["completion_tokens"].as_u64());
        if xml {
            let text = choice["message"]["content"].as_str().expect("the server's text");
            assert_eq!(m.tool_calls.len(), 1, "one call read out of {text:?}");
            assert_eq!(xml_calls::render(&m.content, &m.tool_calls), text, "the turn renders back to the server's text, byte for byte");
            let pieces: Vec<&str> = choice["logprobs"]["content"].as_array().expect("logprobs").iter().map(|e| e["token"].as_str().expect("token")).collect();
            assert_eq!(m.token_pieces.as_deref().map(|p| p.iter().map(String::as_str).collect::<Vec<_>>()), Some(pieces), "the sampled tokens' texts");
            continue;
        }
        assert_eq!(m.content, choice["message"]["content"].as_str().unwrap_or_default());
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(m.tool_calls.len(), 1);
        assert_eq!(m.tool_calls[0].id, call["id"].as_str().expect("id"));
        assert_eq!(m.tool_calls[0].function.name, call["function"]["name"].as_str().expect("name"));
        assert_eq!(m.tool_calls[0].function.arguments, call["function"]["arguments"].as_str().expect("arguments"), "argument string kept as sent");
        let ids: Option<Vec<u32>> = serde_json::from_value(choice["token_ids"].clone()).ok();
        assert_eq!(m.token_ids, ids, "the server's token ids, when it sends them");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mini_swe_agent_plays_through_the_gateway_and_the_record_is_the_servers() {
    if agentmill_testkit::docker::skipped("mini_swe_agent_plays_through_the_gateway_and_the_record_is_the_servers") {
        return;
    }
    let inspect = docker(&["image", "inspect", MINI_SWE_AGENT_IMAGE]);
    assert!(inspect.status.success(), "{MINI_SWE_AGENT_IMAGE} is missing: run deploy/setup.sh (it runs deploy/harness/build.sh)");

    // A network of this test's own, with a live listener on it.
    let net = unique("agentmill-test-gw-net");
    let target = unique("agentmill-test-gw-target");
    let mut cleanup = Cleanup(vec![]);
    assert!(docker(&["network", "create", &net]).status.success(), "create the test's network");
    cleanup.0.push(vec!["network".into(), "rm".into(), net.clone()]);
    let started = docker(&["run", "-d", "--name", &target, "--network", &net, "agentmill/sandbox-python:bookworm", "python3", "-m", "http.server", "8000"]);
    assert!(started.status.success(), "start the listener: {}", String::from_utf8_lossy(&started.stderr));
    cleanup.0.push(vec!["rm".into(), "-f".into(), target.clone()]);
    let ip = String::from_utf8_lossy(&docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", &target]).stdout).trim().to_string();
    let gateway_ip = String::from_utf8_lossy(&docker(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", &net]).stdout).trim().to_string();
    assert!(!ip.is_empty() && !gateway_ip.is_empty(), "addresses of the test network: {ip:?} {gateway_ip:?}");

    let task = bundled_tasks().into_iter().find(|t| t.instance_id == "agentmill__calc-1").expect("bundled task calc-1");
    let (base_url, port, log, script, _server) = scripted_server().await;
    let fix = format!(
        "cat > /tmp/fix.patch <<'AGENTMILL_EOF'\n{}AGENTMILL_EOF\ngit apply /tmp/fix.patch && printf '# fixed through mini-swe-agent\\n' >> calc/parser.py && git status --short",
        task.patch
    );
    let probe = format!("python3 -c '{PROBE}' {ip} {gateway_ip} {port}");
    script.lock().expect("script").extend([
        turn(1, "First, can this sandbox reach anything?\n", &probe),
        turn(2, "", &fix),
        turn(3, "Done: `**` is right-associative now. ", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"),
    ]);

    // The control: a container on the test's network reaches both addresses.
    let control = docker(&["run", "--rm", "--network", &net, "agentmill/sandbox-python:bookworm", "python3", "-c", PROBE, &ip, &gateway_ip, &port.to_string()]);
    let control = String::from_utf8_lossy(&control.stdout).into_owned();
    assert!(control.contains(&format!("REACHED {ip}:8000")) && control.contains(&format!("REACHED {gateway_ip}:{port}")), "control probe: {control}");

    let record = run_endpoint(&task, &base_url, "stand-in", 6, "temperature = 0.0\nlogprobs = true\nreturn_token_ids = true\nharness = \"mini-swe-agent\"").await;
    let seen = log.lock().expect("log").clone();
    assert_eq!(seen.iter().filter(|(p, _, _)| p.ends_with("/chat/completions")).count(), 3, "three model calls: {seen:#?}");
    // It ran to the harness's own submit, and the harness's patch is what was graded.
    assert_eq!(record.exit_reason, Some(ExitReason::Submitted), "error: {:?}\nmessages: {:#?}", record.error, record.messages);
    let patch = record.model_patch.clone().unwrap_or_default();
    assert!(patch.contains("+# fixed through mini-swe-agent"), "the graded patch is the harness's own:\n{patch}");
    let grading = record.grading.clone().expect("graded");
    assert_eq!(grading.resolution, Resolution::Full, "{grading:#?}");
    assert_eq!(record.versions.get("harness").map(String::as_str), Some("mini-swe-agent 2.4.6"));

    assert_record_is_the_servers(&record, &seen, "stand-in", false);
    // The conversation: mini-swe-agent's system and task, then turn, observation, ...
    let roles: Vec<Role> = record.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::Tool, Role::Assistant, Role::Tool, Role::Assistant]);
    assert!(record.messages[1].content.contains(&task.problem_statement), "the task reached the harness");
    assert_eq!(record.tools.len(), 1, "mini-swe-agent offers its bash tool: {:?}", record.tools);

    // The harness reached the gateway and nothing else.
    let observed = &record.messages[3].content;
    assert!(observed.contains(&format!("BLOCKED {ip}:8000")), "the test network's listener was reached: {observed}");
    assert!(observed.contains(&format!("BLOCKED {gateway_ip}:{port}")), "the host was reached: {observed}");
    assert!(!observed.contains("REACHED"), "{observed}");
    let overheads: Vec<u64> = record.model_calls.iter().map(|c| c.overhead_us).collect();
    eprintln!("gateway overhead per call (us): {overheads:?}");
}

/// The gateway between a tool-calling harness and a server that writes calls as text
/// (`tool_call_format = "xml"`), with a scripted server that answers as llama.cpp does (the text,
/// and each sampled token's text) in the tiny checkpoint's vocabulary. mini-swe-agent gets each
/// call as `tool_calls` and runs it; the record's turns render back to the server's text; and the
/// learner's drift check, on that checkpoint's tokenizer, names each turn for what its tokens are:
/// the tokenizer's own split (`match`), the same text split otherwise (`drift`), and tokens of
/// another text than the turn's (`other_text`, which is never trained).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn text_calls_reach_the_harness_as_tool_calls_and_the_learner_checks_their_tokens() {
    if agentmill_testkit::docker::skipped("text_calls_reach_the_harness_as_tool_calls_and_the_learner_checks_their_tokens") {
        return;
    }
    let inspect = docker(&["image", "inspect", MINI_SWE_AGENT_IMAGE]);
    assert!(inspect.status.success(), "{MINI_SWE_AGENT_IMAGE} is missing: run deploy/setup.sh (it runs deploy/harness/build.sh)");
    let checkpoint = agentmill_tests::llama_server::tiny_checkpoint();
    let tokenizer_file = checkpoint.dir.join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_file).expect("the checkpoint's tokenizer");
    // The tokenizer's own tokens of a text, each named by its text (what the server would send
    // for a model that sampled exactly them).
    let canonical = |text: &str| -> Vec<String> {
        let ids = tokenizer.encode(text, false).expect("encode").get_ids().to_vec();
        ids.iter().map(|&id| tokenizer.decode(&[id], false).expect("decode")).collect()
    };
    let (ls, status, pwd, submit) = (bash_text("ls"), bash_text("git status --short"), bash_text("pwd"), bash_text("echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"));
    let per_char: Vec<String> = status.chars().map(String::from).collect();
    assert_ne!(per_char, canonical(&status), "the tokenizer merges characters");
    let task = bundled_tasks().into_iter().find(|t| t.instance_id == "agentmill__calc-1").expect("bundled task calc-1");
    let (base_url, _port, log, script, _server) = scripted_server().await;
    script.lock().expect("script").extend([
        text_turn(1, &ls, &canonical(&ls)),
        text_turn(2, &status, &per_char),
        // The server says `pwd` but its tokens spell another command.
        text_turn(3, &pwd, &canonical(&bash_text("whoami"))),
        text_turn(4, &submit, &canonical(&submit)),
    ]);
    let endpoint = "harness = \"mini-swe-agent\"\nlogprobs = true\ntool_call_format = \"xml\"";
    let record = run_endpoint(&task, &base_url, "stand-in", 6, endpoint).await;
    let seen = log.lock().expect("log").clone();
    assert_eq!(record.exit_reason, Some(ExitReason::Submitted), "error: {:?}\nmessages: {:#?}", record.error, record.messages);
    assert_record_is_the_servers(&record, &seen, "stand-in", true);
    // The server got the grammar of mini-swe-agent's tool and, in later calls, the harness's
    // earlier turns as the text the model wrote.
    let chats: Vec<Value> = seen.iter().filter(|(p, _, _)| p.ends_with("/chat/completions")).map(|(_, r, _)| serde_json::from_str(r).expect("json")).collect();
    assert_eq!(chats.len(), 4);
    assert!(chats.iter().all(|c| c["grammar"].as_str().is_some_and(|g| g.contains("<function=bash>"))), "{:#?}", chats[0]);
    let last = chats[3]["messages"].as_array().expect("messages");
    let sent_back: Vec<&str> = last.iter().filter(|m| m["role"] == "assistant").map(|m| m["content"].as_str().unwrap_or_default()).collect();
    assert_eq!(sent_back, [ls.as_str(), status.as_str(), pwd.as_str()], "earlier turns go up as text");
    assert!(last.iter().all(|m| m.get("tool_calls").is_none()), "no tool_calls reach the server");
    // mini-swe-agent ran each call in the sandbox: real observations.
    let observed: Vec<&str> = record.messages.iter().filter(|m| m.role == Role::Tool).map(|m| m.content.as_str()).collect();
    assert_eq!(observed.len(), 3, "{observed:#?}");
    assert!(observed[0].contains("calc"), "`ls` in the repository: {}", observed[0]);
    assert!(observed[2].contains(&task.workdir), "`pwd` in {}: {}", task.workdir, observed[2]);

    let turns = agentmill_tests::llama_server::drift_check(std::slice::from_ref(&record), &tokenizer_file);
    let n = |k: &str| turns[k].as_u64().unwrap_or_default();
    assert_eq!((n("match"), n("drift"), n("other_text")), (2, 1, 1), "{turns}");
    assert_eq!((n("out_of_vocab"), n("unmapped"), n("misaligned")), (0, 0, 0), "{turns}");
}

/// The same path against a real server no one here wrote: llama.cpp's (llama-cpp-python) serving
/// the learner's tiny checkpoint. mini-swe-agent offers its `bash` tool; with
/// `tool_call_format = "xml"` the gateway sends the server the grammar of that tool in the
/// paper's text format, which the checkpoint's own chat template writes, and hands mini-swe-agent
/// the call as `tool_calls`. Whatever the model writes runs in the sandbox; the episode ends on
/// mini-swe-agent's step limit (or a submit). Every assistant turn in the record renders back to
/// the server's text byte for byte and carries its sampled tokens' texts, and the learner's
/// drift check, run by `agentmill-learner export` with the checkpoint's tokenizer, finds them
/// the model's own tokens of that text: aligned, each text one id, `match` or `drift`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mini_swe_agent_against_llama_cpp_serving_the_learners_checkpoint() {
    if agentmill_testkit::docker::skipped("mini_swe_agent_against_llama_cpp_serving_the_learners_checkpoint") {
        return;
    }
    let inspect = docker(&["image", "inspect", MINI_SWE_AGENT_IMAGE]);
    assert!(inspect.status.success(), "{MINI_SWE_AGENT_IMAGE} is missing: run deploy/setup.sh (it runs deploy/harness/build.sh)");
    let checkpoint = agentmill_tests::llama_server::tiny_checkpoint();
    let server = agentmill_tests::llama_server::LlamaServer::start(&checkpoint.gguf);
    let (base_url, _port, log, _script, _recorder) = recorder(Some(server.port)).await;
    let model = agentmill_tests::llama_server::MODEL_ALIAS;
    let task = bundled_tasks().into_iter().find(|t| t.instance_id == "agentmill__inifile-1").expect("bundled task inifile-1");
    // An untrained model samples stray bytes: llama.cpp's grammar lets a lone byte of a
    // multi-byte character through, and its server drops the invalid bytes from both the text
    // and the token texts, so the learner rightly finds such a turn `unmapped` (it cannot be
    // trained as sampled). A trained model writes whole characters; this one has the tokens that
    // are not whole characters biased out.
    let tokenizer = tokenizers::Tokenizer::from_file(checkpoint.dir.join("tokenizer.json")).expect("the checkpoint's tokenizer");
    let partial: Vec<String> = (0..tokenizer.get_vocab_size(true) as u32)
        .filter(|&id| tokenizer.decode(&[id], false).is_ok_and(|t| t.contains('\u{fffd}')))
        .map(|id| format!("\"{id}\" = -100.0"))
        .collect();
    assert!(!partial.is_empty(), "a byte-level vocabulary has tokens of single bytes");
    let endpoint = format!(
        "harness = \"mini-swe-agent\"\ntemperature = 0.0\nmax_tokens = 128\nlogprobs = true\nweight_version = \"tiny\"\n\
         tool_call_format = \"xml\"\ngrammar_max_value_chars = 16\nextra_body = {{ logit_bias = {{ {} }} }}",
        partial.join(", ")
    );
    let record = run_endpoint(&task, &base_url, model, 3, &endpoint).await;
    let seen = log.lock().expect("log").clone();
    assert!(
        matches!(record.exit_reason, Some(ExitReason::MaxSteps | ExitReason::Submitted)),
        "the episode ends on mini-swe-agent's step limit or a submit, not {:?}: {:?}\nserver log:\n{}",
        record.exit_reason,
        record.error,
        server.log_tail()
    );
    let chats = seen.iter().filter(|(p, _, _)| p.ends_with("/chat/completions")).count();
    assert!(chats >= 1, "the model was called: {seen:#?}");
    assert_record_is_the_servers(&record, &seen, model, true);
    let assistant: Vec<&agentmill_proto::Message> = record.messages.iter().filter(|m| m.role == Role::Assistant).collect();
    assert!(assistant.iter().all(|m| m.tool_calls.len() == 1 && m.tool_calls[0].function.name == "bash"), "constrained calls: {assistant:#?}");
    assert!(assistant.iter().all(|m| m.logprobs.as_ref().is_some_and(|l| !l.is_empty())), "llama.cpp's logprobs are recorded per turn");
    // The harness got each call as `tool_calls` and ran it: an observation answers every turn.
    let observations = record.messages.iter().filter(|m| m.role == Role::Tool).count();
    assert!(observations + 1 >= assistant.len() && observations >= 1, "mini-swe-agent ran the calls: {:#?}", record.messages);

    // The learner's drift check on the recorded turns, with the checkpoint's tokenizer.
    let turns = agentmill_tests::llama_server::drift_check(std::slice::from_ref(&record), &checkpoint.dir.join("tokenizer.json"));
    let n = |k: &str| turns[k].as_u64().unwrap_or_default();
    let total = agentmill_tests::llama_server::TURN_OUTCOMES.iter().map(|k| n(k)).sum::<u64>();
    assert_eq!(total, assistant.len() as u64, "every assistant turn carries its tokens: {turns}");
    // Each turn's tokens are its own text, on its boundaries, each text one id: the model's own
    // tokens, which `assistant_tokens = "recorded"` trains. Whether they are also the tokenizer's
    // split of that text (`match`) is up to the model: an untrained one splits as it samples
    // (`drift`); the scripted test above proves each verdict, the closed loop measures a trained one.
    assert_eq!((n("other_text"), n("out_of_vocab"), n("unmapped"), n("misaligned")), (0, 0, 0, 0), "{turns}");
    assert_eq!(n("match") + n("drift"), total, "every turn trains the model's own tokens: {turns}");
    eprintln!("drift check on {total} recorded turns: {turns} (match share {:.2})", n("match") as f64 / total as f64);
    assert_eq!(record.provenance.policy.as_ref().map(|p| p.weight_version.as_str()), Some("tiny"));
    let grading = record.grading.as_ref().expect("a model's episode is graded");
    assert!(grading.not_graded.is_none(), "{grading:#?}");
    eprintln!(
        "llama.cpp through the gateway: {} calls, exit {:?}, gateway time per call (us): {:?}",
        record.model_calls.len(),
        record.exit_reason,
        record.model_calls.iter().map(|c| c.overhead_us).collect::<Vec<_>>()
    );
}

const COMMAND_HARNESS: &str = r#"import json, os, urllib.request, urllib.error
base = os.environ["AGENTMILL_BASE_URL"]
task = open(os.environ["AGENTMILL_INSTRUCTION_FILE"]).read()
def call(body):
    req = urllib.request.Request(base + "/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
print("stream:", call({"model": "x", "stream": True, "messages": []})[0])
messages = [{"role": "user", "content": task}]
while True:
    status, answer = call({"model": "any", "temperature": 2.0, "messages": messages})
    print("status", status)
    if status != 200:
        print(answer["error"]["message"])
        break
    messages.append(answer["choices"][0]["message"])
    messages.append({"role": "tool", "tool_call_id": answer["choices"][0]["message"]["tool_calls"][0]["id"], "content": "ok " + os.environ["AGENTMILL_MAX_STEPS"]})
"#;

/// A command as the harness: it gets the contract's environment and instruction file, its
/// stream request is refused with the reason, and past `max_steps` calls the gateway refuses with
/// a 429, which ends the episode `max_steps`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_harness_gets_the_contract_and_the_step_limit() {
    if agentmill_testkit::docker::skipped("a_command_harness_gets_the_contract_and_the_step_limit") {
        return;
    }
    let task = bundled_tasks().into_iter().find(|t| t.instance_id == "agentmill__ttlcache-1").expect("bundled task ttlcache-1");
    let (base_url, _port, log, script, _server) = scripted_server().await;
    script.lock().expect("script").extend([turn(1, "one", "true"), turn(2, "two", "true"), turn(3, "three", "true")]);
    let argv = serde_json::to_string(&["python3", "-c", COMMAND_HARNESS]).expect("json");
    let record = run_endpoint(&task, &base_url, "stand-in", 2, &format!("logprobs = true\nharness = {argv}")).await;
    let seen = log.lock().expect("log").clone();
    assert_eq!(record.exit_reason, Some(ExitReason::MaxSteps), "{:?}", record.error);
    assert_eq!(seen.len(), 2, "the stream request and the third call never reached the server: {seen:#?}");
    assert_eq!(record.model_calls.iter().map(|c| c.status).collect::<Vec<_>>(), [400, 200, 200, 429]);
    assert!(record.model_calls[0].response.contains("stream=false"), "{}", record.model_calls[0].response);
    assert!(record.model_calls[3].response.contains("step limit of 2"), "{}", record.model_calls[3].response);
    assert_record_is_the_servers(&record, &seen, "stand-in", false);
    // The instruction is the worker's instance template with the task's statement in it.
    assert!(record.messages[0].content.contains(&task.problem_statement) && record.messages[0].content.contains("/testbed"));
    assert_eq!(record.messages.iter().filter(|m| m.role == Role::Tool).map(|m| m.content.as_str()).collect::<Vec<_>>(), ["ok 2"]);
    assert_eq!(record.versions.get("harness").map(String::as_str), Some("command python3"));
}
