//! The per-episode LLM gateway: what a harness's model calls reach, and the exact record of them.
//!
//! [`Gateway::handle`] takes one HTTP request as the harness sent it (through the sandbox's bridge,
//! [`super::bridge`]) and forwards `POST /v1/chat/completions` and `GET /v1/models` to the
//! endpoint's server. On the way it puts the worker's settings into the request — the model
//! name, the sampling keys set in the endpoint's configuration, `logprobs` and
//! `return_token_ids` when asked for, `extra_body` — so the harness cannot choose another model
//! or sampling than the record names, and the server returns what the learner needs. The answer
//! goes back to the harness byte for byte, and every exchange (the body forwarded, the body
//! returned, the status, the time upstream and in the gateway) is kept in order for the record
//! ([`super::transcript`]).
//!
//! With `tool_call_format = "xml"` (a server without a tool-call parser that serves the learner's
//! own chat template, llama.cpp's among them) the gateway speaks tool calls to the harness and
//! the paper's text format to the server: the request carries the GBNF `grammar` of the
//! harness's tools ([`xml_calls::grammar`]) and earlier assistant turns go up as the text the
//! model wrote ([`xml_calls::render`]); the call in the server's text comes back to the harness
//! as `tool_calls` ([`xml_calls::parse`]). The record keeps the server's body, so the learner
//! trains the text, and the tokens, the model produced.
//!
//! Streaming (`stream: true`) is refused with a 400 that says so: a recorded turn is one body.
//! Past the episode's step limit a call is refused with a 429 naming the limit, so a harness that
//! ignores its own step limit still ends.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::agent::policy::openai::{read_tool_call, text_content};
use crate::agent::policy::{OpenAiConfig, ToolCallFormat, xml_calls};

/// One model call as the gateway saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// `POST` or `GET`.
    pub method: String,
    /// The path the harness asked for (`/v1/chat/completions`).
    pub path: String,
    /// The request body as forwarded (after the worker's settings went in).
    pub request: String,
    /// The status the harness got.
    pub status: u16,
    /// The body byte for byte as the server sent it (or the gateway's refusal).
    pub response: String,
    /// What the harness got instead of `response`, when the gateway translated it (the call read
    /// out of the text under `tool_call_format = "xml"`); `None`: the harness got `response`.
    pub delivered: Option<String>,
    /// Whether the server answered (false: the gateway refused or could not reach it).
    pub upstream: bool,
    /// Time waiting on the server.
    pub upstream_time: Duration,
    /// Time in the gateway itself (the whole call less the time upstream).
    pub overhead: Duration,
}

/// An answer for the harness.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Body.
    pub body: String,
}

impl Answer {
    fn error(status: u16, message: impl Into<String>) -> Answer {
        let body = json!({ "error": { "message": message.into(), "type": "agentmill_gateway", "code": status } }).to_string();
        Answer { status, content_type: "application/json".into(), body }
    }
}

/// One episode's gateway to one policy endpoint.
#[derive(Debug)]
pub struct Gateway {
    config: OpenAiConfig,
    base: String,
    api_key: Option<String>,
    client: reqwest::Client,
    max_calls: u32,
    exchanges: Mutex<Vec<Exchange>>,
}

