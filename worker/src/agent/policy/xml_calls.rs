//! Tool calls written as text in the paper's format — the learner's rendering of a call:
//!
//! ```text
//! <function=str_replace_editor>
//! <parameter=command>
//! view
//! </parameter>
//! <parameter=path>
//! /testbed/ini.py
//! </parameter>
//! </function>
//! ```
//!
//! With `tool_call_format = "xml"` the `openai` policy asks the server to decode under
//! [`grammar`] (a GBNF grammar built from the tools' JSON schemas: one call of a known tool, its
//! parameters in sorted order, required ones present, enum/integer/array values well-formed), so
//! even a barely trained model writes a call the tools accept; [`parse`] reads the call back out
//! of the text, and [`render`] writes a turn back exactly as the model wrote it (and as the
//! learner renders it), so the next prompt holds the model's own tokens.

use agentmill_proto::{FunctionCall, ToolCall};
use serde_json::{Map, Value};

/// A GBNF grammar admitting exactly one call of one of `tools`, each string value at most
/// `max_value_chars` characters and never containing `</` (the closing tag's start) or `<|`.
pub fn grammar(tools: &[Value], max_value_chars: usize) -> String {
    let mut rules = Vec::new();
    let mut alternatives = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let Some(function) = tool.get("function") else { continue };
        let Some(name) = function.get("name").and_then(Value::as_str) else { continue };
        let params = function.get("parameters");
        let props: Vec<(&String, &Value)> =
            params.and_then(|p| p.get("properties")).and_then(Value::as_object).map(|m| m.iter().collect()).unwrap_or_default();
        let mut props = props;
        props.sort_by(|a, b| a.0.cmp(b.0));
        let required: Vec<&str> =
            params.and_then(|p| p.get("required")).and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let mut body = vec![format!("\"<function={}>\\n\"", escape(name))];
        for (j, (key, schema)) in props.iter().enumerate() {
            let value_rule = format!("t{i}v{j}");
            rules.push(format!("{value_rule} ::= {}", value_grammar(schema)));
            let param = format!("\"<parameter={}>\\n\" {value_rule} \"\\n</parameter>\\n\"", escape(key));
            body.push(if required.contains(&key.as_str()) { param } else { format!("({param})?") });
        }
        body.push("\"</function>\"".into());
        rules.push(format!("t{i} ::= {}", body.join(" ")));
        alternatives.push(format!("t{i}"));
    }
    let mut out = format!("root ::= {}\n", if alternatives.is_empty() { "\"\"".to_string() } else { alternatives.join(" | ") });
    for rule in rules {
        out.push_str(&rule);
        out.push('\n');
    }
    // No `</` (a closing tag's start) and no `<|` (ChatML's special tokens: a value holding
    // `<|im_end|>` as text would come back as the special token when the prompt is tokenized).
    out.push_str(&format!("str ::= ([^<] | \"<\" [^/<|]){{0,{max_value_chars}}}\n"));
    out.push_str("int ::= \"-\"? [0-9]{1,9}\n");
    out
}

fn value_grammar(schema: &Value) -> String {
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        let literals: Vec<String> = options.iter().filter_map(Value::as_str).map(|s| format!("\"{}\"", escape(s))).collect();
        if !literals.is_empty() {
            return format!("({})", literals.join(" | "));
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => "int".into(),
        Some("array") if schema.pointer("/items/type").and_then(Value::as_str) == Some("integer") => "\"[\" int (\",\" int){0,7} \"]\"".into(),
        Some("boolean") => "(\"true\" | \"false\")".into(),
        _ => "str".into(),
    }
}

/// A GBNF string literal's body.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Reads the calls out of a turn's text: the text before the first call (its `\n\n` separator
/// removed) and each call. A call that does not parse is kept as a call of the name found (or
/// none) with the rest of the text as its arguments, which the tools answer with an error
/// observation. `tools` gives each parameter's type: strings stay verbatim, other values are
/// read as JSON where they parse.
pub fn parse(text: &str, tools: &[Value]) -> (String, Vec<ToolCall>) {
    let Some(first) = text.find("<function=") else { return (text.to_string(), Vec::new()) };
    let content = text[..first].strip_suffix("\n\n").unwrap_or(&text[..first]).to_string();
    let mut calls = Vec::new();
    let mut rest = &text[first..];
    while let Some(start) = rest.find("<function=") {
        let id = format!("call_{}", calls.len());
        let body = &rest[start + "<function=".len()..];
        match parse_one(body, tools) {
            Some((name, arguments, used)) => {
                calls.push(ToolCall { id, kind: "function".into(), function: FunctionCall { name, arguments } });
                rest = &body[used..];
            }
            None => {
                let name = body.split_once(">\n").map(|(n, _)| n).filter(|n| !n.contains(['<', '\n'])).unwrap_or_default();
                calls.push(ToolCall { id, kind: "function".into(), function: FunctionCall { name: name.into(), arguments: format!("<function={body}") } });
                break;
            }
        }
    }
    (content, calls)
}

