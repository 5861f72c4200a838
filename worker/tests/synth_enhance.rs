//! LLM enhancement of synthesized PRs against a real OpenAI-compatible HTTP server started here
//! on 127.0.0.1 (the peer, answering chat completions shaped as OpenAI's): the rendered text uses
//! the model's summary and refined commit messages; a 500, a timeout, an empty answer or one that
//! is only reasoning keeps the original text and is counted; the requests in flight never exceed
//! `max_concurrent` (the server counts them); the `[synth.enhance]` config table loads and is
//! checked.

use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentmill_proto::TrajectoryRecord;
use agentmill_worker::agent::policy::OpenAiConfig;
use agentmill_worker::config::WorkerConfig;
use agentmill_worker::synth::enhance::{COMMIT_SYSTEM_PROMPT, SUMMARY_SYSTEM_PROMPT};
use agentmill_worker::synth::{
    ApproxTokenCounter, EnhanceConfig, Enhancer, FilterConfig, Outcome, PrRow, RecordMeta, SynthConfig, SynthError, SynthInput, SynthReport,
    Synthesizer, run_offline,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

const MODEL: &str = "agentmill-enhance-test-model";

// ---------------------------------------------------------------------------------------------
// The peer: answers from the prompt it is sent, counting requests in flight.
//
// Summary requests answer `Summary of <title>.`; commit requests `Refined: <original subject>`.
// Markers change that: `[summary:500]` (in a PR body) makes summary requests fail with a 500;
// `[commit:slow]`, `[commit:empty]`, `[commit:think]` (in a commit message) make that commit's
// request answer after 3 s, with empty content, or with reasoning only.

#[derive(Debug, Default)]
struct PeerState {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    seen: Mutex<Vec<Value>>,
}

struct Peer {
    base_url: String,
    state: Arc<PeerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Peer {
    async fn start(delay: Duration) -> Peer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(PeerState::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(req, state.clone(), delay));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                });
            }
        });
        Peer { base_url: format!("http://{addr}/v1"), state, task }
    }

    fn seen(&self) -> Vec<Value> {
        self.state.seen.lock().expect("peer state").clone()
    }

    fn endpoint(&self) -> OpenAiConfig {
        OpenAiConfig {
            base_url: self.base_url.clone(),
            model: MODEL.into(),
            api_key_env: "AGENTMILL_TEST_KEY_THAT_IS_NOT_SET".into(),
            temperature: Some(0.2),
            max_tokens: Some(256),
            request_timeout_s: 1,
            connect_timeout_s: 1,
            max_retries: 1,
            backoff_initial_ms: 5,
            backoff_max_ms: 10,
            ..OpenAiConfig::default()
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts a request out of flight however its handler ends (a client that timed out drops it).
struct InFlight(Arc<PeerState>);

impl InFlight {
    fn enter(state: Arc<PeerState>) -> InFlight {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-enhance", "object": "chat.completion", "created": 1_700_000_000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    })
}

/// The text after `label` up to the end of its line.
fn line_after<'a>(text: &'a str, label: &str) -> &'a str {
    text.split_once(label).map(|(_, rest)| rest.lines().next().unwrap_or_default()).unwrap_or_default()
}

async fn answer(req: Request<Incoming>, state: Arc<PeerState>, delay: Duration) -> Result<Response<Full<Bytes>>, Infallible> {
    let _in_flight = InFlight::enter(state.clone());
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.seen.lock().expect("peer state").push(body.clone());
    let system = body["messages"][0]["content"].as_str().unwrap_or_default().to_string();
    let user = body["messages"][1]["content"].as_str().unwrap_or_default().to_string();
    tokio::time::sleep(delay).await;
    let reply = |status: u16, body: Value| Ok(Response::builder().status(status).header("content-type", "application/json").body(Full::new(Bytes::from(body.to_string()))).expect("a response"));
    if system == SUMMARY_SYSTEM_PROMPT {
        if user.contains("[summary:500]") {
            return reply(500, json!({"error": {"message": "the test peer fails summaries"}}));
        }
        return reply(200, completion(&format!("Summary of {}.", line_after(&user, "Pull request title: "))));
    }
    let original = line_after(&user, "Its original message:\n");
    if original.contains("[commit:slow]") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if original.contains("[commit:empty]") {
        return reply(200, completion(""));
    }
    if original.contains("[commit:think]") {
        return reply(200, completion("<think>The diff renames a variable, so the message should"));
    }
    reply(200, completion(&format!("Refined: {original}")))
}

// ---------------------------------------------------------------------------------------------
// Rows: `calc.py` with one line per commit, each commit setting its line to 1.

const VARS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn row(pr: u32, title: &str, body: &str, messages: &[&str]) -> Value {
    let content: String = VARS.iter().map(|v| format!("{v} = 0\n")).collect();
    let commits: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let v = VARS[i];
            json!({"message": m, "diffs": [{"path": "calc.py", "patch": format!("@@ -{n},1 +{n},1 @@\n-{v} = 0\n+{v} = 1\n", n = i + 1)}]})
        })
        .collect();
    json!({
        "repo_name": "acme/calc", "pr_id": pr, "title": title, "body": body, "merged": true, "author": "ada",
        "relevant_files": [{"path": "calc.py", "content": content}],
        "commits": commits
    })
}

