//! The `openai` policy: any OpenAI-compatible chat-completions endpoint with tool calling.
//!
//! Works with vLLM, SGLang and llama.cpp servers (started with their tool-call parser on, e.g.
//! vLLM's `--enable-auto-tool-choice --tool-call-parser hermes`) and with hosted APIs. Each turn is
//! one `POST {base_url}/chat/completions` with the conversation and the tools' schemas.
//!
//! - **Retries**: 408, 409, 429 and 5xx answers, connection failures, timeouts and unreadable
//!   bodies are retried with exponential backoff and jitter; a `Retry-After` header (seconds or an
//!   HTTP date) is honoured. After `max_retries` retries the turn fails with
//!   [`PolicyError::Transient`] and the episode ends `policy_error`.
//! - **Context**: a 400 saying the prompt exceeds the model's context is
//!   [`PolicyError::ContextOverflow`] (the episode ends `context_overflow`).
//! - **What is kept**: `content`, `reasoning_content` (or `reasoning`), `tool_calls`, `usage`; with
//!   `logprobs = true` the sampled tokens' log-probabilities (`choices[0].logprobs.content[].logprob`);
//!   token ids from vLLM's `choices[0].token_ids` (ask with `return_token_ids = true`, vLLM ≥ 0.10.2)
//!   or from `token_id:N` tokens (vLLM's `return_tokens_as_token_ids`, set through `extra_body`);
//!   where a server gives no ids (llama.cpp), the sampled tokens' texts
//!   (`logprobs.content[].token`) as the turn's `token_pieces`, which the learner maps to ids.
//! - **What is sent back**: system, user, assistant (content and tool calls, never the reasoning —
//!   several servers reject it) and tool messages (`tool_call_id`, `content`). A tool call whose
//!   arguments were not JSON is sent back as the model wrote it, with the tool's error answer.
//! - **Constrained calls** (`tool_call_format = "xml"`, for llama.cpp's server): the request
//!   carries a GBNF `grammar` ([`super::xml_calls::grammar`]) that admits one call of a known
//!   tool in the paper's text format (`<function=NAME><parameter=KEY>…`), so even a barely
//!   trained model emits a well-formed call; the policy reads the call out of the text, and sends
//!   earlier turns back as the text the model wrote (the learner's rendering, with the chat
//!   template `agentmill-learner export-gguf` writes), so prompts hold the model's own tokens.
//! - **Truncation**: `finish_reason: "length"` (the turn hit `max_tokens` or the context window)
//!   ends the episode `context_overflow`, as the server's own context error does.

use std::time::{Duration, SystemTime};

use agentmill_proto::{FunctionCall, Message, PolicyInfo, Role, ToolCall, Usage};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::{debug, warn};

use super::{Policy, PolicyError, xml_calls};