impl Gateway {
    /// A gateway to `config`'s server that allows `max_calls` chat completions.
    pub fn new(config: &OpenAiConfig, max_calls: u32) -> Result<Gateway, String> {
        let base = config.base_url.trim_end_matches('/').trim_end_matches("/chat/completions").to_string();
        reqwest::Url::parse(&base).map_err(|e| format!("base_url {:?} is not a URL ({e}); write e.g. http://host:8000/v1", config.base_url))?;
        let api_key =
            if config.api_key_env.is_empty() { None } else { std::env::var(&config.api_key_env).ok().filter(|k| !k.trim().is_empty()) };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_s.max(1)))
            .timeout(Duration::from_secs(config.request_timeout_s.max(1)))
            .user_agent(concat!("agentmill-worker-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Gateway { config: config.clone(), base, api_key, client, max_calls, exchanges: Mutex::new(Vec::new()) })
    }

    /// Every exchange so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().map(|e| e.clone()).unwrap_or_default()
    }

    fn chat_calls(&self) -> u32 {
        self.exchanges.lock().map(|e| e.iter().filter(|x| x.upstream && x.path.ends_with("/chat/completions")).count() as u32).unwrap_or(0)
    }

    /// The request body the server gets for the harness's `body`: the worker's model, sampling
    /// and token settings in place of the harness's.
    pub fn rewrite(&self, body: &str) -> Result<String, Answer> {
        let mut request: Map<String, Value> = match serde_json::from_str(body) {
            Ok(Value::Object(o)) => o,
            _ => return Err(Answer::error(400, "agentmill gateway: the request body is not a JSON object")),
        };
        if request.get("stream").and_then(Value::as_bool) == Some(true) {
            return Err(Answer::error(
                400,
                "agentmill gateway: streaming is not served (each recorded turn is one response body); send stream=false",
            ));
        }
        request.remove("stream");
        request.remove("stream_options");
        let c = &self.config;
        request.insert("model".into(), json!(c.model));
        if let Some(t) = c.temperature {
            request.insert("temperature".into(), json!(t));
        }
        if let Some(p) = c.top_p {
            request.insert("top_p".into(), json!(p));
        }
        if let Some(m) = c.max_tokens {
            request.insert("max_tokens".into(), json!(m));
        }
        if c.logprobs {
            request.insert("logprobs".into(), json!(true));
            // llama.cpp's server returns no logprobs without top_logprobs (the policy does the same).
            request.entry("top_logprobs").or_insert(json!(0));
        }
        if c.return_token_ids {
            request.insert("return_token_ids".into(), json!(true));
        }
        if c.tool_call_format == ToolCallFormat::Xml {
            as_text_calls(&mut request, c.grammar_max_value_chars);
        }
        for (k, v) in &c.extra_body {
            request.insert(k.clone(), v.clone());
        }
        Ok(Value::Object(request).to_string())
    }

    /// Answers one request of the harness and keeps the exchange.
    pub async fn handle(&self, method: &str, path: &str, body: &str) -> Answer {
        let started = Instant::now();
        let route = path.split('?').next().unwrap_or_default().trim_end_matches('/');
        let (request, outcome) = match (method, route) {
            ("POST", "/v1/chat/completions" | "/chat/completions") => {
                if self.chat_calls() >= self.max_calls {
                    let why = format!("agentmill gateway: the episode's step limit of {} model calls is reached", self.max_calls);
                    (body.to_string(), Err(Answer::error(429, why)))
                } else {
                    match self.rewrite(body) {
                        Ok(rewritten) => {
                            let sent = self.forward(reqwest::Method::POST, "/chat/completions", Some(rewritten.clone())).await;
                            (rewritten, sent)
                        }
                        Err(refusal) => (body.to_string(), Err(refusal)),
                    }
                }
            }
            ("GET", "/v1/models" | "/models") => (String::new(), self.forward(reqwest::Method::GET, "/models", None).await),
            _ => (body.to_string(), Err(Answer::error(404, format!("agentmill gateway: {method} {path} is not served; the gateway serves POST /v1/chat/completions and GET /v1/models")))),
        };
        let (answer, upstream, upstream_time) = match outcome {
            Ok((answer, t)) => (answer, true, t),
            Err(answer) => (answer, false, Duration::ZERO),
        };
        let delivered = (upstream && answer.status == 200 && route.ends_with("/chat/completions") && self.config.tool_call_format == ToolCallFormat::Xml)
            .then(|| calls_out_of_text(&request, &answer.body))
            .flatten();
        let total = started.elapsed();
        let exchange = Exchange {
            method: method.to_string(),
            path: path.to_string(),
            request,
            status: answer.status,
            response: answer.body.clone(),
            delivered: delivered.clone(),
            upstream,
            upstream_time,
            overhead: total.saturating_sub(upstream_time),
        };
        if let Ok(mut all) = self.exchanges.lock() {
            all.push(exchange);
        }
        match delivered {
            Some(body) => Answer { body, ..answer },
            None => answer,
        }
    }

    async fn forward(&self, method: reqwest::Method, tail: &str, body: Option<String>) -> Result<(Answer, Duration), Answer> {
        let url = format!("{}{tail}", self.base);
        let mut request = self.client.request(method, &url);
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let t = Instant::now();
        let response = request.send().await.map_err(|e| Answer::error(502, format!("agentmill gateway: {url}: {e}")))?;
        let status = response.status().as_u16();
        let content_type =
            response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_string();
        let bytes = response.bytes().await.map_err(|e| Answer::error(502, format!("agentmill gateway: reading {url}: {e}")))?;
        let elapsed = t.elapsed();
        let body = String::from_utf8(bytes.to_vec()).map_err(|_| Answer::error(502, format!("agentmill gateway: {url} answered a body that is not UTF-8")))?;
        Ok((Answer { status, content_type, body }, elapsed))
    }
}

