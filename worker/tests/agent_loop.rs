//! The episode loop against real sandboxes: the `openai` policy talking to a real HTTP server
//! (started here on 127.0.0.1, answering with bodies shaped as vLLM and OpenAI return them,
//! including a 429 to retry and a malformed tool call), malformed calls from a scripted policy,
//! and every limit that ends an episode.

mod agent_support;
mod sandbox_support;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_support::{grade_fresh, task_sandbox};
use agentmill_proto::{ExitReason, FunctionCall, Message, PolicyInfo, Resolution, Role, ToolCall};
use agentmill_worker::agent::policy::{OpenAiConfig, OpenAiPolicy, Policy, PolicyError};
use agentmill_worker::agent::tools::{EXIT_OK, EXIT_USAGE};
use agentmill_worker::agent::{AgentConfig, run_agent};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use sandbox_support::{bundled_task, docker};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// A real OpenAI-compatible peer: answers scripted responses in order and records every request.

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply { status: 200, headers: vec![], body: body.to_string() }
    }
}

#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    path: String,
    authorization: Option<String>,
    body: Value,
}

#[derive(Debug, Default)]
struct ServerState {
    replies: VecDeque<Reply>,
    seen: Vec<Seen>,
}

#[derive(Debug)]
struct Server {
    base_url: String,
    state: Arc<Mutex<ServerState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(replies: Vec<Reply>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(ServerState { replies: replies.into(), seen: Vec::new() }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(req, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                });
            }
        });
        Server { base_url: format!("http://{addr}/v1"), state, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("server state").seen.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(req: Request<Incoming>, state: Arc<Mutex<ServerState>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = {
        let mut state = state.lock().expect("server state");
        state.seen.push(Seen { at: Instant::now(), path, authorization, body });
        state.replies.pop_front()
    };
    let reply = reply.unwrap_or(Reply { status: 500, headers: vec![], body: r#"{"error":{"message":"the test script ran out of replies"}}"#.into() });
    let mut response = Response::builder().status(reply.status).header("content-type", "application/json");
    for (k, v) in &reply.headers {
        response = response.header(*k, v);
    }
    Ok(response.body(Full::new(Bytes::from(reply.body))).expect("a valid response"))
}

/// A vLLM-style completion with one tool call.
fn completion(id: &str, content: Value, name: &str, arguments: &str, extra_choice: Value, usage: (u64, u64)) -> Value {
    let mut choice = json!({
        "index": 0,
        "message": {"role": "assistant", "content": content, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]},
        "logprobs": null,
        "finish_reason": "tool_calls",
        "stop_reason": null
    });
    if let (Some(c), Value::Object(extra)) = (choice.as_object_mut(), extra_choice) {
        c.extend(extra);
    }
    json!({
        "id": format!("chatcmpl-{id}"), "object": "chat.completion", "created": 1_700_000_000, "model": "agentmill-test-model",
        "choices": [choice],
        "usage": {"prompt_tokens": usage.0, "total_tokens": usage.0 + usage.1, "completion_tokens": usage.1, "prompt_tokens_details": null},
        "prompt_logprobs": null
    })
}

fn endpoint(server: &Server) -> OpenAiConfig {
    OpenAiConfig {
        base_url: server.base_url.clone(),
        model: "agentmill-test-model".into(),
        api_key_env: "AGENTMILL_TEST_KEY_THAT_IS_NOT_SET".into(),
        temperature: Some(0.6),
        top_p: Some(0.95),
        max_tokens: Some(512),
        request_timeout_s: 10,
        max_retries: 3,
        backoff_initial_ms: 5,
        backoff_max_ms: 20,
        logprobs: true,
        return_token_ids: true,
        ..OpenAiConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_policy_against_a_local_server_retries_a_429_survives_bad_json_and_resolves_the_task() {
    let worker = "agent-loop-openai";
    let Some(engine) = docker("openai_policy_against_a_local_server", worker).await else { return };
    let task = bundled_task("agentmill__inifile-1");
    let sandbox = task_sandbox(&engine, worker, &task, "openai").await;

    let fix = json!({"command": "str_replace", "path": "/testbed/inifile/lexer.py", "old_str": "    index = max(positions)\n", "new_str": "    index = min(positions)\n"});
    let replies = vec![
        Reply {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: r#"{"object":"error","message":"Rate limit reached, retry after 1s","type":"RateLimitError","param":null,"code":429}"#.into(),
        },
        // vLLM: reasoning_content, logprobs with `token_id:N` tokens, token_ids, prompt_token_ids.
        Reply::ok({
            let mut c = completion(
                "chatcmpl-tool-a1",
                json!("Let me find where the pair is split."),
                "bash",
                r#"{"command": "grep -n 'positions' inifile/lexer.py"}"#,
                json!({
                    "logprobs": {"content": [
                        {"token": "token_id:151657", "logprob": -0.0125, "bytes": [60], "top_logprobs": []},
                        {"token": "token_id:4913", "logprob": -1.5, "bytes": [123], "top_logprobs": []}
                    ]},
                    "token_ids": [151657, 4913]
                }),
                (812, 2),
            );
            c["choices"][0]["message"]["reasoning_content"] = json!("The issue is about which delimiter wins; split_pair decides it.");
            c["prompt_token_ids"] = json!([151644, 8948]);
            c
        }),
        // OpenAI: content null, arguments that are not JSON (the model stopped mid-object).
        Reply::ok(completion("call_b2", Value::Null, "str_replace_editor", r#"{"command": "view", "path": "/testbed/inifile/lexer.py""#, json!({}), (900, 30))),
        Reply::ok(completion("call_c3", json!("The last delimiter wins; the first one should."), "str_replace_editor", &fix.to_string(), json!({}), (1000, 60))),
        Reply::ok(completion("call_d4", json!(""), "submit", "{}", json!({}), (1200, 5))),
    ];
    let server = Server::start(replies).await;
    let mut policy = OpenAiPolicy::new("openai", endpoint(&server)).expect("a valid endpoint config");
    let outcome = run_agent(&mut policy, &*sandbox, &task, &AgentConfig::default(), &CancellationToken::new()).await;
    drop(sandbox);

    assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{:?}", outcome.error);
    assert_eq!(outcome.steps, 4);
    let seen = server.seen();
    assert_eq!(seen.len(), 5, "one 429, then one request per turn");
    assert!(seen.iter().all(|s| s.path == "/v1/chat/completions" && s.authorization.is_none()));
    assert_eq!(seen[0].body, seen[1].body, "the retry repeats the request");
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(950), "Retry-After: 1 is honoured, waited {:?}", seen[1].at - seen[0].at);

    let first = &seen[1].body;
    assert_eq!((first["model"].as_str(), first["temperature"].as_f64(), first["max_tokens"].as_u64()), (Some("agentmill-test-model"), Some(0.6), Some(512)));
    assert_eq!((first["logprobs"].as_bool(), first["return_token_ids"].as_bool(), first["tool_choice"].as_str()), (Some(true), Some(true), Some("auto")));
    let names: Vec<&str> = first["tools"].as_array().expect("tools").iter().filter_map(|t| t["function"]["name"].as_str()).collect();
    assert_eq!(names, ["bash", "str_replace_editor", "submit"]);
    let roles: Vec<&str> = first["messages"].as_array().expect("messages").iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["system", "user"]);

    // The grep ran for real and its output went back to the model.
    let second = seen[2].body["messages"].as_array().expect("messages");
    let grep = second.last().expect("a tool message");
    assert_eq!((grep["role"].as_str(), grep["tool_call_id"].as_str()), (Some("tool"), Some("chatcmpl-tool-a1")));
    assert!(grep["content"].as_str().is_some_and(|c| c.contains("    index = max(positions)")), "{grep}");
    assert!(second.iter().all(|m| m.get("reasoning_content").is_none()), "reasoning is not sent back");
    // The malformed call went back to the model as the model wrote it, answered by an observation.
    let third = seen[3].body["messages"].as_array().expect("messages");
    let bad_call = &third[third.len() - 2];
    assert_eq!(bad_call["tool_calls"][0]["function"]["arguments"].as_str(), Some(r#"{"command": "view", "path": "/testbed/inifile/lexer.py""#));
    let bad_answer = &third[third.len() - 1];
    assert_eq!(bad_answer["tool_call_id"].as_str(), Some("call_b2"));
    assert!(bad_answer["content"].as_str().is_some_and(|c| c.contains("not valid JSON")), "{bad_answer}");

    // The record keeps what the server returned.
    let assistants: Vec<&Message> = outcome.messages.iter().filter(|m| m.role == Role::Assistant).collect();
    assert_eq!(assistants.len(), 4);
    assert_eq!(assistants[0].reasoning_content.as_deref(), Some("The issue is about which delimiter wins; split_pair decides it."));
    assert_eq!(assistants[0].token_ids.as_deref(), Some(&[151657, 4913][..]));
    assert_eq!(assistants[0].logprobs.as_deref(), Some(&[-0.0125f32, -1.5][..]));
    assert_eq!(assistants[0].usage.as_ref().map(|u| (u.prompt_tokens, u.completion_tokens)), Some((812, 2)));
    assert_eq!(assistants[1].content, "");
    let tool_messages: Vec<&Message> = outcome.messages.iter().filter(|m| m.role == Role::Tool).collect();
    assert_eq!(tool_messages[1].exit_code, Some(EXIT_USAGE));
    assert_eq!(tool_messages[2].exit_code, Some(EXIT_OK), "{}", tool_messages[2].content);
    assert_eq!(outcome.policy, PolicyInfo {
        name: "openai".into(),
        model: "agentmill-test-model".into(),
        sampling: json!({"temperature": 0.6, "top_p": 0.95, "max_tokens": 512}),
        weight_version: String::new(),
    });

    let grading = grade_fresh(&engine, worker, &task, &outcome.model_patch).await;
    assert_eq!(grading.resolution, Resolution::Full, "{grading:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_policy_gives_up_after_its_retries_and_names_context_and_key_errors() {
    let tools = agentmill_worker::agent::tools::Toolset::swe_agent().schemas();
    let conversation = [Message::text(Role::System, "s"), Message::text(Role::User, "u")];

    let unavailable = Reply { status: 503, headers: vec![], body: r#"{"error":{"message":"no replica ready"}}"#.into() };
    let server = Server::start(vec![unavailable; 4]).await;
    let mut policy = OpenAiPolicy::new("openai", endpoint(&server)).expect("config");
    let err = policy.next(&conversation, &tools).await.expect_err("503 four times");
    assert!(err.is_transient() && err.exit_reason() == ExitReason::PolicyError, "{err:?}");
    assert!(err.to_string().contains("gave up after 4 attempts") && err.to_string().contains("no replica ready"), "{err}");
    assert_eq!(server.seen().len(), 4, "max_retries = 3: one try and three retries");

    let too_long = Reply {
        status: 400,
        headers: vec![],
        body: r#"{"object":"error","message":"This model's maximum context length is 32768 tokens. However, you requested 40000 tokens in the messages. Please reduce the length of the messages.","type":"BadRequestError","param":null,"code":400}"#.into(),
    };
    let server = Server::start(vec![too_long]).await;
    let mut policy = OpenAiPolicy::new("openai", endpoint(&server)).expect("config");
    let err = policy.next(&conversation, &tools).await.expect_err("context error");
    assert!(matches!(err, PolicyError::ContextOverflow(_)) && err.exit_reason() == ExitReason::ContextOverflow, "{err:?}");
    assert_eq!(server.seen().len(), 1, "a context error is not retried");

    let denied = Reply { status: 401, headers: vec![], body: r#"{"error":{"message":"Incorrect API key provided"}}"#.into() };
    let server = Server::start(vec![denied]).await;
    let mut policy = OpenAiPolicy::new("openai", endpoint(&server)).expect("config");
    let err = policy.next(&conversation, &tools).await.expect_err("auth error");
    assert!(matches!(err, PolicyError::Fatal(_)) && err.to_string().contains("AGENTMILL_TEST_KEY_THAT_IS_NOT_SET"), "{err}");

    let refused = {
        let mut config = endpoint(&server);
        config.base_url = format!("http://127.0.0.1:{}/v1", agentmill_testkit::free_port());
        config.max_retries = 1;
        OpenAiPolicy::new("openai", config).expect("config")
    };
    let err = refused.clone().next(&conversation, &tools).await.expect_err("nothing listens");
    assert!(err.is_transient() && err.to_string().contains("could not connect"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// A scripted policy: the turns are given up front (each a result, so a failure can be scripted).

#[derive(Debug)]
struct Scripted {
    turns: VecDeque<Result<Message, PolicyError>>,
    /// Repeated once the script ran out (a policy that never submits).
    repeat: Option<Message>,
    /// Run (synchronously) before the turn of this number, 1-based.
    before_turn: Option<(usize, String)>,
    turn: usize,
}

impl Scripted {
    fn new(turns: Vec<Result<Message, PolicyError>>) -> Scripted {
        Scripted { turns: turns.into(), repeat: None, before_turn: None, turn: 0 }
    }
}

#[async_trait::async_trait]
impl Policy for Scripted {
    fn info(&self) -> PolicyInfo {
        PolicyInfo { name: "scripted".into(), ..PolicyInfo::default() }
    }

    async fn next(&mut self, _messages: &[Message], _tools: &[Value]) -> Result<Message, PolicyError> {
        self.turn += 1;
        if let Some((turn, command)) = &self.before_turn
            && *turn == self.turn
        {
            let status = std::process::Command::new("sh").args(["-c", command]).status().expect("run the hook");
            assert!(status.success(), "hook {command} failed");
        }
        match self.turns.pop_front() {
            Some(turn) => turn,
            None => self.repeat.clone().ok_or_else(|| PolicyError::Fatal("the script ran out".into())),
        }
    }
}

fn turn(calls: &[(&str, &str)]) -> Message {
    let mut m = Message::text(Role::Assistant, "scripted");
    m.tool_calls = calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| ToolCall {
            id: format!("c{i}"),
            kind: "function".into(),
            function: FunctionCall { name: (*name).into(), arguments: (*arguments).into() },
        })
        .collect();
    m
}

fn tool_answers(outcome: &agentmill_worker::agent::AgentOutcome) -> Vec<&Message> {
    outcome.messages.iter().filter(|m| m.role == Role::Tool).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_calls_from_the_policy_become_observations_and_the_episode_goes_on() {
    let worker = "agent-loop-malformed";
    let Some(engine) = docker("malformed_calls_from_the_policy_become_observations", worker).await else { return };
    let task = bundled_task("agentmill__ttlcache-1");
    let sandbox = task_sandbox(&engine, worker, &task, "malformed").await;
    let mut no_call = Message::text(Role::Assistant, "I think the bug is in memoize.");
    no_call.reasoning_content = Some("no tool this turn".into());
    let mut policy = Scripted::new(vec![
        Ok(turn(&[("python", r#"{"code": "print(1)"}"#)])),
        Ok(turn(&[("bash", r#"{"command": "ls"#)])),
        Ok(turn(&[("bash", "{}")])),
        Ok(turn(&[("bash", r#"["ls"]"#)])),
        Ok(turn(&[("str_replace_editor", r#"{"command": "view"}"#)])),
        Ok(turn(&[("str_replace_editor", r#"{"command": "frobnicate", "path": "/testbed"}"#)])),
        Ok(no_call),
        Ok(turn(&[("bash", r#"{"command": "echo one"}"#), ("bash", r#"{"command": "echo two"}"#)])),
        Ok(turn(&[("submit", ""), ("bash", r#"{"command": "echo never"}"#)])),
    ]);
    let outcome = run_agent(&mut policy, &*sandbox, &task, &AgentConfig::default(), &CancellationToken::new()).await;
    assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{:?}", outcome.error);
    assert_eq!(outcome.steps, 9);
    assert_eq!(outcome.model_patch, "", "nothing was changed");

    let answers = tool_answers(&outcome);
    let expect = [
        (EXIT_USAGE, "Unknown tool \"python\". The available tools are: bash, str_replace_editor, submit"),
        (EXIT_USAGE, "not valid JSON"),
        (EXIT_USAGE, "`command` is required"),
        (EXIT_USAGE, "must be a JSON object"),
        (EXIT_USAGE, "`path` is required"),
        (EXIT_USAGE, "Unrecognized command \"frobnicate\""),
        (EXIT_OK, "one\n"),
        (EXIT_OK, "two\n"),
        (EXIT_OK, "Submitted an empty patch"),
        (EXIT_USAGE, "Not run: `submit` earlier in this turn ended the episode."),
    ];
    assert_eq!(answers.len(), expect.len(), "{answers:#?}");
    for (answer, (code, text)) in answers.iter().zip(expect) {
        assert_eq!(answer.exit_code, Some(code), "{answer:?}");
        assert!(answer.content.contains(text), "{:?} should contain {text:?}", answer.content);
        assert!(answer.duration_ms.is_some() && answer.truncated == Some(false) && answer.name.is_some(), "{answer:?}");
    }
    // Calls are answered in order, by id, and ids are unique across the episode.
    let ids: Vec<&str> = answers.iter().filter_map(|m| m.tool_call_id.as_deref()).collect();
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    let nudge = outcome.messages.iter().position(|m| m.role == Role::User && m.content.contains("did not call a tool"));
    assert!(nudge.is_some_and(|i| outcome.messages[i - 1].content == "I think the bug is in memoize."), "a turn without a call gets a nudge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_end_episodes_with_their_exit_reason_and_the_diff_is_still_collected() {
    let worker = "agent-loop-limits";
    let Some(engine) = docker("limits_end_episodes_with_their_exit_reason", worker).await else { return };
    let mut task = bundled_task("agentmill__ttlcache-1");
    let sandbox = task_sandbox(&engine, worker, &task, "limits").await;
    let config = AgentConfig::default();
    let cancel = CancellationToken::new();
    let bash = |command: &str| turn(&[("bash", &json!({ "command": command }).to_string())]);

    // max_steps: the first turn edits a file, the rest never submit; the diff is autosubmitted.
    task.limits.max_steps = Some(3);
    let mut policy = Scripted::new(vec![Ok(bash("echo '# touched' >> ttlcache/memoize.py"))]);
    policy.repeat = Some(bash("true"));
    let outcome = run_agent(&mut policy, &*sandbox, &task, &config, &cancel).await;
    assert_eq!((outcome.exit_reason, outcome.steps), (ExitReason::MaxSteps, 3), "{:?}", outcome.error);
    assert!(outcome.model_patch.contains("+# touched"), "autosubmit collects the diff: {:?}", outcome.model_patch);
    task.limits.max_steps = None;

    // step_timeout: three calls in a row killed at the step timeout.
    task.limits.step_timeout_s = Some(1);
    let mut policy = Scripted::new(vec![]);
    policy.repeat = Some(bash("sleep 30"));
    let started = Instant::now();
    let outcome = run_agent(&mut policy, &*sandbox, &task, &config, &cancel).await;
    assert_eq!((outcome.exit_reason, outcome.steps), (ExitReason::StepTimeout, 3), "{:?}", outcome.error);
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(tool_answers(&outcome).iter().all(|m| m.content.contains("timed out after 1 s") && m.exit_code == Some(137)));
    assert!(outcome.model_patch.contains("+# touched"));

    // A timeout that is not followed by more is only an observation.
    let mut policy = Scripted::new(vec![Ok(bash("sleep 30")), Ok(turn(&[("submit", "{}")]))]);
    let outcome = run_agent(&mut policy, &*sandbox, &task, &config, &cancel).await;
    assert_eq!(outcome.exit_reason, ExitReason::Submitted, "{:?}", outcome.error);
    task.limits.step_timeout_s = None;

    // episode_timeout: the wall-time budget runs out in the middle of a call.
    task.limits.episode_timeout_s = Some(2);
    let mut policy = Scripted::new(vec![]);
    policy.repeat = Some(bash("sleep 30"));
    let started = Instant::now();
    let outcome = run_agent(&mut policy, &*sandbox, &task, &config, &cancel).await;
    assert_eq!(outcome.exit_reason, ExitReason::EpisodeTimeout, "{:?}", outcome.error);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    task.limits.episode_timeout_s = None;

    // cancelled: the token fires while a command runs.
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let mut policy = Scripted::new(vec![]);
    policy.repeat = Some(bash("sleep 30"));
    let started = Instant::now();
    let outcome = run_agent(&mut policy, &*sandbox, &task, &config, &token).await;
    assert_eq!(outcome.exit_reason, ExitReason::Cancelled, "{:?}", outcome.error);
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());

    // context_overflow: a large observation pushes the conversation past the budget.
    task.limits.context_tokens = Some(3000);
    let mut policy = Scripted::new(vec![Ok(bash("head -c 20000 /dev/zero | tr '\\0' x"))]);
    policy.repeat = Some(bash("true"));
    let outcome = run_agent(&mut policy, &*sandbox, &task, &config, &cancel).await;
    assert_eq!((outcome.exit_reason, outcome.steps), (ExitReason::ContextOverflow, 1), "{:?}", outcome.error);
    task.limits.context_tokens = None;

    // policy_error: the policy fails for good.
    let mut policy = Scripted::new(vec![Ok(bash("true")), Err(PolicyError::Transient("policy server: gave up after 9 attempts".into()))]);
    let outcome = run_agent(&mut policy, &*sandbox, &task, &config, &cancel).await;
    assert_eq!((outcome.exit_reason, outcome.steps), (ExitReason::PolicyError, 1));
    assert_eq!(outcome.error.as_deref(), Some("policy server: gave up after 9 attempts"));
    assert!(outcome.model_patch.contains("+# touched"), "the diff is collected after a policy error too");

    // sandbox_error: the container disappears under the episode.
    let mut policy = Scripted::new(vec![Ok(bash("true"))]);
    policy.repeat = Some(bash("true"));
    policy.before_turn = Some((2, format!("docker rm -f {} >/dev/null", sandbox.id())));
    let outcome = run_agent(&mut policy, &*sandbox, &task, &config, &cancel).await;
    assert_eq!((outcome.exit_reason, outcome.steps), (ExitReason::SandboxError, 2), "{:?}", outcome.error);
    assert!(outcome.error.as_deref().is_some_and(|e| e.contains("the sandbox failed during the `bash` call")), "{:?}", outcome.error);
    assert_eq!(outcome.model_patch, "", "a dead sandbox gives no diff");
}