fn meta() -> RecordMeta {
    RecordMeta { task_id: "enhance".into(), worker: "w".into(), created_at: "2026-01-01T00:00:00Z".into() }
}

fn config(enhance: EnhanceConfig) -> SynthConfig {
    SynthConfig { filter: FilterConfig::keep_all(), enhance, ..SynthConfig::default() }
}

/// Runs the offline pipeline over `rows` on a blocking thread (the peer keeps serving on the
/// test's runtime); returns the report and the records in output order.
async fn run_rows(rows: Vec<Value>, cfg: SynthConfig) -> Result<(SynthReport, Vec<TrajectoryRecord>), SynthError> {
    tokio::task::spawn_blocking(move || {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("rows.jsonl");
        std::fs::write(&path, rows.iter().map(|r| format!("{r}\n")).collect::<String>()).expect("write rows");
        let mut out = Vec::new();
        let report = run_offline(&SynthInput::Rows { path, offset: 0, limit: 0 }, cfg, Box::new(ApproxTokenCounter::default()), meta(), &mut out)?;
        let records = String::from_utf8(out).expect("utf8").lines().map(|l| serde_json::from_str(l).expect("a record")).collect();
        Ok((report, records))
    })
    .await
    .expect("the pipeline thread")
}

fn text(r: &TrajectoryRecord) -> &str {
    r.ctx.as_ref().map(|c| c.text.as_str()).expect("a ctx record")
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_text_uses_the_models_summary_and_refined_messages() {
    let peer = Peer::start(Duration::ZERO).await;
    let enhance = EnhanceConfig { enabled: true, endpoint: peer.endpoint(), ..EnhanceConfig::default() };
    let mut kept = row(8, "Keep the summary", "", &["wip", "more wip"]);
    kept["pr_summary"] = json!("The row's own summary.");
    kept["commits"][0]["refined_message"] = json!("The row's own refined message.");
    let rows = vec![row(7, "Set a and b", "Both start at 1 now.", &["wip", "fix b"]), kept];
    let (report, records) = run_rows(rows, config(enhance.clone())).await.expect("runs");

    assert_eq!((report.kept, report.enhanced, report.enhance_failed), (2, 4, 0), "{report:#?}");
    let first = text(&records[0]);
    assert!(
        first.contains("# Edits\nSummary of Set a and b.\n\nRefined: wip\n\nEdit: calc.py") && first.contains("Refined: fix b\n\nEdit: calc.py"),
        "{first}"
    );
    assert!(!first.contains("\nwip\n"), "the original message is not rendered:\n{first}");
    let ctx = records[0].ctx.as_ref().expect("ctx");
    assert_eq!(ctx.pr_summary, "Summary of Set a and b.");
    assert_eq!((ctx.commits[0].message.as_str(), ctx.commits[0].refined_message.as_deref()), ("wip", Some("Refined: wip")));
    let policy = records[0].provenance.policy.as_ref().expect("enhanced records name the model");
    assert_eq!((policy.name.as_str(), policy.model.as_str()), ("synth.enhance", MODEL));

    // Without `overwrite`, what the row already has is kept and not asked for.
    let second = text(&records[1]);
    assert!(second.contains("# Edits\nThe row's own summary.\n\nThe row's own refined message.\n\nEdit:"), "{second}");
    assert!(second.contains("Refined: more wip"), "{second}");

    let seen = peer.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|b| b["model"] == MODEL && b["max_tokens"] == 256 && b.get("tools").is_none()), "{seen:#?}");
    let summaries = seen.iter().filter(|b| b["messages"][0]["content"] == SUMMARY_SYSTEM_PROMPT).count();
    let commits = seen.iter().filter(|b| b["messages"][0]["content"] == COMMIT_SYSTEM_PROMPT).count();
    assert_eq!((summaries, commits), (1, 3));
    let summary_prompt = seen.iter().find(|b| b["messages"][0]["content"] == SUMMARY_SYSTEM_PROMPT).map(|b| b["messages"][1]["content"].to_string());
    assert!(summary_prompt.is_some_and(|p| p.contains("Both start at 1 now.") && p.contains("+b = 1")), "the summary prompt has the body and the diff");

    // With `overwrite`, one row through `Synthesizer::process` replaces both.
    let enhancer = Enhancer::new(EnhanceConfig { overwrite: true, ..enhance }).expect("an enhancer");
    let row: PrRow = agentmill_worker::synth::row::row_from_value(1, row(9, "Overwrite", "", &["one"])).expect("a row");
    let row = PrRow { pr_summary: "old".into(), ..row };
    let outcome = tokio::task::spawn_blocking(move || {
        let mut synth = Synthesizer::new(config(EnhanceConfig::default()), Box::new(ApproxTokenCounter::default()), meta()).with_enhancer(enhancer);
        let outcome = synth.process(&row);
        (outcome, synth.into_report())
    })
    .await
    .expect("the synthesizer thread");
    let Outcome::Kept(record) = outcome.0 else { panic!("kept: {outcome:?}") };
    assert!(text(&record).contains("# Edits\nSummary of Overwrite.\n\nRefined: one\n"), "{}", text(&record));
    assert_eq!((outcome.1.enhanced, outcome.1.enhance_failed), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_a_timeout_an_empty_or_reasoning_only_answer_keeps_the_original_text_and_is_counted() {
    let peer = Peer::start(Duration::ZERO).await;
    let enhance = EnhanceConfig { enabled: true, endpoint: peer.endpoint(), ..EnhanceConfig::default() };
    let messages = ["[commit:slow] tune a", "[commit:empty] tune b", "[commit:think] tune c", "tune d"];
    let rows = vec![row(11, "Tune four", "[summary:500]", &messages)];
    let started = std::time::Instant::now();
    let (report, records) = run_rows(rows, config(enhance)).await.expect("runs");

    assert_eq!((report.kept, report.enhanced, report.enhance_failed), (1, 1, 4), "{report:#?}");
    let t = text(&records[0]);
    assert!(
        t.contains("# Edits\n\n[commit:slow] tune a\n\nEdit:")
            && t.contains("\n[commit:empty] tune b\n\nEdit:")
            && t.contains("\n[commit:think] tune c\n\nEdit:")
            && t.contains("\nRefined: tune d\n\nEdit:"),
        "failed texts render as they were; no summary paragraph:\n{t}"
    );
    let ctx = records[0].ctx.as_ref().expect("ctx");
    assert_eq!(ctx.pr_summary, "");
    assert_eq!(ctx.commits.iter().map(|c| c.refined_message.is_some()).collect::<Vec<_>>(), [false, false, false, true]);

    let errors = report.errors.join("\n");
    for expected in ["acme/calc#11 summary: the request failed", "500", "acme/calc#11 commit 1 message", "timed out", "commit 2 message: the answer was empty", "commit 3 message: the answer was empty", "kept the original text"] {
        assert!(errors.contains(expected), "{expected:?} in:\n{errors}");
    }
    // The 500 was retried (max_retries = 1), the timeout too; the others answered once.
    let seen = peer.seen();
    let summaries = seen.iter().filter(|b| b["messages"][0]["content"] == SUMMARY_SYSTEM_PROMPT).count();
    assert_eq!((summaries, seen.len()), (2, 7), "{seen:#?}");
    // Two 1 s timeouts in a row, not the peer's 3 s: the request timeout is what bounds a commit.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_never_exceed_max_concurrent_and_records_keep_their_order() {
    let peer = Peer::start(Duration::from_millis(60)).await;
    let enhance = EnhanceConfig { enabled: true, max_concurrent: 3, endpoint: peer.endpoint(), ..EnhanceConfig::default() };
    let rows: Vec<Value> = (1..=12).map(|i| row(i, &format!("PR {i}"), "", &["first", "second"])).collect();
    let (report, records) = run_rows(rows, config(enhance)).await.expect("runs");

    assert_eq!((report.kept, report.enhanced, report.enhance_failed), (12, 36, 0), "{report:#?}");
    assert_eq!(peer.seen().len(), 36);
    let max = peer.state.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 3, "{max} requests were in flight at once; the limit is 3");
    assert_eq!(max, 3, "with 36 requests of 60 ms queued, the limit is reached");
    let ids: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
    let expected: Vec<String> = (1..=12).map(|i| format!("ctx:acme/calc:{i}")).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    for (i, r) in records.iter().enumerate() {
        assert!(text(r).contains(&format!("Summary of PR {}.", i + 1)), "{}", text(r));
    }
}

