//! A real OpenAI-compatible model server for tests: llama.cpp's, through `llama-cpp-python`
//! (`python -m llama_cpp.server`, installed by deploy/setup.sh into `.venv/llama-cpp-0.3.36`),
//! serving a checkpoint the learner wrote and exported with `agentmill-learner export-gguf`.
//!
//! [`tiny_checkpoint`] makes that checkpoint once per test process (under
//! `target/agentmill-test-checkpoints/<pid>`), with the learner alone and
//! no download: a byte-level BPE tokenizer trained on records made from the bundled tasks, and
//! the learner's fresh tiny model (`agentmill-learner init`). [`LlamaServer::start`] serves a
//! GGUF on a free loopback port, returns once it answers, and stops it when dropped.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use agentmill_proto::{ExitReason, FunctionCall, Message, RecordKind, Role, ToolCall, TrajectoryRecord};

use crate::{binary, bundled_tasks, free_port, workspace};

/// The llama-cpp-python release deploy/setup.sh installs.
pub const LLAMA_CPP_PYTHON: &str = "0.3.36";
/// The name the server gives its model (`model` in requests and responses).
pub const MODEL_ALIAS: &str = "agentmill-tiny";

/// The Python of the llama-cpp-python venv; panics with the fix when it is missing.
pub fn llama_python() -> PathBuf {
    let python = workspace().join(format!(".venv/llama-cpp-{LLAMA_CPP_PYTHON}/bin/python"));
    assert!(python.is_file(), "{} is missing: run deploy/setup.sh (it installs llama-cpp-python {LLAMA_CPP_PYTHON} with its server)", python.display());
    python
}

/// A learner checkpoint (config.json, model.safetensors, tokenizer.json) and its GGUF export.
#[derive(Debug)]
pub struct TinyCheckpoint {
    /// The Hugging Face checkpoint directory.
    pub dir: PathBuf,
    /// `dir`'s export by `agentmill-learner export-gguf`.
    pub gguf: PathBuf,
    /// Records of the bundled tasks the tokenizer was trained on (JSONL).
    pub records: PathBuf,
}

