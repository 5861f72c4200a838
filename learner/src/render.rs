//! Rendering records into the text the model trains on.
//!
//! `env` records follow the paper's conversion of agent trajectories (the default template,
//! [`Template::ChatMlXmlTools`]):
//!
//! ```text
//! <|im_start|>system
//! You are a helpful assistant …
//!
//! # Tools
//!
//! You have access to the following functions:
//!
//! <tools>
//! {"type": "function", "function": {"name": "bash", …}}
//! </tools><|im_end|>
//! <|im_start|>user
//! <the task>
//! <|im_end|>
//! <|im_start|>assistant
//! <think>
//! reasoning
//! </think>
//!
//! Let me look at the parser.
//!
//! <function=bash>
//! <parameter=command>
//! grep -n split src/ini.py
//! </parameter>
//! </function><|im_end|>
//! <|im_start|>user
//! <tool_response>
//! 12:    key, value = line.split('=')
//! </tool_response><|im_end|>
//! ```
//!
//! Tool results become user turns (consecutive results share one turn), reasoning goes in
//! `<think>`, and each tool call's arguments become one `<parameter=KEY>` block per key (strings
//! verbatim, other JSON values as compact JSON). Arguments that are not a JSON object (a model's
//! malformed call) are kept verbatim in a single `<parameter=arguments>` block, so nothing the
//! model wrote is lost. `ctx` records train on their rendered `text`.
//!
//! [`Rendered::assistant_spans`] marks the byte ranges the `assistant` loss mask trains on: the
//! body of every assistant turn and its `<|im_end|>`, not the role header.
//! [`Rendered::recorded`] keeps, for each assistant turn whose message carries the policy's
//! sampled tokens (their ids, or their texts where the server gives no ids), the byte range of
//! its body and those tokens: the tokenizer compares them with its own tokens of the text
//! (re-tokenization drift) and, under [`AssistantTokens::Recorded`], trains the ids the policy
//! sampled.

use agentmill_proto::{Message, RecordKind, Role, TrajectoryRecord};
use serde::{Deserialize, Serialize};

/// The conversation template.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// ChatML with XML-style tool calls (the paper's conversion; Qwen's special tokens).
    #[default]
    ChatMlXmlTools,
}

/// Which tokens an assistant turn that carries the policy's sampled token ids trains on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssistantTokens {
    /// The tokenizer's tokens of the rendered text (the paper's conversion; every record alike).
    #[default]
    Rendered,
    /// The ids the policy sampled, where a turn carries them and they fit the tokenizer (which
    /// must then be the policy's): what the model produced, with no re-tokenization drift.
    Recorded,
}

/// What a server said of the tokens it sampled for one assistant turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sampled {
    /// Their ids (vLLM, SGLang).
    Ids(Vec<u32>),
    /// Their texts only (llama.cpp's `logprobs.content[].token`): the tokenizer maps each to the
    /// one id whose text it is.
    Pieces(Vec<String>),
}

/// An assistant turn that carries the policy's sampled tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedTurn {
    /// The turn's index among the record's assistant turns.
    pub turn: usize,
    /// The byte range of the turn's body in the text (after the role header, before `<|im_end|>`).
    pub body: std::ops::Range<usize>,
    /// The tokens the policy sampled for it.
    pub sampled: Sampled,
}

/// A record as training text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The text.
    pub text: String,
    /// Byte ranges of assistant output (for the `assistant` loss mask).
    pub assistant_spans: Vec<std::ops::Range<usize>>,
    /// The assistant turns that carry the policy's token ids, in order.
    pub recorded: Vec<RecordedTurn>,
}