/// How to reach one endpoint and how to sample from it. Every key has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The API root, e.g. `http://127.0.0.1:8000/v1` (`/chat/completions` is appended).
    pub base_url: String,
    /// The model name the server expects.
    pub model: String,
    /// The environment variable holding the API key (sent as a bearer token); unset or empty
    /// variable = no `Authorization` header, as local servers expect.
    pub api_key_env: String,
    /// Sampling temperature; unset = the server's default.
    pub temperature: Option<f64>,
    /// Nucleus sampling; unset = the server's default.
    pub top_p: Option<f64>,
    /// Most tokens of one turn; unset = the server's default. (Hosted APIs that want
    /// `max_completion_tokens` instead take it through `extra_body`.)
    pub max_tokens: Option<u32>,
    /// Timeout of one request, seconds.
    pub request_timeout_s: u64,
    /// Timeout of connecting, seconds.
    pub connect_timeout_s: u64,
    /// Retries of one turn after a retryable failure.
    pub max_retries: u32,
    /// First backoff, milliseconds (doubles per retry, with jitter).
    pub backoff_initial_ms: u64,
    /// Longest backoff, milliseconds.
    pub backoff_max_ms: u64,
    /// Longest `Retry-After` honoured, seconds.
    pub max_retry_after_s: u64,
    /// Ask for the sampled tokens' log-probabilities.
    pub logprobs: bool,
    /// Ask vLLM for the sampled token ids (`return_token_ids`; other servers may reject it).
    pub return_token_ids: bool,
    /// The weight version the server runs, recorded with every episode.
    pub weight_version: String,
    /// Extra fields merged into every request body (`top_k`, `chat_template_kwargs`, ...).
    pub extra_body: Map<String, Value>,
    /// Who runs the episode: `"agentmill"` (the built-in SWE-agent loop), `"mini-swe-agent"`,
    /// or a command (`["python3", "/opt/agent.py"]`) run in the sandbox behind the worker's LLM
    /// gateway ([`crate::harness`]).
    pub harness: crate::harness::HarnessSetting,
    /// The image episodes of an external harness run in, in place of the task's (it must hold
    /// the harness and what the task's repository needs, e.g. `agentmill/harness-mini-swe-agent:2.4.6`
    /// for the bundled tasks); empty = the task's own image. Grading always uses the task's.
    pub harness_image: String,
    /// How the model calls tools: `native` (the server's `tool_calls`) or `xml` (calls written
    /// as text in the paper's format under a GBNF grammar the request carries; llama.cpp).
    pub tool_call_format: ToolCallFormat,
    /// With `xml`: the longest string value the grammar admits, in characters.
    pub grammar_max_value_chars: usize,
}

/// How the model calls tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallFormat {
    /// The server parses calls into `tool_calls` (vLLM/SGLang tool parsers, hosted APIs).
    #[default]
    Native,
    /// The model writes `<function=NAME>` blocks, constrained by a GBNF `grammar` in the request
    /// (llama.cpp's server); the policy parses them.
    Xml,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "http://127.0.0.1:8000/v1".into(),
            model: String::new(),
            api_key_env: "OPENAI_API_KEY".into(),
            temperature: None,
            top_p: None,
            max_tokens: None,
            request_timeout_s: 600,
            connect_timeout_s: 10,
            max_retries: 8,
            backoff_initial_ms: 1000,
            backoff_max_ms: 60_000,
            max_retry_after_s: 300,
            logprobs: false,
            return_token_ids: false,
            weight_version: String::new(),
            extra_body: Map::new(),
            harness: crate::harness::HarnessSetting::default(),
            harness_image: String::new(),
            tool_call_format: ToolCallFormat::Native,
            grammar_max_value_chars: 4000,
        }
    }
}

/// A policy backed by an OpenAI-compatible endpoint. Cloning shares the HTTP client.
#[derive(Clone)]
pub struct OpenAiPolicy {
    name: String,
    config: OpenAiConfig,
    url: String,
    api_key: Option<String>,
    client: reqwest::Client,
}

