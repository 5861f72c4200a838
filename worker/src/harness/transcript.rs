//! The episode's conversation, built from what the gateway saw.
//!
//! A harness sends its whole conversation with every model call. The record's conversation is
//! the chain of those calls: the first call's messages, then for each answered call the
//! assistant turn **as the server returned it** (content, reasoning, tool calls with their
//! argument strings, token ids, logprobs, usage: [`crate::agent::policy::openai`]'s reading of the
//! response body), then the messages the harness added before its next call (its tool results,
//! its own user messages). The harness's copy of an earlier assistant turn is never used: a
//! client library may re-serialise it (key order, `null` for empty content, re-encoded
//! arguments), and the learner must see the tokens the model produced.
//!
//! A call whose messages do not extend the previous call's (the harness dropped or rewrote its
//! history, e.g. to summarise it) starts the chain again from that call's messages; what came
//! before stays in the exchanges but not in the conversation, and [`Transcript::restarts`] counts
//! it. Calls that got no completion (a refusal, a server error the harness retried) are not turns.

use agentmill_proto::{Message, Role};
use serde_json::Value;

use super::gateway::Exchange;
use crate::agent::policy::ToolCallFormat;
use crate::agent::policy::openai::{parse_response, read_tool_call, text_content};

/// The conversation of an episode and what building it found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// System, user, assistant and tool messages, oldest first.
    pub messages: Vec<Message>,
    /// The tools the harness offered the model (its first call's `tools`).
    pub tools: Vec<Value>,
    /// Answered model calls (assistant turns).
    pub turns: u32,
    /// Times the harness's history did not extend the previous call's.
    pub restarts: u32,
    /// The last answer that was not a completion (status and body), for the record's error.
    pub last_failure: Option<String>,
}

/// One request message as a record message.
fn message(v: &Value) -> Message {
    let role = match v.get("role").and_then(Value::as_str) {
        Some("system" | "developer") => Role::System,
        Some("assistant") => Role::Assistant,
        Some("tool") => Role::Tool,
        _ => Role::User,
    };
    let mut m = Message::text(role, text_content(v.get("content")));
    if role == Role::Tool {
        m.tool_call_id = v.get("tool_call_id").and_then(Value::as_str).map(str::to_string);
        m.name = v.get("name").and_then(Value::as_str).map(str::to_string);
    }
    if role == Role::Assistant
        && let Some(calls) = v.get("tool_calls").and_then(Value::as_array)
    {
        m.tool_calls = calls.iter().enumerate().map(|(i, c)| read_tool_call(i, c)).collect();
    }
    m
}

/// Builds the conversation from the exchanges, in order; `format` says how the server wrote its
/// calls (under [`ToolCallFormat::Xml`] they are read out of the turn's text, as the harness got them).
pub fn build(exchanges: &[Exchange], format: ToolCallFormat) -> Transcript {
    let mut t = Transcript::default();
    // The previous answered call's request messages (as the harness sent them).
    let mut previous: Option<Vec<Value>> = None;
    for x in exchanges.iter().filter(|x| x.path.trim_end_matches('/').ends_with("/chat/completions")) {
        let request: Value = serde_json::from_str(&x.request).unwrap_or(Value::Null);
        let offered: Vec<Value> = request.get("tools").and_then(Value::as_array).cloned().unwrap_or_default();
        let completion = (x.upstream && x.status == 200)
            .then(|| serde_json::from_str::<Value>(&x.response).ok())
            .flatten()
            .and_then(|v| parse_response(&v, format, &offered).ok());
        let Some(mut assistant) = completion else {
            t.last_failure = Some(format!("status {}: {}", x.status, excerpt(&x.response)));
            continue;
        };
        let sent: Vec<Value> = request.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
        if t.tools.is_empty() {
            t.tools = offered;
        }
        let extends = previous.as_ref().is_some_and(|p| sent.len() > p.len() && sent[..p.len()] == p[..]);
        let new = match &previous {
            // The harness's copy of the last assistant turn sits at p.len(); the record has the server's.
            Some(p) if extends => sent.get(p.len() + 1..).unwrap_or_default(),
            _ => {
                if previous.is_some() {
                    t.restarts += 1;
                    t.messages.clear();
                }
                &sent[..]
            }
        };
        t.messages.extend(new.iter().map(message));
        assistant.role = Role::Assistant;
        t.messages.push(assistant);
        t.turns += 1;
        previous = Some(sent);
    }
    t
}