/// One call after `<function=`: its name, its arguments as JSON text, and the bytes used.
fn parse_one(body: &str, tools: &[Value]) -> Option<(String, String, usize)> {
    let (name, mut rest) = body.split_once(">\n")?;
    if name.contains(['<', '\n']) {
        return None;
    }
    let schema = tools.iter().find(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name));
    let mut args = Map::new();
    loop {
        if let Some(after) = rest.strip_prefix("</function>") {
            return Some((name.to_string(), Value::Object(args).to_string(), body.len() - after.len()));
        }
        let after = rest.strip_prefix("<parameter=")?;
        let (key, after) = after.split_once(">\n")?;
        let (value, after) = after.split_once("\n</parameter>\n")?;
        let typed = schema.and_then(|s| s.pointer(&format!("/function/parameters/properties/{key}/type"))).and_then(Value::as_str);
        let value = match typed {
            Some("string") | None => Value::String(value.to_string()),
            Some(_) => serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string())),
        };
        args.insert(key.to_string(), value);
        rest = after;
    }
}

/// A turn as text: `content`, then each call in the paper's format (arguments that are a JSON
/// object become sorted `<parameter=KEY>` blocks, strings verbatim and other values as compact
/// JSON; other arguments one `<parameter=arguments>` block) — the learner's rendering.
pub fn render(content: &str, calls: &[ToolCall]) -> String {
    let mut out = content.to_string();
    for call in calls {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str("\n\n");
        }
        out.push_str(&format!("<function={}>\n", call.function.name));
        match serde_json::from_str::<Value>(&call.function.arguments) {
            Ok(Value::Object(args)) => {
                let mut args: Vec<(String, Value)> = args.into_iter().collect();
                args.sort_by(|a, b| a.0.cmp(&b.0));
                for (k, v) in args {
                    let value = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    out.push_str(&format!("<parameter={k}>\n{value}\n</parameter>\n"));
                }
            }
            _ if !call.function.arguments.trim().is_empty() => {
                out.push_str(&format!("<parameter=arguments>\n{}\n</parameter>\n", call.function.arguments));
            }
            _ => {}
        }
        out.push_str("</function>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Vec<Value> {
        vec![
            json!({"type": "function", "function": {"name": "bash", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}),
            json!({"type": "function", "function": {"name": "str_replace_editor", "parameters": {"type": "object", "properties": {
                "command": {"type": "string", "enum": ["view", "create"]}, "path": {"type": "string"},
                "view_range": {"type": "array", "items": {"type": "integer"}}}, "required": ["command", "path"]}}}),
            json!({"type": "function", "function": {"name": "submit", "parameters": {"type": "object", "properties": {}, "required": []}}}),
        ]
    }

    #[test]
    fn a_call_parses_and_renders_back_to_the_same_text() {
        let text = "<function=str_replace_editor>\n<parameter=command>\nview\n</parameter>\n<parameter=path>\n/testbed/a b.py\n</parameter>\n<parameter=view_range>\n[1,3]\n</parameter>\n</function>";
        let (content, calls) = parse(text, &tools());
        assert_eq!(content, "");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].function.name, "str_replace_editor");
        let args: Value = serde_json::from_str(&calls[0].function.arguments).expect("JSON arguments");
        assert_eq!(args, json!({"command": "view", "path": "/testbed/a b.py", "view_range": [1, 3]}));
        assert_eq!(render(&content, &calls), text);
    }

    #[test]
    fn text_before_the_call_is_the_content() {
        let text = "Let me look.\n\n<function=bash>\n<parameter=command>\nls -la\nwc -l x\n</parameter>\n</function>";
        let (content, calls) = parse(text, &tools());
        assert_eq!(content, "Let me look.");
        assert_eq!(calls[0].function.arguments, r#"{"command":"ls -la\nwc -l x"}"#);
        assert_eq!(render(&content, &calls), text);
    }

    #[test]
    fn a_broken_call_is_kept_for_the_tools_to_refuse() {
        let (_, calls) = parse("<function=bash>\n<parameter=command>\nls", &tools());
        assert_eq!(calls[0].function.name, "bash");
        assert!(serde_json::from_str::<Value>(&calls[0].function.arguments).is_err(), "{}", calls[0].function.arguments);
    }

    #[test]
    fn the_grammar_names_every_tool_in_sorted_parameter_order() {
        let g = grammar(&tools(), 100);
        assert!(g.starts_with("root ::= t0 | t1 | t2\n"), "{g}");
        assert!(g.contains("t1 ::= \"<function=str_replace_editor>\\n\" \"<parameter=command>\\n\" t1v0"), "{g}");
        assert!(g.contains("(\"<parameter=view_range>\\n\" t1v2 \"\\n</parameter>\\n\")?"), "{g}");
        assert!(g.contains("t1v0 ::= (\"view\" | \"create\")"), "{g}");
        assert!(g.contains("t2 ::= \"<function=submit>\\n\" \"</function>\""), "{g}");
        assert!(g.contains("str ::= ([^<] | \"<\" [^/<|]){0,100}"), "{g}");
    }
}