impl std::fmt::Debug for OpenAiPolicy {
    // By hand, so the API key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiPolicy")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("model", &self.config.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The outcome of one attempt that did not give a turn.
enum Failure {
    /// Worth another try (after `retry_after` when the server said so).
    Retry { reason: String, retry_after: Option<Duration> },
    /// Final.
    Stop(PolicyError),
}

impl OpenAiPolicy {
    /// Checks the configuration, reads the API key from its variable and builds the client.
    pub fn new(name: &str, config: OpenAiConfig) -> Result<OpenAiPolicy, PolicyError> {
        let fatal = |why: String| PolicyError::Fatal(format!("policy {name}: {why}"));
        if config.model.trim().is_empty() {
            return Err(fatal("`model` is empty; set it to the model name the server serves".into()));
        }
        let base = config.base_url.trim_end_matches('/');
        let url = if base.ends_with("/chat/completions") { base.to_string() } else { format!("{base}/chat/completions") };
        reqwest::Url::parse(&url).map_err(|e| fatal(format!("base_url {:?} is not a URL ({e}); write e.g. http://host:8000/v1", config.base_url)))?;
        let api_key = if config.api_key_env.is_empty() {
            None
        } else {
            std::env::var(&config.api_key_env).ok().filter(|k| !k.trim().is_empty())
        };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_s.max(1)))
            .timeout(Duration::from_secs(config.request_timeout_s.max(1)))
            .user_agent(concat!("agentmill-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| fatal(format!("cannot build the HTTP client: {e}")))?;
        config.harness.check().map_err(|why| fatal(format!("harness: {why}")))?;
        Ok(OpenAiPolicy { name: name.to_string(), config, url, api_key, client })
    }

    /// This endpoint's settings.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// The endpoint requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request body of one turn.
    pub fn request_body(&self, messages: &[Message], tools: &[Value]) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(self.config.model));
        let xml = self.config.tool_call_format == ToolCallFormat::Xml;
        let wire = if xml { wire_message_as_text } else { wire_message };
        body.insert("messages".into(), Value::Array(messages.iter().map(wire).collect()));
        if !tools.is_empty() {
            body.insert("tools".into(), Value::Array(tools.to_vec()));
            body.insert("tool_choice".into(), json!("auto"));
            if xml {
                body.insert("grammar".into(), json!(xml_calls::grammar(tools, self.config.grammar_max_value_chars)));
            }
        }
        if let Some(t) = self.config.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(p) = self.config.top_p {
            body.insert("top_p".into(), json!(p));
        }
        if let Some(m) = self.config.max_tokens {
            body.insert("max_tokens".into(), json!(m));
        }
        if self.config.logprobs {
            body.insert("logprobs".into(), json!(true));
            // llama.cpp's server (llama-cpp-python) returns no logprobs without top_logprobs;
            // 0 asks for the sampled tokens' alone, which every server takes.
            body.insert("top_logprobs".into(), json!(0));
        }
        if self.config.return_token_ids {
            body.insert("return_token_ids".into(), json!(true));
        }
        for (k, v) in &self.config.extra_body {
            body.insert(k.clone(), v.clone());
        }
        Value::Object(body)
    }

    async fn attempt(&self, body: &Value, tools: &[Value]) -> Result<Message, Failure> {
        let mut request = self.client.post(&self.url).json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_builder() => return Err(Failure::Stop(PolicyError::Fatal(format!("{}: cannot build the request: {e}", self.url)))),
            Err(e) => return Err(Failure::Retry { reason: describe_reqwest_error(&e), retry_after: None }),
        };
        let status = response.status();
        let retry_after = response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return Err(Failure::Retry { reason: format!("reading the response body: {}", describe_reqwest_error(&e)), retry_after }),
        };
        if status.is_success() {
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| Failure::Retry { reason: format!("status {status} with a body that is not JSON ({e}): {}", excerpt(&text)), retry_after: None })?;
            let mut message = parse_completion(&value).map_err(|why| match why {
                ParseProblem::NoChoice(why) => Failure::Retry { reason: why, retry_after: None },
                ParseProblem::Unusable(why) => Failure::Stop(PolicyError::Fatal(format!("{}: {why}", self.url))),
                ParseProblem::Length(why) => Failure::Stop(PolicyError::ContextOverflow(format!("{}: {why}", self.url))),
            })?;
            calls_from_text(&mut message, self.config.tool_call_format, tools);
            return Ok(message);
        }
        let what = format!("{} answered {status}: {}", self.url, excerpt(&text));
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT | StatusCode::CONFLICT => Err(Failure::Retry { reason: what, retry_after }),
            s if s.is_server_error() => Err(Failure::Retry { reason: what, retry_after }),
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY if is_context_overflow(&text) => {
                Err(Failure::Stop(PolicyError::ContextOverflow(format!("the conversation exceeds the model's context: {what}"))))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Failure::Stop(PolicyError::Fatal(format!(
                "{what}; the server rejected the API key: put a valid key in the environment variable {}",
                if self.config.api_key_env.is_empty() { "named by api_key_env" } else { &self.config.api_key_env }
            )))),
            StatusCode::NOT_FOUND => Err(Failure::Stop(PolicyError::Fatal(format!(
                "{what}; check base_url (it should end in /v1) and that the server serves model {:?}",
                self.config.model
            )))),
            _ => Err(Failure::Stop(PolicyError::Fatal(what))),
        }
    }

    /// One chat completion with this endpoint's retries, backoff and error mapping — a policy
    /// turn without [`Policy::next`]'s `&mut self`, so one policy (one connection pool) can serve
    /// many requests at once (the synthesis enhancer does). `tools` may be empty.
    pub async fn complete(&self, messages: &[Message], tools: &[Value]) -> Result<Message, PolicyError> {
        let body = self.request_body(messages, tools);
        let mut retry = 0u32;
        loop {
            match self.attempt(&body, tools).await {
                Ok(message) => {
                    debug!(policy = %self.name, retries = retry, tool_calls = message.tool_calls.len(), "policy turn");
                    return Ok(message);
                }
                Err(Failure::Stop(e)) => return Err(e),
                Err(Failure::Retry { reason, retry_after }) => {
                    if retry >= self.config.max_retries {
                        return Err(PolicyError::Transient(format!(
                            "policy {}: gave up after {} attempts; the last failure: {reason}",
                            self.name,
                            retry + 1
                        )));
                    }
                    let wait = match retry_after {
                        Some(after) => after.min(Duration::from_secs(self.config.max_retry_after_s)),
                        None => self.backoff(retry),
                    };
                    warn!(policy = %self.name, retry = retry + 1, wait_ms = wait.as_millis() as u64, "policy request failed, retrying: {reason}");
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
            }
        }
    }

    /// The wait before retry number `retry` (0-based): exponential with equal jitter.
    fn backoff(&self, retry: u32) -> Duration {
        let initial = self.config.backoff_initial_ms.max(1);
        let ceiling = self.config.backoff_max_ms.max(initial);
        let base = initial.saturating_mul(1u64 << retry.min(30)).min(ceiling);
        Duration::from_millis(base / 2 + fastrand::u64(0..=base / 2))
    }
}