/// Records made from the bundled tasks: each task's statement, the gold patch's files viewed
/// and edited through the tools, and a submit; enough text for a tokenizer that knows the
/// template's markup, the tools' names and code.
pub fn bundled_records() -> Vec<TrajectoryRecord> {
    let tools: Vec<serde_json::Value> = ["bash", "str_replace_editor", "submit"]
        .iter()
        .map(|name| serde_json::json!({"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}))
        .collect();
    let call = |id: &str, name: &str, args: serde_json::Value| ToolCall {
        id: id.into(),
        kind: "function".into(),
        function: FunctionCall { name: name.into(), arguments: args.to_string() },
    };
    let tool = |id: &str, content: &str| {
        let mut m = Message::text(Role::Tool, content);
        m.tool_call_id = Some(id.into());
        m
    };
    bundled_tasks()
        .into_iter()
        .map(|task| {
            let mut look = Message::text(Role::Assistant, "Let me look at the repository.");
            look.tool_calls = vec![call("c1", "bash", serde_json::json!({"command": "ls -R . && git status"}))];
            let mut edit = Message::text(Role::Assistant, "");
            edit.tool_calls = vec![call("c2", "str_replace_editor", serde_json::json!({"command": "view", "path": "/testbed"}))];
            let mut submit = Message::text(Role::Assistant, "");
            submit.tool_calls = vec![call("c3", "submit", serde_json::json!({}))];
            TrajectoryRecord {
                worker: "tests".into(),
                tools: tools.clone(),
                messages: vec![
                    Message::text(Role::System, "You are a software engineer fixing an issue in a repository."),
                    Message::text(Role::User, task.problem_statement.clone()),
                    look,
                    tool("c1", &task.test_patch),
                    edit,
                    tool("c2", &task.patch),
                    submit,
                    tool("c3", &task.patch),
                ],
                exit_reason: Some(ExitReason::Submitted),
                ..TrajectoryRecord::new(RecordKind::Env, format!("env:{}:r0:a1", task.instance_id), task.instance_id.clone())
            }
        })
        .collect()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// The tiny checkpoint of this test process (made on first use, then shared).
pub fn tiny_checkpoint() -> &'static TinyCheckpoint {
    static CHECKPOINT: OnceLock<TinyCheckpoint> = OnceLock::new();
    CHECKPOINT.get_or_init(|| {
            // Under target/ and named by this process, since a static is never dropped: each run
            // removes the folders of runs that have ended.
            let root = workspace().join("target/agentmill-test-checkpoints");
            for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
                let pid = entry.file_name().to_string_lossy().parse::<u32>().ok();
                if pid.is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
            let work = root.join(std::process::id().to_string());
            let _ = std::fs::remove_dir_all(&work);
            std::fs::create_dir_all(&work).expect("checkpoint folder under target/");
            let work = work.as_path();
            let records = work.join("records.jsonl");
            let lines: Vec<String> = bundled_records().iter().map(|r| serde_json::to_string(r).expect("record as JSON")).collect();
            std::fs::write(&records, lines.join("\n") + "\n").expect("write records");
            let dir = work.join("checkpoint");
            let learner = binary("agentmill-learner");
            // The embedded tiny model has 1024 embedding rows; the tokenizer must fit in them.
            run(Command::new(&learner).args(["tokenizer", "train", "--vocab", "1024", "--input"]).arg(&records).arg("--out").arg(work.join("tokenizer.json")));
            run(Command::new(&learner).args(["init", "--seed", "7", "--out"]).arg(&dir));
            std::fs::copy(work.join("tokenizer.json"), dir.join("tokenizer.json")).expect("copy tokenizer.json");
            let gguf = work.join("tiny.gguf");
            run(Command::new(&learner).arg("export-gguf").arg(&dir).arg(&gguf));
            TinyCheckpoint { dir, gguf, records }
        })
}

/// A running `python -m llama_cpp.server`, stopped when dropped.
#[derive(Debug)]
pub struct LlamaServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:PORT/v1`, the OpenAI base URL.
    pub base_url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LlamaServer {
    /// Serves `gguf` with a 4096-token context; returns once `/v1/models` answers.
    pub fn start(gguf: &Path) -> LlamaServer {
        LlamaServer::start_with(gguf, &[])
    }

    /// Like [`LlamaServer::start`], with more of the server's flags (e.g. `["--n_ctx", "512"]`).
    pub fn start_with(gguf: &Path, extra: &[&str]) -> LlamaServer {
        let python = llama_python();
        let dir = tempfile::Builder::new().prefix("agentmill-llama-").tempdir().expect("temp dir");
        let log = dir.path().join("server.log");
        let port = free_port();
        let file = std::fs::File::create(&log).expect("server log");
        let child = Command::new(python)
            .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--n_ctx", "4096", "--seed", "0", "--model_alias", MODEL_ALIAS])
            .arg("--port")
            .arg(port.to_string())
            .arg("--model")
            .arg(gguf)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("start python -m llama_cpp.server");
        let mut server = LlamaServer { child, port, base_url: format!("http://127.0.0.1:{port}/v1"), log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("llama_cpp.server exited ({status}) before answering:\n{}", server.log_tail());
            }
            if server.get("/v1/models").is_some_and(|(code, _)| code == 200) {
                return server;
            }
            assert!(Instant::now() < deadline, "llama_cpp.server did not answer on port {port} within 120 s:\n{}", server.log_tail());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of the server's output (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A GET on the server: status code and body, or `None` when it does not answer.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request("GET", path, None)
    }

    /// A POST of a JSON body: status code and body.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, String) {
        self.request("POST", path, Some(&body.to_string())).unwrap_or_else(|| panic!("no answer to POST {path}:\n{}", self.log_tail()))
    }

    fn request(&self, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body.as_bytes()).ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, body.to_string()))
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The learner's outcomes of its drift check, as `recorded_turns` names them.
pub const TURN_OUTCOMES: [&str; 6] = ["match", "drift", "other_text", "out_of_vocab", "unmapped", "misaligned"];

/// The learner's drift check on `records` with `tokenizer`, run as an operator runs it
/// (`agentmill-learner export`): the `recorded_turns` of the export's manifest, e.g.
/// `{"match": 3, "drift": 1, …}`.
pub fn drift_check(records: &[TrajectoryRecord], tokenizer: &Path) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("records.jsonl");
    let lines: Vec<String> = records.iter().map(|r| serde_json::to_string(r).expect("record as JSON") + "\n").collect();
    std::fs::write(&input, lines.concat()).expect("write the records");
    let out = dir.path().join("export");
    let ran = Command::new(binary("agentmill-learner"))
        .args(["export", "--layout", "documents", "--format", "megatron", "--prefix", "d", "--input"])
        .arg(&input)
        .arg("--tokenizer")
        .arg(tokenizer)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run agentmill-learner export");
    assert!(ran.status.success(), "agentmill-learner export: {}", String::from_utf8_lossy(&ran.stderr));
    let manifest = std::fs::read_to_string(out.join("d.json")).expect("the export's manifest");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("the manifest is JSON");
    manifest["recorded_turns"].clone()
}
