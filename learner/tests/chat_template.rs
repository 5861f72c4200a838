//! The chat template `agentmill-learner export-gguf` writes into GGUF files
//! (`render::CHATML_XML_TOOLS_JINJA`) formats a conversation exactly as the learner renders it:
//! rendered here by `render` and by llama-cpp-python's Jinja formatter (what llama.cpp's server
//! runs), byte for byte.

use std::path::Path;
use std::process::Command;

use agentmill_learner::render::{CHATML_XML_TOOLS_JINJA, Template, render};
use agentmill_proto::{ExitReason, FunctionCall, Message, RecordKind, Role, ToolCall, TrajectoryRecord};
use serde_json::{Value, json};

fn call(id: &str, name: &str, args: &str) -> ToolCall {
    ToolCall { id: id.into(), kind: "function".into(), function: FunctionCall { name: name.into(), arguments: args.into() } }
}

fn tool(id: &str, content: &str) -> Message {
    let mut m = Message::text(Role::Tool, content);
    m.tool_call_id = Some(id.into());
    m
}

fn assistant(content: &str, reasoning: Option<&str>, calls: Vec<ToolCall>) -> Message {
    let mut m = Message::text(Role::Assistant, content);
    m.reasoning_content = reasoning.map(str::to_string);
    m.tool_calls = calls;
    m
}

/// A message as a chat-completions client sends it to a server using the template: arguments
/// that are a JSON object as a mapping, others as the string the model wrote.
fn wire(m: &Message) -> Value {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut out = json!({"role": role, "content": m.content});
    if let Some(r) = &m.reasoning_content {
        out["reasoning_content"] = json!(r);
    }
    if !m.tool_calls.is_empty() {
        out["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| {
                let args = match serde_json::from_str::<Value>(&c.function.arguments) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!(c.function.arguments),
                };
                json!({"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": args}})
            })
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        out["tool_call_id"] = json!(id);
    }
    out
}

#[test]
fn the_exported_chat_template_renders_as_the_learner_does() {
    let tools = vec![
        json!({"type": "function", "function": {"name": "bash", "description": "Run a command; <b>\"quoted\"</b> & naïve", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}),
        json!({"type": "function", "function": {"name": "submit", "parameters": {"type": "object", "properties": {}}}}),
    ];
    let conversations: Vec<(Vec<Message>, Vec<Value>)> = vec![
        (
            vec![
                Message::text(Role::System, "You are an engineer."),
                Message::text(Role::User, "Fix it."),
                assistant("Let me look.", Some("Probably split().\n\n"), vec![
                    call("c1", "bash", r#"{"command": "grep -n split ini.py"}"#),
                    call("c2", "str_replace_editor", r#"{"path": "/testbed/ini.py", "command": "view", "view_range": [1, 3], "flag": true}"#),
                ]),
                tool("c1", "12: split('=')"),
                tool("c2", "1\tx\n"),
                assistant("", None, vec![call("c3", "submit", "{}")]),
                tool("c3", "diff"),
            ],
            tools.clone(),
        ),
        // No system message: the tools get a system turn of their own.
        (vec![Message::text(Role::User, "go"), assistant("ends in a newline\n", None, vec![call("c1", "bash", "{\"command\": \"ls")]), tool("c1", "error")], tools),
        // No tools, plain turns.
        (vec![Message::text(Role::System, "sys"), Message::text(Role::User, "hi"), assistant("hello", None, vec![]), Message::text(Role::User, "bye")], vec![]),
    ];
    let mut want = Vec::new();
    let mut payload = Vec::new();
    for (messages, tools) in &conversations {
        let record = TrajectoryRecord {
            tools: tools.clone(),
            messages: messages.clone(),
            exit_reason: Some(ExitReason::Submitted),
            ..TrajectoryRecord::new(RecordKind::Env, "env:t:r0:a1", "t")
        };
        want.push(render(&record, Template::ChatMlXmlTools).expect("trainable").text);
        payload.push(json!({"messages": messages.iter().map(wire).collect::<Vec<_>>(), "tools": tools}));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("template.jinja");
    std::fs::write(&template, CHATML_XML_TOOLS_JINJA).expect("template");
    let convs = dir.path().join("conversations.json");
    std::fs::write(&convs, serde_json::to_string(&payload).expect("json")).expect("conversations");
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/llama-cpp-0.3.36/bin/python");
    assert!(python.exists(), "{} is missing: run deploy/setup.sh (it installs llama-cpp-python's server)", python.display());
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export/render_chat_template.py"))
        .arg(&template)
        .arg(&convs)
        .output()
        .expect("run render_chat_template.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<String> = serde_json::from_slice(&out.stdout).expect("JSON list");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "conversation {i}: the Jinja template renders differently from the learner");
    }
    assert_eq!(got.len(), want.len());
}
