//! llama.cpp's OpenAI-compatible server (llama-cpp-python) serving the learner's tiny checkpoint:
//! it formats the conversation with the exported chat template, follows a GBNF grammar (the
//! constrained decoding the `openai` policy uses), returns log-probabilities and usage, and
//! refuses a prompt beyond its context window with an error the policy recognises.

use agentmill_tests::llama_server::{LlamaServer, MODEL_ALIAS, tiny_checkpoint};
use serde_json::{Value, json};

#[test]
fn the_server_follows_a_grammar_and_returns_logprobs_and_usage() {
    let server = LlamaServer::start(&tiny_checkpoint().gguf);
    let (code, models) = server.get("/v1/models").expect("models");
    assert_eq!(code, 200);
    assert!(models.contains(MODEL_ALIAS), "{models}");

    let grammar = "root ::= \"<function=bash>\\n<parameter=command>\\n\" [a-z ]{1,12} \"\\n</parameter>\\n</function>\"";
    let body = json!({
        "model": MODEL_ALIAS,
        "messages": [{"role": "system", "content": "You fix bugs."}, {"role": "user", "content": "List the files."}],
        "tools": [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}}],
        "grammar": grammar, "logprobs": true, "top_logprobs": 1, "max_tokens": 64, "temperature": 0.0,
    });
    // Five calls for the figure (printed, never asserted): seconds per call and tokens/s.
    let (mut seconds, mut tokens, mut text) = (0.0, 0, String::new());
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let (code, body_text) = server.post_json("/v1/chat/completions", &body);
        seconds += started.elapsed().as_secs_f64();
        assert_eq!(code, 200, "{body_text}\n{}", server.log_tail());
        let v: Value = serde_json::from_str(&body_text).expect("JSON body");
        tokens += v["usage"]["completion_tokens"].as_u64().unwrap_or(0);
        text = body_text;
    }
    eprintln!(
        "llama.cpp server (llama-cpp-python {}, the learner's tiny checkpoint, CPU): {:.3} s per grammar-constrained call, {:.0} completion tokens/s over 5 calls",
        agentmill_tests::llama_server::LLAMA_CPP_PYTHON,
        seconds / 5.0,
        tokens as f64 / seconds
    );
    let v: Value = serde_json::from_str(&text).expect("JSON body");
    let content = v["choices"][0]["message"]["content"].as_str().expect("content");
    let command = content
        .strip_prefix("<function=bash>\n<parameter=command>\n")
        .and_then(|rest| rest.strip_suffix("\n</parameter>\n</function>"))
        .unwrap_or_else(|| panic!("the grammar was not followed: {content:?}"));
    assert!(!command.is_empty() && command.chars().all(|c| c.is_ascii_lowercase() || c == ' '), "{command:?}");
    let logprobs = v["choices"][0]["logprobs"]["content"].as_array().expect("logprobs.content");
    let completion_tokens = v["usage"]["completion_tokens"].as_u64().expect("usage");
    assert_eq!(logprobs.len() as u64, completion_tokens, "one logprob per sampled token");
    let pieces: String = logprobs.iter().map(|e| e["token"].as_str().unwrap_or("")).collect();
    assert_eq!(pieces, content, "the logprob entries spell the content");
    assert!(logprobs.iter().all(|e| e["logprob"].as_f64().is_some_and(|l| l <= 0.0)));
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 10);
}

#[test]
fn a_prompt_beyond_the_context_window_is_refused_with_a_context_error() {
    let server = LlamaServer::start_with(&tiny_checkpoint().gguf, &["--n_ctx", "256"]);
    let long = "word ".repeat(2000);
    let body = json!({"model": MODEL_ALIAS, "messages": [{"role": "user", "content": long}], "max_tokens": 8});
    let (code, text) = server.post_json("/v1/chat/completions", &body);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("context_length_exceeded") && text.contains("maximum context length"), "{text}");
}