/// A request as the server gets it under `tool_call_format = "xml"`: the grammar of the
/// harness's tools, `tool_choice` left to the grammar, and each assistant turn the harness sends
/// back with tool calls turned into the text the model wrote.
fn as_text_calls(request: &mut Map<String, Value>, max_value_chars: usize) {
    let tools: Vec<Value> = request.get("tools").and_then(Value::as_array).cloned().unwrap_or_default();
    if !tools.is_empty() {
        request.insert("grammar".into(), json!(xml_calls::grammar(&tools, max_value_chars)));
        request.insert("tool_choice".into(), json!("auto"));
    }
    let Some(messages) = request.get_mut("messages").and_then(Value::as_array_mut) else { return };
    for m in messages.iter_mut().filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant")) {
        let Some(calls) = m.get("tool_calls").and_then(Value::as_array).filter(|c| !c.is_empty()) else { continue };
        let calls: Vec<agentmill_proto::ToolCall> = calls.iter().enumerate().map(|(i, c)| read_tool_call(i, c)).collect();
        let content = text_content(m.get("content"));
        *m = json!({ "role": "assistant", "content": xml_calls::render(&content, &calls) });
    }
}

/// The server's answer as the harness gets it under `tool_call_format = "xml"`: the call in
/// `choices[0].message.content` moved into `tool_calls` (JSON arguments, as a tool-calling
/// server answers) with `finish_reason: "tool_calls"`. `None` when the body holds no call.
fn calls_out_of_text(request: &str, body: &str) -> Option<String> {
    let request: Value = serde_json::from_str(request).ok()?;
    let tools: Vec<Value> = request.get("tools").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut body: Value = serde_json::from_str(body).ok()?;
    let choice = body.get_mut("choices")?.get_mut(0)?;
    let message = choice.get_mut("message")?;
    if message.get("tool_calls").and_then(Value::as_array).is_some_and(|c| !c.is_empty()) {
        return None;
    }
    let text = text_content(message.get("content"));
    let (content, calls) = xml_calls::parse(&text, &tools);
    if calls.is_empty() {
        return None;
    }
    message["content"] = if content.is_empty() { Value::Null } else { json!(content) };
    message["tool_calls"] = calls
        .iter()
        .map(|c| json!({ "id": c.id, "type": "function", "function": { "name": c.function.name, "arguments": c.function.arguments } }))
        .collect();
    choice["finish_reason"] = json!("tool_calls");
    Some(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> Gateway {
        let config = OpenAiConfig {
            model: "served".into(),
            temperature: Some(0.0),
            logprobs: true,
            return_token_ids: true,
            extra_body: [("top_k".to_string(), json!(1))].into_iter().collect(),
            ..OpenAiConfig::default()
        };
        Gateway::new(&config, 2).expect("gateway")
    }

    #[test]
    fn the_workers_settings_replace_the_harnesses() {
        let body = r#"{"model":"gpt-4","messages":[{"role":"user","content":"hi"}],"temperature":1.5,"stream":false}"#;
        let out: Value = serde_json::from_str(&gateway().rewrite(body).expect("rewritten")).expect("json");
        assert_eq!(out["model"], "served");
        assert_eq!(out["temperature"], 0.0);
        assert_eq!((out["logprobs"].clone(), out["return_token_ids"].clone(), out["top_k"].clone()), (json!(true), json!(true), json!(1)));
        assert_eq!(out["messages"], json!([{"role":"user","content":"hi"}]));
        assert!(out.get("stream").is_none());
    }

    #[test]
    fn streaming_and_bad_bodies_are_refused_with_the_reason() {
        let g = gateway();
        let e = g.rewrite(r#"{"messages":[],"stream":true}"#).expect_err("refused");
        assert_eq!(e.status, 400);
        assert!(e.body.contains("stream=false"), "{}", e.body);
        assert_eq!(g.rewrite("[1]").expect_err("refused").status, 400);
    }

    #[test]
    fn under_xml_the_server_gets_text_calls_and_the_harness_gets_tool_calls() {
        let config = OpenAiConfig { model: "served".into(), tool_call_format: ToolCallFormat::Xml, grammar_max_value_chars: 50, ..OpenAiConfig::default() };
        let g = Gateway::new(&config, 4).expect("gateway");
        let bash = json!({"type": "function", "function": {"name": "bash", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}});
        let body = json!({
            "model": "x", "tools": [bash], "tool_choice": "required",
            "messages": [
                {"role": "user", "content": "fix it"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "bash", "arguments": "{\"command\": \"ls\"}"}}]},
                {"role": "tool", "tool_call_id": "call_0", "content": "a.py"}
            ]
        });
        let sent: Value = serde_json::from_str(&g.rewrite(&body.to_string()).expect("rewritten")).expect("json");
        assert!(sent["grammar"].as_str().is_some_and(|g| g.starts_with("root ::= t0\n") && g.contains("<function=bash>")), "{sent}");
        assert_eq!(sent["tool_choice"], "auto", "the grammar decides, not the server's own call parser");
        assert_eq!(sent["tools"], body["tools"], "the template still writes the tools into the prompt");
        // The harness's copy of its earlier turn goes up as the text the model wrote.
        assert_eq!(sent["messages"][1], json!({"role": "assistant", "content": "<function=bash>\n<parameter=command>\nls\n</parameter>\n</function>"}));
        assert_eq!(sent["messages"][2], body["messages"][2]);

        let text = "<function=bash>\n<parameter=command>\ncat a.py\n</parameter>\n</function>";
        let server = json!({"id": "c", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text},
            "logprobs": {"content": [{"token": "<function=bash>", "logprob": -0.1, "bytes": null}]}}], "usage": {"prompt_tokens": 9, "completion_tokens": 1}});
        let harness: Value = serde_json::from_str(&calls_out_of_text(&sent.to_string(), &server.to_string()).expect("a call")).expect("json");
        let message = &harness["choices"][0]["message"];
        assert_eq!(message["content"], Value::Null);
        assert_eq!(message["tool_calls"], json!([{"id": "call_0", "type": "function", "function": {"name": "bash", "arguments": "{\"command\":\"cat a.py\"}"}}]));
        assert_eq!(harness["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(harness["usage"], server["usage"], "the rest of the body is the server's");
        // Text with no call, and a body that already has tool calls, go to the harness unchanged.
        let plain = json!({"choices": [{"message": {"role": "assistant", "content": "thinking"}}]});
        assert_eq!(calls_out_of_text(&sent.to_string(), &plain.to_string()), None);
    }

    #[tokio::test]
    async fn unknown_paths_are_404_and_kept() {
        let g = gateway();
        let a = g.handle("POST", "/v1/embeddings", "{}").await;
        assert_eq!(a.status, 404);
        assert!(a.body.contains("/v1/chat/completions"), "{}", a.body);
        let kept = g.exchanges();
        assert_eq!((kept.len(), kept[0].upstream, kept[0].status), (1, false, 404));
    }
}
