//! Helpers shared by the learner's integration tests; what every crate's tests share (the test
//! Redis, free ports, unique names) is `agentmill_testkit`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use agentmill_testkit::TestRedis;
use agentmill_learner::config::LearnerConfig;
use agentmill_learner::model::Qwen2Config;
use agentmill_learner::pack::Document;
use agentmill_proto::{
    ContextualPr, ExitReason, FunctionCall, Grading, Message, RecordKind, Role, TestOutcome,
    TestStatus, ToolCall, TrajectoryRecord, wire,
};
use tch::Tensor;

/// One libtorch thread per test: cargo runs two tests at once on this 2-core machine, and a
/// fixed count keeps floating-point reductions identical between the runs a test compares.
pub fn init() {
    tch::set_num_threads(1);
}

/// The repo's Python with torch and transformers, made by deploy/setup.sh.
pub fn python() -> PathBuf {
    let path = agentmill_testkit::workspace().join(".venv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run deploy/setup.sh to create the repo's .venv with torch and transformers",
        path.display()
    );
    path
}

/// Runs learner/tests/parity/make_tiny_qwen2.py with `args`, failing with its output.
pub fn run_reference(args: &[&str]) {
    run_parity_script("make_tiny_qwen2.py", args);
}

/// Runs the reference script learner/tests/parity/`name` with `args` (offline, quiet, one
/// thread), failing with its output.
pub fn run_parity_script<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(name: &str, args: &[S]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity").join(name);
    let output = Command::new(python())
        .arg(&script)
        .args(args)
        // Nothing may be fetched from a hub; keep transformers quiet.
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env("TRANSFORMERS_VERBOSITY", "error")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("start the reference Python");
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\n{}\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Largest absolute element-wise difference, in fp32.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a.to_kind(tch::Kind::Float) - b.to_kind(tch::Kind::Float)).abs().max().double_value(&[])
}

/// A test-sized config: GQA (4 heads over 2), q/k/v biases, tied or not.
pub fn test_config(tied: bool) -> Qwen2Config {
    Qwen2Config { vocab_size: 512, tie_word_embeddings: tied, ..Qwen2Config::tiny() }
}

/// Deterministic documents of pseudo-random tokens in `1..vocab` with lengths in `lens`.
pub fn documents(count: usize, lens: std::ops::Range<usize>, vocab: u32, seed: u64) -> Vec<Document> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    (0..count)
        .map(|_| {
            let len = lens.start + next() as usize % (lens.end - lens.start);
            Document::new((0..len).map(|_| 1 + next() % (vocab - 1)).collect())
        })
        .collect()
}

/// A synchronous connection to the test Redis.
pub fn connect(redis: &TestRedis) -> redis::Connection {
    redis::Client::open(redis.url.as_str()).and_then(|c| c.get_connection()).expect("connect to the test redis")
}

/// The learner's `/metrics` page on `port`, when it answers 200.
pub fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// Deterministic code-like text of about `words` words (so a BPE learns real merges).
pub fn code_text(seed: u64, words: usize) -> String {
    const WORDS: [&str; 24] = [
        "def",
        "return",
        "self",
        "value",
        "parser",
        "config",
        "import",
        "class",
        "if",
        "else",
        "for",
        "in",
        "None",
        "raise",
        "ValueError",
        "split",
        "line",
        "key",
        "items",
        "append",
        "result",
        "path",
        "open",
        "with",
    ];
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::new();
    for i in 0..words {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push_str(WORDS[(state % WORDS.len() as u64) as usize]);
        out.push(if i % 9 == 8 { '\n' } else { ' ' });
    }
    out
}

fn base_record(id: &str, kind: RecordKind) -> TrajectoryRecord {
    TrajectoryRecord {
        worker: "test-worker".into(),
        created_at: "2025-01-01T00:00:00Z".into(),
        ..TrajectoryRecord::new(kind, id, format!("task-{id}"))
    }
}

/// A `ctx` record whose training text is `text`.
pub fn ctx_record(id: &str, text: &str) -> TrajectoryRecord {
    let mut r = base_record(id, RecordKind::Ctx);
    r.ctx = Some(ContextualPr {
        repo_name: "acme/ini".into(),
        text: text.into(),
        template: "python_pr".into(),
        ..Default::default()
    });
    r
}

