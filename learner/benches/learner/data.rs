//! What the sections run on, made here and the same in every run: random token rows for the
//! step (one document each, or split into several) and synthetic env records for the tokenizer.

use std::path::{Path, PathBuf};

use agentmill_learner::model::Qwen2Config;
use agentmill_learner::pack::{Document, IGNORE_INDEX, LossMask, PackConfig, PackedRow, pack};
use agentmill_proto::{ExitReason, FunctionCall, Message, RecordKind, Role, ToolCall, TrajectoryRecord};
use anyhow::{Result, bail};

/// A small deterministic generator (SplitMix64), so the bench needs no `rand`.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    /// A word: a common one, or an identifier made of syllables (so BPE has a real vocabulary to learn).
    pub(crate) fn word(&mut self) -> String {
        if self.below(2) == 0 {
            return self.pick(WORDS).to_string();
        }
        const SYL: &[&str] = &["ba", "ke", "lo", "mi", "nu", "ra", "so", "ti", "vex", "dor", "pan", "qu", "zel", "ith", "um", "gar", "fi", "sh", "ck", "ent"];
        let n = 2 + self.below(3);
        let mut w: String = (0..n).map(|_| self.pick(SYL)).collect();
        if self.below(3) == 0 {
            w.push('_');
            w.push_str(self.pick(WORDS));
        }
        w
    }
}

/// `rows` random documents of `seq_len` tokens, packed one per row (so plain causal attention
/// is what both sides run).
pub(crate) fn random_rows(cfg: &Qwen2Config, rows: usize, seq_len: usize) -> Result<(Vec<Document>, Vec<PackedRow>)> {
    let mut rng = Rng(42);
    let docs: Vec<Document> =
        (0..rows).map(|_| Document::new((0..seq_len).map(|_| rng.below(cfg.vocab_size) as u32).collect())).collect();
    let packed = pack(&docs, PackConfig { seq_len, pad_id: 0, loss_mask: LossMask::None })?;
    if packed.rows.len() != rows {
        bail!("expected {rows} rows, packed {}", packed.rows.len());
    }
    Ok((docs, packed.rows))
}

/// [`random_rows`], with the documents also written as `batch.json` for the Python side.
pub(crate) fn random_rows_for_python(
    cfg: &Qwen2Config,
    rows: usize,
    seq_len: usize,
    dir: &Path,
) -> Result<(Vec<PackedRow>, PathBuf)> {
    let (docs, rows) = random_rows(cfg, rows, seq_len)?;
    let ids: Vec<&Vec<u32>> = docs.iter().map(|d| &d.tokens).collect();
    let batch_path = dir.join("batch.json");
    std::fs::write(&batch_path, serde_json::to_string(&serde_json::json!({ "input_ids": ids }))?)?;
    Ok((rows, batch_path))
}

/// `row` (one document) relabelled as `n` documents of equal length, positions restarting in
/// each, the first token of each later document no longer a target of the one before.
pub(crate) fn split_documents(row: &PackedRow, n: usize) -> PackedRow {
    let len = row.input_ids.len();
    let part = len.div_ceil(n).max(1);
    let mut out = row.clone();
    for i in 0..len {
        out.doc_ids[i] = (i / part) as i64;
        out.position_ids[i] = (i % part) as i64;
        if (i + 1) % part == 0 {
            out.labels[i] = IGNORE_INDEX;
        }
    }
    out
}

pub(crate) const WORDS: &[&str] = &[
    "config", "parser", "value", "self", "return", "None", "import", "def", "class", "line", "split", "strip", "key",
    "error", "raise", "ValueError", "path", "open", "read", "write", "data", "items", "result", "index", "len",
    "section", "option", "default", "test", "assert", "fixture", "module", "init", "setup", "token", "buffer",
];

pub(crate) const FILES: &[&str] =
    &["src/ini.py", "src/parser/core.py", "tests/test_ini.py", "lib/util.rs", "pkg/config/load.go", "src/main.c"];

pub(crate) fn code_lines(rng: &mut Rng, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let indent = "    ".repeat(rng.below(3));
        let words: Vec<String> = (0..3 + rng.below(6)).map(|_| rng.word()).collect();
        s.push_str(&format!("{}{indent}{} = {}({})\n", i + 1, words[0], words[1], words[2..].join(", ")));
    }
    s
}

pub(crate) fn prose(rng: &mut Rng, words: usize) -> String {
    let w: Vec<String> = (0..words).map(|_| rng.word()).collect();
    let mut s = w.join(" ");
    s.push('.');
    s
}

pub(crate) fn call(id: String, name: &str, args: serde_json::Value) -> ToolCall {
    ToolCall { id, kind: "function".into(), function: FunctionCall { name: name.into(), arguments: args.to_string() } }
}

/// A synthetic env record of a few KB: system, task, then turns of reasoning + tool calls and
/// tool outputs.
pub(crate) fn synthetic_record(i: usize, rng: &mut Rng) -> TrajectoryRecord {
    let mut messages = vec![
        Message::text(Role::System, "You are a software engineer working in a repository at /testbed. Use the tools to fix the issue, then submit."),
        Message::text(Role::User, format!("<issue>\n{}\n\n```\n{}```\n</issue>", prose(rng, 60), code_lines(rng, 6))),
    ];
    let turns = 3 + rng.below(4);
    for t in 0..turns {
        let file = rng.pick(FILES);
        let mut a = Message::text(Role::Assistant, prose(rng, 15));
        a.reasoning_content = Some(prose(rng, 40));
        let id = format!("call_{i}_{t}");
        a.tool_calls = vec![if rng.below(2) == 0 {
            call(id.clone(), "bash", serde_json::json!({"command": format!("grep -n {} {file}", rng.pick(WORDS))}))
        } else {
            call(
                id.clone(),
                "str_replace_editor",
                serde_json::json!({"command": "str_replace", "path": format!("/testbed/{file}"),
                    "old_str": code_lines(rng, 3), "new_str": code_lines(rng, 4)}),
            )
        }];
        messages.push(a);
        let n = 10 + rng.below(20);
        let mut out = Message::text(Role::Tool, code_lines(rng, n));
        out.tool_call_id = Some(id);
        messages.push(out);
    }
    let mut submit = Message::text(Role::Assistant, "");
    submit.tool_calls = vec![call(format!("call_{i}_s"), "submit", serde_json::json!({}))];
    messages.push(submit);
    TrajectoryRecord {
        worker: "bench".into(),
        tools: vec![
            serde_json::json!({"type": "function", "function": {"name": "bash", "description": "Run a shell command.", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}}),
            serde_json::json!({"type": "function", "function": {"name": "str_replace_editor", "description": "View and edit files.", "parameters": {"type": "object"}}}),
            serde_json::json!({"type": "function", "function": {"name": "submit", "description": "Submit the patch.", "parameters": {"type": "object"}}}),
        ],
        messages,
        exit_reason: Some(ExitReason::Submitted),
        ..TrajectoryRecord::new(RecordKind::Env, format!("env:bench-{i}:r0:a1"), format!("bench-{i}"))
    }
}