#[async_trait::async_trait]
impl Policy for OpenAiPolicy {
    fn info(&self) -> PolicyInfo {
        let mut sampling = Map::new();
        if let Some(t) = self.config.temperature {
            sampling.insert("temperature".into(), json!(t));
        }
        if let Some(p) = self.config.top_p {
            sampling.insert("top_p".into(), json!(p));
        }
        if let Some(m) = self.config.max_tokens {
            sampling.insert("max_tokens".into(), json!(m));
        }
        for (k, v) in &self.config.extra_body {
            sampling.insert(k.clone(), v.clone());
        }
        PolicyInfo {
            name: self.name.clone(),
            model: self.config.model.clone(),
            sampling: Value::Object(sampling),
            weight_version: self.config.weight_version.clone(),
        }
    }

    async fn next(&mut self, messages: &[Message], tools: &[Value]) -> Result<Message, PolicyError> {
        self.complete(messages, tools).await
    }
}

/// One message as the chat-completions API takes it.
fn wire_message(m: &Message) -> Value {
    match m.role {
        Role::System => json!({ "role": "system", "content": m.content }),
        Role::User => json!({ "role": "user", "content": m.content }),
        Role::Assistant => {
            let mut out = json!({ "role": "assistant" });
            out["content"] = if m.content.is_empty() && !m.tool_calls.is_empty() { Value::Null } else { json!(m.content) };
            if !m.tool_calls.is_empty() {
                out["tool_calls"] = Value::Array(
                    m.tool_calls
                        .iter()
                        .map(|c| json!({ "id": c.id, "type": "function", "function": { "name": c.function.name, "arguments": c.function.arguments } }))
                        .collect(),
                );
            }
            out
        }
        Role::Tool => json!({ "role": "tool", "tool_call_id": m.tool_call_id.clone().unwrap_or_default(), "content": m.content }),
    }
}