/// [`Template::ChatMlXmlTools`] as a Hugging Face / llama.cpp chat template (Jinja), written into
/// exported GGUF files as `tokenizer.chat_template` so a server formats a conversation exactly as
/// [`render`] does (a test renders records both ways and compares them byte for byte).
///
/// Jinja cannot parse JSON, so a tool call's `arguments` expand into `<parameter=KEY>` blocks
/// when they arrive as a mapping (keys sorted, non-string values as compact sorted JSON, as
/// serde_json writes them); arguments that arrive as a string are kept verbatim in one
/// `<parameter=arguments>` block, which is what [`render`] does for arguments that are not a
/// JSON object. Clients that want the model's own text back in the prompt send the assistant
/// turn as its text (what the `openai` policy does against a server that renders with this).
pub const CHATML_XML_TOOLS_JINJA: &str = r#"{%- set ns = namespace(tools_block='', system_done=false, in_tool=false, ends_nl=true) -%}
{%- if tools -%}
{%- set ns.tools_block = '\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>' -%}
{%- for t in tools -%}{%- set ns.tools_block = ns.tools_block + '\n' + (t | tojson(separators=(',', ':'), sort_keys=true)) -%}{%- endfor -%}
{%- set ns.tools_block = ns.tools_block + '\n</tools>' -%}
{%- endif -%}
{%- for m in messages -%}
{%- if m.role != 'tool' and ns.in_tool -%}{{- '<|im_end|>\n' -}}{%- set ns.in_tool = false -%}{%- endif -%}
{%- if m.role == 'system' -%}
{{- '<|im_start|>system\n' + (m.content or '') -}}
{%- if not ns.system_done -%}{{- ns.tools_block -}}{%- set ns.system_done = true -%}{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- elif m.role == 'user' -%}
{%- if not ns.system_done and ns.tools_block -%}{{- '<|im_start|>system\n' + ns.tools_block[2:] + '<|im_end|>\n' -}}{%- set ns.system_done = true -%}{%- endif -%}
{{- '<|im_start|>user\n' + (m.content or '') + '<|im_end|>\n' -}}
{%- elif m.role == 'assistant' -%}
{{- '<|im_start|>assistant\n' -}}
{%- set ns.ends_nl = true -%}
{%- if m.reasoning_content -%}{{- '<think>\n' + m.reasoning_content.rstrip('\n') + '\n</think>\n\n' -}}{%- endif -%}
{%- if m.content -%}{{- m.content -}}{%- set ns.ends_nl = m.content.endswith('\n') -%}{%- endif -%}
{%- for call in (m.tool_calls or []) -%}
{%- if not ns.ends_nl -%}{{- '\n\n' -}}{%- endif -%}
{{- '<function=' + call.function.name + '>\n' -}}
{%- set args = call.function.arguments -%}
{%- if args is mapping -%}
{%- for k, v in args | dictsort(true) -%}
{{- '<parameter=' + k + '>\n' + (v if v is string else (v | tojson(separators=(',', ':'), sort_keys=true))) + '\n</parameter>\n' -}}
{%- endfor -%}
{%- elif args and args.strip() -%}
{{- '<parameter=arguments>\n' + args + '\n</parameter>\n' -}}
{%- endif -%}
{{- '</function>' -}}
{%- set ns.ends_nl = false -%}
{%- endfor -%}
{{- '<|im_end|>\n' -}}
{%- elif m.role == 'tool' -%}
{%- if not ns.in_tool -%}{{- '<|im_start|>user' -}}{%- set ns.in_tool = true -%}{%- endif -%}
{{- '\n<tool_response>\n' + (m.content or '') -}}
{%- if not (m.content or '').endswith('\n') -%}{{- '\n' -}}{%- endif -%}
{{- '</tool_response>' -}}
{%- endif -%}
{%- endfor -%}
{%- if ns.in_tool -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"#;

const IM_START: &str = "<|im_start|>";
const IM_END: &str = "<|im_end|>";

/// Renders a record, or `None` when it must not be trained on (an infra failure or a cancelled
/// episode: not the model's doing).
pub fn render(record: &TrajectoryRecord, template: Template) -> Option<Rendered> {
    if !record.is_trainable() {
        return None;
    }
    match record.kind {
        RecordKind::Ctx => {
            let text = record.ctx.as_ref().map(|c| c.text.clone()).unwrap_or_default();
            Some(Rendered { text, assistant_spans: Vec::new(), recorded: Vec::new() })
        }
        RecordKind::Env => Some(match template {
            Template::ChatMlXmlTools => render_chatml(&record.messages, &record.tools),
        }),
    }
}

fn render_chatml(messages: &[Message], tools: &[serde_json::Value]) -> Rendered {
    let mut out = String::new();
    let mut spans = Vec::new();
    let mut recorded = Vec::new();
    let mut i = 0;
    let tools_block = if tools.is_empty() {
        String::new()
    } else {
        let lines: Vec<String> = tools.iter().map(|t| t.to_string()).collect();
        format!("\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>\n{}\n</tools>", lines.join("\n"))
    };
    let mut system_done = false;
    while i < messages.len() {
        let m = &messages[i];
        match m.role {
            Role::System => {
                out.push_str(IM_START);
                out.push_str("system\n");
                out.push_str(&m.content);
                if !system_done {
                    out.push_str(&tools_block);
                    system_done = true;
                }
                out.push_str(IM_END);
                out.push('\n');
            }
            Role::User => {
                if !system_done && !tools_block.is_empty() {
                    out.push_str(&format!("{IM_START}system\n{}{IM_END}\n", tools_block.trim_start()));
                    system_done = true;
                }
                out.push_str(IM_START);
                out.push_str("user\n");
                out.push_str(&m.content);
                out.push_str(IM_END);
                out.push('\n');
            }
            Role::Assistant => {
                out.push_str(IM_START);
                out.push_str("assistant\n");
                let start = out.len();
                render_assistant(&mut out, m);
                let sampled = match (&m.token_ids, &m.token_pieces) {
                    (Some(ids), _) if !ids.is_empty() => Some(Sampled::Ids(ids.clone())),
                    (_, Some(pieces)) if !pieces.is_empty() => Some(Sampled::Pieces(pieces.clone())),
                    _ => None,
                };
                if let Some(sampled) = sampled {
                    recorded.push(RecordedTurn { turn: spans.len(), body: start..out.len(), sampled });
                }
                out.push_str(IM_END);
                spans.push(start..out.len());
                out.push('\n');
            }
            Role::Tool => {
                out.push_str(IM_START);
                out.push_str("user");
                while i < messages.len() && messages[i].role == Role::Tool {
                    out.push_str("\n<tool_response>\n");
                    out.push_str(&messages[i].content);
                    if !messages[i].content.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str("</tool_response>");
                    i += 1;
                }
                out.push_str(IM_END);
                out.push('\n');
                continue;
            }
        }
        i += 1;
    }
    Rendered { text: out, assistant_spans: spans, recorded }
}

fn render_assistant(out: &mut String, m: &Message) {
    if let Some(r) = m.reasoning_content.as_deref().filter(|r| !r.is_empty()) {
        out.push_str("<think>\n");
        out.push_str(r.trim_end_matches('\n'));
        out.push_str("\n</think>\n\n");
    }
    out.push_str(&m.content);
    for call in &m.tool_calls {
        if !out.ends_with('\n') && !out.ends_with("assistant\n") {
            out.push_str("\n\n");
        }
        out.push_str("<function=");
        out.push_str(&call.function.name);
        out.push_str(">\n");
        match serde_json::from_str::<serde_json::Value>(&call.function.arguments) {
            Ok(serde_json::Value::Object(args)) => {
                for (k, v) in args {
                    let value = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    out.push_str(&format!("<parameter={k}>\n{value}\n</parameter>\n"));
                }
            }
            _ => {
                if !call.function.arguments.trim().is_empty() {
                    out.push_str(&format!("<parameter=arguments>\n{}\n</parameter>\n", call.function.arguments));
                }
            }
        }
        out.push_str("</function>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentmill_proto::*;

    fn record(messages: Vec<Message>, exit: ExitReason) -> TrajectoryRecord {
        TrajectoryRecord {
            worker: "w".into(),
            tools: vec![serde_json::json!({"type": "function", "function": {"name": "bash"}})],
            messages,
            exit_reason: Some(exit),
            ..TrajectoryRecord::new(RecordKind::Env, "env:t:r0:a1", "t")
        }
    }

    fn call(id: &str, name: &str, args: &str) -> ToolCall {
        ToolCall { id: id.into(), kind: "function".into(), function: FunctionCall { name: name.into(), arguments: args.into() } }
    }

    fn tool(id: &str, content: &str) -> Message {
        let mut m = Message::text(Role::Tool, content);
        m.tool_call_id = Some(id.into());
        m
    }

    #[test]
    fn an_env_record_renders_to_the_golden_text() {
        let mut a1 = Message::text(Role::Assistant, "Let me look.");
        a1.reasoning_content = Some("Probably split().".into());
        a1.tool_calls = vec![call("c1", "bash", r#"{"command": "grep -n split ini.py"}"#), call("c2", "str_replace_editor", r#"{"command": "view", "path": "/testbed/ini.py", "view_range": [1, 3]}"#)];
        let mut a2 = Message::text(Role::Assistant, "");
        a2.tool_calls = vec![call("c3", "submit", "{}")];
        let r = record(
            vec![Message::text(Role::System, "You are an engineer."), Message::text(Role::User, "Fix it."), a1, tool("c1", "12: split('=')"), tool("c2", "1\tx\n"), a2, tool("c3", "diff")],
            ExitReason::Submitted,
        );
        let got = render(&r, Template::ChatMlXmlTools).expect("trainable");
        let want = "<|im_start|>system\nYou are an engineer.\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>\n{\"function\":{\"name\":\"bash\"},\"type\":\"function\"}\n</tools><|im_end|>\n\
<|im_start|>user\nFix it.<|im_end|>\n\
<|im_start|>assistant\n<think>\nProbably split().\n</think>\n\nLet me look.\n\n<function=bash>\n<parameter=command>\ngrep -n split ini.py\n</parameter>\n</function>\n\n<function=str_replace_editor>\n<parameter=command>\nview\n</parameter>\n<parameter=path>\n/testbed/ini.py\n</parameter>\n<parameter=view_range>\n[1,3]\n</parameter>\n</function><|im_end|>\n\
<|im_start|>user\n<tool_response>\n12: split('=')\n</tool_response>\n<tool_response>\n1\tx\n</tool_response><|im_end|>\n\
<|im_start|>assistant\n<function=submit>\n</function><|im_end|>\n\
<|im_start|>user\n<tool_response>\ndiff\n</tool_response><|im_end|>\n";
        assert_eq!(got.text, want);
        let spans: Vec<&str> = got.assistant_spans.iter().map(|s| &got.text[s.clone()]).collect();
        assert_eq!(spans.len(), 2);
        assert!(spans[0].starts_with("<think>") && spans[0].ends_with("</function><|im_end|>"));
        assert_eq!(spans[1], "<function=submit>\n</function><|im_end|>");
    }

    #[test]
    fn a_malformed_call_is_kept_verbatim() {
        let mut a = Message::text(Role::Assistant, "");
        a.tool_calls = vec![call("c1", "bash", "{\"command\": \"ls")];
        let got = render(&record(vec![Message::text(Role::User, "go"), a], ExitReason::MaxSteps), Template::default()).expect("trainable");
        assert!(got.text.contains("<function=bash>\n<parameter=arguments>\n{\"command\": \"ls\n</parameter>\n</function>"), "{}", got.text);
    }

    #[test]
    fn infra_failures_and_cancelled_episodes_are_not_rendered() {
        for exit in [ExitReason::SandboxError, ExitReason::InfraError, ExitReason::PolicyError, ExitReason::Cancelled] {
            assert!(render(&record(vec![Message::text(Role::User, "go")], exit), Template::default()).is_none(), "{exit}");
        }
    }

    #[test]
    fn a_ctx_record_trains_on_its_text() {
        let mut r = record(vec![], ExitReason::Submitted);
        r.kind = RecordKind::Ctx;
        r.exit_reason = None;
        r.ctx = Some(ContextualPr { repo_name: "a/b".into(), text: "# Repository Context\nName: a/b\n".into(), ..Default::default() });
        let got = render(&r, Template::default()).expect("trainable");
        assert_eq!(got.text, "# Repository Context\nName: a/b\n");
        assert!(got.assistant_spans.is_empty());
    }
}
