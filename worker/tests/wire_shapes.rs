//! Recorded response bodies of the servers users run (vLLM, SGLang, llama.cpp; provenance in
//! tests/data/wire/README.md), read as the `openai` policy reads them: content,
//! reasoning_content, tool calls, logprobs, token ids and usage per turn; a turn cut off at
//! `finish_reason: "length"` is a context overflow.

use agentmill_proto::Usage;
use agentmill_worker::agent::policy::{PolicyError, ToolCallFormat, parse_response, xml_calls};
use serde_json::{Value, json};

fn body(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/wire").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON fixture")
}

fn usage(prompt_tokens: u64, completion_tokens: u64) -> Option<Usage> {
    Some(Usage { prompt_tokens, completion_tokens })
}

#[test]
fn vllm_tool_calls_give_the_call_and_usage_with_null_fields_ignored() {
    let m = parse_response(&body("vllm_required_tool_call.json"), ToolCallFormat::Native, &[]).expect("parses");
    assert_eq!((m.content.as_str(), m.reasoning_content.as_deref()), ("", None));
    assert_eq!(m.tool_calls.len(), 1);
    assert_eq!(m.tool_calls[0].id, "chatcmpl-tool-93d1091597c06cb2");
    assert_eq!(m.tool_calls[0].function.name, "enregistrer_offre");
    assert_eq!(serde_json::from_str::<Value>(&m.tool_calls[0].function.arguments).ok(), Some(json!({"nature": "lieu", "places": 14})));
    assert_eq!((m.usage, m.token_ids, m.logprobs), (usage(122, 37), None, None));

    let m = parse_response(&body("vllm_llama31_tool_call.json"), ToolCallFormat::Native, &[]).expect("parses");
    assert_eq!((m.content.as_str(), m.tool_calls[0].function.name.as_str()), ("", "get_weather"));
    assert_eq!(m.tool_calls[0].function.arguments, r#"{"city": "New York"}"#, "arguments kept as the server wrote them");
    assert_eq!(m.usage, usage(254, 19));
}

#[test]
fn sglang_reasoning_content_is_kept_beside_the_content() {
    let m = parse_response(&body("sglang_reasoning.json"), ToolCallFormat::Native, &[]).expect("parses");
    assert_eq!(m.content, "```json\n{\"status\": \"ok\"}\n```");
    assert!(m.reasoning_content.as_deref().is_some_and(|r| r.starts_with("The user wants me to return a simple JSON object")));
    assert!(m.tool_calls.is_empty());
    assert_eq!(m.usage, usage(96, 111));
}

#[test]
fn a_llama_cpp_grammar_call_gives_the_call_its_logprobs_and_usage() {
    let b = body("llamacpp_grammar_call.json");
    let text = b["choices"][0]["message"]["content"].as_str().expect("content").to_string();
    let tools = vec![json!({"type": "function", "function": {"name": "bash", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}})];
    let native = parse_response(&b, ToolCallFormat::Native, &tools).expect("parses");
    assert!(native.tool_calls.is_empty(), "llama.cpp's template handler leaves the call in the text");
    let m = parse_response(&b, ToolCallFormat::Xml, &tools).expect("parses");
    assert_eq!((m.content.as_str(), m.tool_calls.len(), m.tool_calls[0].function.name.as_str()), ("", 1, "bash"));
    assert!(serde_json::from_str::<Value>(&m.tool_calls[0].function.arguments).is_ok_and(|a| a["command"].is_string()));
    assert_eq!(xml_calls::render(&m.content, &m.tool_calls), text, "sent back exactly as the model wrote it");
    let u = m.usage.clone().expect("usage");
    assert_eq!(u, Usage { prompt_tokens: 86, completion_tokens: 43 });
    assert_eq!(m.logprobs.as_ref().map(Vec::len), Some(43), "one logprob per sampled token");
    assert_eq!(m.token_ids, None, "llama.cpp's server returns no token ids");
}

#[test]
fn finish_reason_length_is_a_context_overflow() {
    let b = body("llamacpp_length.json");
    assert_eq!(b["choices"][0]["finish_reason"], "length");
    match parse_response(&b, ToolCallFormat::Native, &[]) {
        Err(PolicyError::ContextOverflow(why)) => assert!(why.contains("after 5 tokens"), "{why}"),
        other => panic!("expected a context overflow, got {other:?}"),
    }
}