/// Reads a chat-completions response body as this policy does: `choices[0]`'s message (content,
/// reasoning, tool calls — read out of the text under [`ToolCallFormat::Xml`] — usage, logprobs,
/// token ids). A body with no usable choice is a [`PolicyError::Fatal`]; a turn cut off
/// (`finish_reason: "length"`) is a [`PolicyError::ContextOverflow`]. For readers of recorded
/// bodies (the tests' fixtures, a gateway's log).
pub fn parse_response(body: &Value, format: ToolCallFormat, tools: &[Value]) -> Result<Message, PolicyError> {
    let mut message = parse_completion(body).map_err(|why| match why {
        ParseProblem::NoChoice(why) | ParseProblem::Unusable(why) => PolicyError::Fatal(why),
        ParseProblem::Length(why) => PolicyError::ContextOverflow(why),
    })?;
    calls_from_text(&mut message, format, tools);
    Ok(message)
}

/// Under [`ToolCallFormat::Xml`], the calls of a turn that came as text read out of its content.
fn calls_from_text(message: &mut Message, format: ToolCallFormat, tools: &[Value]) {
    if format == ToolCallFormat::Xml && message.tool_calls.is_empty() {
        let (content, calls) = xml_calls::parse(&message.content, tools);
        message.content = content;
        message.tool_calls = calls;
    }
}

/// An assistant turn sent back as the text the model wrote (`tool_call_format = "xml"`): its
/// calls in the paper's format inside `content`, no `tool_calls`.
fn wire_message_as_text(m: &Message) -> Value {
    match m.role {
        Role::Assistant => json!({ "role": "assistant", "content": xml_calls::render(&m.content, &m.tool_calls) }),
        _ => wire_message(m),
    }
}

/// Why a successful response could not be used.
pub(crate) enum ParseProblem {
    /// The turn was cut off (`finish_reason: "length"`): at `max_tokens` or the context window.
    Length(String),
    /// No choice at all (some gateways answer 200 with an error object): worth a retry.
    NoChoice(String),
    /// A choice that is not a chat message.
    Unusable(String),
}

/// Reads `choices[0]` of a chat-completions response into an assistant message.
pub(crate) fn parse_completion(value: &Value) -> Result<Message, ParseProblem> {
    let Some(choice) = value.get("choices").and_then(|c| c.get(0)).filter(|c| c.is_object()) else {
        return Err(ParseProblem::NoChoice(format!("the response has no choices[0]: {}", excerpt(&value.to_string()))));
    };
    let Some(message) = choice.get("message").filter(|m| m.is_object()) else {
        return Err(ParseProblem::Unusable(format!("choices[0] has no message object: {}", excerpt(&choice.to_string()))));
    };
    let mut out = Message::text(Role::Assistant, text_content(message.get("content")));
    out.reasoning_content = ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| message.get(*k).and_then(Value::as_str))
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        out.tool_calls = calls.iter().enumerate().map(|(i, call)| read_tool_call(i, call)).collect();
    }
    if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
        let count = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
        out.usage = Some(Usage { prompt_tokens: count("prompt_tokens"), completion_tokens: count("completion_tokens") });
    }
    let entries = choice.get("logprobs").and_then(|l| l.get("content")).and_then(Value::as_array);
    if let Some(entries) = entries {
        let logprobs: Option<Vec<f32>> = entries.iter().map(|e| e.get("logprob").and_then(Value::as_f64).map(|l| l as f32)).collect();
        out.logprobs = logprobs.filter(|l| !l.is_empty());
    }
    let ids = choice.get("token_ids").and_then(Value::as_array).and_then(|ids| ids.iter().map(|i| i.as_u64().and_then(|i| u32::try_from(i).ok())).collect::<Option<Vec<u32>>>());
    out.token_ids = ids.or_else(|| {
        // vLLM's `return_tokens_as_token_ids` writes each token as `token_id:N`.
        entries?
            .iter()
            .map(|e| e.get("token").and_then(Value::as_str)?.strip_prefix("token_id:")?.parse::<u32>().ok())
            .collect::<Option<Vec<u32>>>()
    });
    out.token_ids = out.token_ids.filter(|t| !t.is_empty());
    if out.token_ids.is_none() {
        // llama.cpp names each sampled token by its text only; the learner maps the texts to ids.
        out.token_pieces = entries
            .and_then(|entries| entries.iter().map(|e| e.get("token").and_then(Value::as_str).map(str::to_string)).collect::<Option<Vec<String>>>())
            .filter(|p| !p.is_empty());
    }
    if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
        debug!(finish_reason = reason, "completion finished");
        if reason == "length" {
            return Err(ParseProblem::Length(format!(
                "the turn was cut off (finish_reason \"length\": max_tokens or the context window reached) after {} tokens",
                out.usage.as_ref().map_or(0, |u| u.completion_tokens)
            )));
        }
    }
    Ok(out)
}