/// An `env` episode of `turns` tool calls ending with `exit`, resolved or not.
pub fn env_record(id: &str, seed: u64, turns: usize, exit: ExitReason, resolved: bool) -> TrajectoryRecord {
    let mut r = base_record(id, RecordKind::Env);
    r.tools = vec![serde_json::json!({"type": "function", "function": {"name": "bash"}})];
    let mut messages = vec![
        Message::text(Role::System, "You are a software engineer."),
        Message::text(Role::User, code_text(seed, 30)),
    ];
    for t in 0..turns {
        let mut a = Message::text(Role::Assistant, format!("Step {t}: {}", code_text(seed + t as u64, 12)));
        a.tool_calls = vec![ToolCall {
            id: format!("c{t}"),
            kind: "function".into(),
            function: FunctionCall {
                name: "bash".into(),
                arguments: serde_json::json!({"command": format!("grep -n key file{t}.py")}).to_string(),
            },
        }];
        messages.push(a);
        let mut tool = Message::text(Role::Tool, code_text(seed * 7 + t as u64, 25));
        tool.tool_call_id = Some(format!("c{t}"));
        messages.push(tool);
    }
    r.messages = messages;
    r.exit_reason = Some(exit);
    if exit.is_trainable() {
        let status = if resolved { TestStatus::Passed } else { TestStatus::Failed };
        r.grading = Some(Grading::from_outcomes(
            vec![TestOutcome::new("tests/test_a.py::test_a", status)],
            vec![],
            "git apply",
        ));
    }
    r
}

/// Publishes records as a worker does (`XADD` with `id`, `kind`, `codec`, `data`); returns the
/// stream ids in order.
pub fn publish(con: &mut redis::Connection, stream: &str, records: &[TrajectoryRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let data = wire::encode(r).expect("encode a record");
            redis::cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg(wire::FIELD_ID)
                .arg(&r.record_id)
                .arg(wire::FIELD_KIND)
                .arg(r.kind.as_str())
                .arg(wire::FIELD_CODEC)
                .arg(wire::CODEC_ZSTD_JSON)
                .arg(wire::FIELD_DATA)
                .arg(data)
                .query(con)
                .expect("XADD")
        })
        .collect()
}

/// Entries of `group` on `stream` delivered and not acknowledged.
pub fn pending(con: &mut redis::Connection, stream: &str, group: &str) -> u64 {
    let reply: redis::Value = redis::cmd("XPENDING").arg(stream).arg(group).query(con).expect("XPENDING");
    match reply {
        redis::Value::Array(parts) => {
            parts.into_iter().next().and_then(|v| redis::from_redis_value::<u64>(v).ok()).unwrap_or(0)
        }
        _ => 0,
    }
}

/// A learner configuration for tests: tiny model, short rows, one libtorch thread, frequent
/// checkpoints, a private stream and output directory, no metrics server.
pub fn learner_config(redis_url: &str, stream: &str, output_dir: &Path) -> LearnerConfig {
    LearnerConfig {
        redis_url: redis_url.into(),
        stream: stream.into(),
        group: "learner".into(),
        consumer: "test".into(),
        read_batch: 32,
        read_block: std::time::Duration::from_millis(600),
        output_dir: output_dir.into(),
        checkpoint_every: 4,
        keep_checkpoints: 1000,
        device: "cpu".into(),
        threads: 1,
        tokenizer_vocab: 400,
        tokenizer_bootstrap_records: 1000,
        seq_len: 128,
        micro_batch_rows: 2,
        grad_accum: 2,
        max_open_rows: 8,
        until_idle: Some(std::time::Duration::from_millis(1500)),
        flush_after_idle: None,
        metrics_listen: None,
        log_every: 5,
        ..LearnerConfig::default()
    }
}

/// Entries of `stream` the group has not acknowledged: not yet delivered (`lag`) plus pending.
pub fn unacknowledged(con: &mut redis::Connection, stream: &str, group: &str) -> u64 {
    type Info = std::collections::HashMap<String, redis::Value>;
    let groups: Vec<Info> = redis::cmd("XINFO").arg("GROUPS").arg(stream).query(con).unwrap_or_default();
    let num = |v: Option<&redis::Value>| v.and_then(|v| redis::from_redis_value::<u64>(v.clone()).ok()).unwrap_or(0);
    let named = |g: &&Info| {
        g.get("name").and_then(|n| redis::from_redis_value::<String>(n.clone()).ok()).as_deref() == Some(group)
    };
    match groups.iter().find(named) {
        Some(g) => num(g.get("lag")) + num(g.get("pending")),
        None => redis::cmd("XLEN").arg(stream).query(con).unwrap_or(0),
    }
}