fn excerpt(s: &str) -> String {
    let mut cut = s.len().min(400);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn exchange(messages: Value, response: Value, status: u16) -> Exchange {
        Exchange {
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            request: json!({ "model": "m", "messages": messages, "tools": [{"type": "function", "function": {"name": "bash"}}] }).to_string(),
            status,
            response: response.to_string(),
            delivered: None,
            upstream: true,
            upstream_time: Duration::ZERO,
            overhead: Duration::ZERO,
        }
    }

    fn answer(content: &str, args: &str, ids: &[u32]) -> Value {
        json!({ "choices": [{ "index": 0, "finish_reason": "tool_calls", "token_ids": ids,
            "message": { "role": "assistant", "content": content,
                "tool_calls": [{ "id": "c1", "type": "function", "function": { "name": "bash", "arguments": args } }] } }],
            "usage": { "prompt_tokens": 5, "completion_tokens": 2 } })
    }

    #[test]
    fn the_chain_keeps_the_servers_turns_and_the_harnesses_observations() {
        let sys = json!({"role": "system", "content": "s"});
        let user = json!({"role": "user", "content": "u"});
        // The harness re-serialises the assistant turn (other spacing in the arguments).
        let resent = json!({"role": "assistant", "content": "a", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{\"command\": \"ls\"}"}}]});
        let tool = json!({"role": "tool", "tool_call_id": "c1", "content": "out"});
        let x = [
            exchange(json!([sys, user]), answer("a", r#"{"command":"ls"}"#, &[1, 2]), 200),
            exchange(json!([sys, user, resent, tool]), json!({"error": "busy"}), 503),
            exchange(json!([sys, user, resent, tool]), answer(" b ", r#"{"command":"echo  x"}"#, &[3]), 200),
        ];
        let t = build(&x, ToolCallFormat::Native);
        assert_eq!((t.turns, t.restarts, t.tools.len()), (2, 0, 1));
        let roles: Vec<Role> = t.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::Tool, Role::Assistant]);
        assert_eq!(t.messages[2].tool_calls[0].function.arguments, r#"{"command":"ls"}"#, "the server's bytes, not the harness's copy");
        assert_eq!(t.messages[2].token_ids, Some(vec![1, 2]));
        assert_eq!(t.messages[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(t.messages[4].content, " b ");
        assert!(t.last_failure.as_deref().is_some_and(|f| f.contains("503")));
    }

    #[test]
    fn under_xml_a_turns_call_is_read_out_of_the_servers_text_with_its_token_texts() {
        let text = "<function=bash>\n<parameter=command>\nls\n</parameter>\n</function>";
        let pieces = ["<function=", "bash", ">\n<parameter=command>\n", "ls", "\n</parameter>\n</function>"];
        let body = json!({ "choices": [{ "index": 0, "finish_reason": "stop",
            "logprobs": {"content": pieces.iter().map(|p| json!({"token": p, "logprob": -0.5, "bytes": null})).collect::<Vec<_>>()},
            "message": { "role": "assistant", "content": text } }] });
        let t = build(&[exchange(json!([{"role": "user", "content": "u"}]), body, 200)], ToolCallFormat::Xml);
        let turn = &t.messages[1];
        assert_eq!((turn.content.as_str(), turn.tool_calls.len()), ("", 1));
        assert_eq!(turn.tool_calls[0].function.arguments, r#"{"command":"ls"}"#);
        assert_eq!(turn.token_ids, None);
        assert_eq!(turn.token_pieces.as_deref(), Some(&pieces.map(String::from)[..]), "llama.cpp's token texts, in order");
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn a_rewritten_history_restarts_the_chain() {
        let a = exchange(json!([{"role": "user", "content": "one"}]), answer("x", "{}", &[]), 200);
        let b = exchange(json!([{"role": "user", "content": "summary"}]), answer("y", "{}", &[]), 200);
        let t = build(&[a, b], ToolCallFormat::Native);
        assert_eq!((t.turns, t.restarts, t.messages.len()), (2, 1, 2));
        assert_eq!(t.messages[0].content, "summary");
    }
}