/// The `i`-th entry of a message's `tool_calls` (an id made up where it has none).
pub(crate) fn read_tool_call(i: usize, call: &Value) -> ToolCall {
    let function = call.get("function");
    let name = function.and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or_default();
    let arguments = match function.and_then(|f| f.get("arguments")) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        // Some servers send the arguments as an object; keep them as the JSON text.
        Some(other) => other.to_string(),
    };
    let id = call.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).map_or_else(|| format!("call_{i}"), str::to_string);
    ToolCall { id, kind: "function".into(), function: FunctionCall { name: name.into(), arguments } }
}

/// `content` as text: a string, or the text parts of a list of content parts.
pub(crate) fn text_content(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

/// Whether an error body says the prompt is too long for the model (vLLM, SGLang, llama.cpp,
/// OpenAI word it differently).
pub(crate) fn is_context_overflow(body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    ["context length", "context_length", "maximum context", "context window", "context size", "prompt is too long", "too many tokens"]
        .iter()
        .any(|p| body.contains(p))
}

/// `Retry-After`: delay-seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    // The source chain carries the useful part ("connection refused", "dns error").
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// The start of a body, for messages.
fn excerpt(text: &str) -> String {
    const MAX: usize = 400;
    let text = text.trim();
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn a_vllm_response_gives_content_reasoning_calls_usage_ids_and_logprobs() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "m", "prompt_token_ids": [1, 2],
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": null, "reasoning_content": "think",
                    "tool_calls": [{"id": "chatcmpl-tool-1", "type": "function", "function": {"name": "bash", "arguments": {"command": "ls"}}}]},
                "logprobs": {"content": [{"token": "token_id:7", "logprob": -0.5, "bytes": [108], "top_logprobs": []}]},
                "finish_reason": "tool_calls", "token_ids": [7]
            }],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}
        });
        let m = parse_completion(&body).ok().expect("parses");
        assert_eq!(m.content, "");
        assert_eq!(m.reasoning_content.as_deref(), Some("think"));
        assert_eq!(m.tool_calls[0].function.arguments, r#"{"command":"ls"}"#);
        assert_eq!(m.usage, Some(Usage { prompt_tokens: 10, completion_tokens: 1 }));
        assert_eq!(m.token_ids, Some(vec![7]));
        assert_eq!(m.logprobs, Some(vec![-0.5]));
    }

    #[test]
    fn debug_output_never_shows_the_api_key() {
        let mut policy = OpenAiPolicy::new("openai", OpenAiConfig { model: "m".into(), ..OpenAiConfig::default() }).expect("config");
        policy.api_key = Some("sk-secret".into());
        let shown = format!("{policy:?}");
        assert!(!shown.contains("sk-secret") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn context_errors_are_recognised() {
        assert!(is_context_overflow(r#"{"message":"This model's maximum context length is 32768 tokens. However, you requested 40000 tokens"}"#));
        assert!(!is_context_overflow(r#"{"message":"unknown field"}"#));
    }
}