#[test]
fn settings_that_cannot_work_stop_the_run_and_name_the_key() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("rows.jsonl");
    std::fs::write(&path, format!("{}\n", row(1, "t", "", &["m"]))).expect("write rows");
    let bad_url = EnhanceConfig { enabled: true, endpoint: OpenAiConfig { base_url: "not a url".into(), model: "m".into(), ..OpenAiConfig::default() }, ..EnhanceConfig::default() };
    let err = run_offline(&SynthInput::Rows { path, offset: 0, limit: 0 }, config(bad_url), Box::new(ApproxTokenCounter::default()), meta(), &mut Vec::new())
        .expect_err("refused")
        .to_string();
    assert!(err.contains("synth.enhance.endpoint") && err.contains("base_url"), "{err}");
    let none = EnhanceConfig { max_concurrent: 0, ..EnhanceConfig::default() };
    let err = Enhancer::new(none).expect_err("refused").to_string();
    assert!(err.contains("max_concurrent"), "{err}");
}

#[test]
fn the_worker_config_reads_the_synth_enhance_table() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let load = |toml: &str| {
        let path = tmp.path().join("worker.toml");
        std::fs::write(&path, toml).expect("write");
        WorkerConfig::load(Some(Path::new(&path)), &Default::default())
    };
    let cfg = load("[synth.enhance]\nenabled = true\nmax_concurrent = 4\noverwrite = true\n[synth.enhance.endpoint]\nmodel = \"m\"\nbase_url = \"http://10.0.0.1:8000/v1\"\nmax_retries = 2\n")
        .expect("loads");
    let e = &cfg.synth.enhance;
    assert!(e.enabled && e.overwrite && e.summaries && e.commit_messages);
    assert_eq!((e.max_concurrent, e.endpoint.model.as_str(), e.endpoint.max_retries), (4, "m", 2));
    assert_eq!(e.endpoint.request_timeout_s, OpenAiConfig::default().request_timeout_s);

    let err = load("[synth.enhance]\nenabled = true\n").expect_err("no model").to_string();
    assert!(err.contains("synth.enhance.endpoint.model"), "{err}");
    let err = load("[synth.enhance]\nmax_concurrnt = 4\n").expect_err("a misspelt key").to_string();
    assert!(err.contains("max_concurrnt"), "{err}");
    // Off by default, with no model needed.
    assert!(!load("").expect("loads").synth.enhance.enabled);
}
