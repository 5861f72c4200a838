//! The training service over a real Redis stream and real libtorch (CPU): exactly-once training
//! across SIGKILLs and restarts of the real binary, what becomes of each kind of record, and
//! the loss falling through the whole path (stream → render → tokenize → mix → pack → train).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentmill_learner::config::LearnerConfig;
use agentmill_learner::mix::Source;
use agentmill_learner::service::position::{self, LEDGER_FILE, LedgerLine, Outcome};
use agentmill_learner::service::{self, RunSummary, SUMMARY_FILE, StopReason};
use agentmill_learner::train::{TRAINER_STATE_FILE, TrainerState};
use agentmill_proto::{ExitReason, TrajectoryRecord};
use agentmill_testkit::{TestRedis, free_port, unique};
use common::{ctx_record, env_record, publish, scrape};

fn ledger(output: &Path) -> Vec<LedgerLine> {
    position::read_ledger(&output.join(LEDGER_FILE)).expect("read the ledger")
}

fn final_state(output: &Path) -> TrainerState {
    let (_, dir) = position::latest_checkpoint(output).expect("list").expect("a committed checkpoint");
    agentmill_learner::checkpoint::read_json_file(&dir.join(TRAINER_STATE_FILE)).expect("trainer_state.json")
}

/// Checks the ledger against what was published: each trainable record trained exactly once,
/// each untrainable one settled once, every real token trained exactly once.
fn assert_exactly_once(output: &Path, published: &[TrajectoryRecord]) -> Vec<LedgerLine> {
    let lines = ledger(output);
    let mut trained: BTreeMap<&str, usize> = BTreeMap::new();
    let mut settled: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &lines {
        let Some(id) = l.record_id.as_deref() else { continue };
        match l.outcome {
            Outcome::Trained => *trained.entry(id).or_default() += 1,
            Outcome::Duplicate | Outcome::Redelivered => {}
            _ => *settled.entry(id).or_default() += 1,
        }
    }
    let want_trained: BTreeSet<&str> =
        published.iter().filter(|r| r.is_trainable()).map(|r| r.record_id.as_str()).collect();
    let want_skipped: BTreeSet<&str> =
        published.iter().filter(|r| !r.is_trainable()).map(|r| r.record_id.as_str()).collect();
    let twice: Vec<_> = trained.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "trained more than once: {twice:?}");
    let got: BTreeSet<&str> = trained.keys().copied().collect();
    assert_eq!(got, want_trained, "missing: {:?}", want_trained.difference(&got).collect::<Vec<_>>());
    assert_eq!(settled.keys().copied().collect::<BTreeSet<_>>(), want_skipped);
    assert!(settled.values().all(|&n| n == 1), "a skipped record settled twice: {settled:?}");
    // Tokens: what the trainer counts equals each trained record's tokens times its copies,
    // so no chunk was trained twice or lost — including chunks split across the crash.
    let expected: u64 =
        lines.iter().filter(|l| l.outcome == Outcome::Trained).map(|l| l.tokens * u64::from(l.copies)).sum();
    assert_eq!(
        final_state(output).tokens_seen,
        expected,
        "tokens trained differ from the tokens of the trained records"
    );
    lines
}

/// A mix of every kind. Each episode's first assistant turn carries token ids from a policy
/// whose vocabulary is not the learner's (counted as `out_of_vocab`, trained as rendered).
fn mixed_records(prefix: &str, n: usize) -> Vec<TrajectoryRecord> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let seed = i as u64 + 1;
            let mut r = match i % 7 {
                0..=2 => ctx_record(&id, &common::code_text(seed, 40 + (i * 37) % 300)),
                3 => env_record(&id, seed, 1 + i % 4, ExitReason::Submitted, true),
                4 | 5 => env_record(&id, seed, 1 + i % 5, ExitReason::MaxSteps, false),
                _ if i % 14 == 6 => env_record(&id, seed, 2, ExitReason::SandboxError, false),
                _ => env_record(&id, seed, 2, ExitReason::Submitted, false),
            };
            if let Some(a) = r.messages.iter_mut().find(|m| m.role == agentmill_proto::Role::Assistant) {
                a.token_ids = Some(vec![151_000, 4_000_000_000]);
            }
            r
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctx_and_env_train_infra_is_skipped_and_a_duplicate_trains_once() {
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-kinds");
    let out = tempfile::tempdir().expect("tempdir");
    let mut records = Vec::new();
    for i in 0..6 {
        records.push(ctx_record(&format!("ctx-{i}"), &common::code_text(i, 60 + 20 * i as usize)));
    }
    for i in 0..4 {
        records.push(env_record(&format!("pass-{i}"), 10 + i, 2, ExitReason::Submitted, true));
        records.push(env_record(&format!("fail-{i}"), 20 + i, 3, ExitReason::MaxSteps, false));
    }
    records.push(env_record("infra-0", 30, 1, ExitReason::SandboxError, false));
    records.push(env_record("infra-1", 31, 1, ExitReason::InfraError, false));
    records.push(env_record("cancelled-0", 32, 1, ExitReason::Cancelled, false));
    let ids = publish(&mut con, &stream, &records);
    // The same record published again under a new stream id, and an entry nobody can decode.
    let dup = publish(&mut con, &stream, &records[..1]);
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("codec")
        .arg("rot13+xml")
        .arg("data")
        .arg("???")
        .query(&mut con)
        .expect("XADD");

    let cfg = common::learner_config(&redis.url, &stream, out.path());
    let summary = service::run(cfg, std::future::pending()).await.expect("the service runs");

    assert_eq!(summary.stop_reason, StopReason::UntilIdle);
    let r = &summary.records;
    assert_eq!((r.ctx, r.env_pass, r.env_fail, r.env), (6, 4, 4, 8), "{r:?}");
    assert_eq!((r.skipped_infra, r.skipped_cancelled, r.deduped, r.invalid), (2, 1, 1, 1), "{r:?}");
    let lines = assert_exactly_once(out.path(), &records);
    let ctx0 =
        lines.iter().find(|l| l.record_id.as_deref() == Some("ctx-0") && l.outcome == Outcome::Trained).expect("ctx-0");
    // The second publication is acknowledged with the first (it arrived while ctx-0 was in
    // flight) or settled on its own as a duplicate (it arrived after) — never trained.
    let dup_lines: Vec<_> = lines.iter().filter(|l| l.stream_ids.contains(&dup[0])).collect();
    assert_eq!(dup_lines.len(), 1, "{dup_lines:?}");
    assert!(dup_lines[0].outcome == Outcome::Duplicate || dup_lines[0] == ctx0, "{dup_lines:?}");
    assert!(ctx0.stream_ids.contains(&ids[0]));
    for l in lines.iter().filter(|l| l.outcome == Outcome::Trained) {
        let want = if l.record_id.as_deref().is_some_and(|id| id.starts_with("pass-")) { 3 } else { 1 };
        assert_eq!(l.copies, want, "the paper's mix trains passing episodes three times: {l:?}");
    }
    assert_eq!(common::pending(&mut con, &stream, "learner"), 0, "every entry is acknowledged at the end");

    let written: RunSummary =
        serde_json::from_str(&std::fs::read_to_string(out.path().join(SUMMARY_FILE)).expect("summary.json"))
            .expect("parses");
    assert_eq!(
        (written.steps, &written.records, &written.checkpoint),
        (summary.steps, &summary.records, &summary.checkpoint)
    );
    let dir = summary.checkpoint.expect("a final checkpoint");
    for file in ["config.json", "model.safetensors", "optimizer.safetensors", "tokenizer.json", "trainer_state.json"] {
        assert!(dir.join(file).is_file(), "{file} missing from {}", dir.display());
    }
    assert!(summary.packing_efficiency > 0.5, "{}", summary.packing_efficiency);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loss_falls_through_the_service() {
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-loss");
    let out = tempfile::tempdir().expect("tempdir");
    // Ten texts, each published twelve times as distinct records: a corpus the model can learn.
    let records: Vec<_> = (0..120).map(|i| ctx_record(&format!("pr-{i}"), &common::code_text(i % 10, 150))).collect();
    publish(&mut con, &stream, &records);
    let mut cfg = common::learner_config(&redis.url, &stream, out.path());
    cfg.peak_lr = Some(5e-3);
    cfg.schedule_steps = Some(60);
    cfg.checkpoint_every = 20;
    let started = Instant::now();
    let summary = service::run(cfg, std::future::pending()).await.expect("the service runs");
    let (first, last) = (summary.loss_first.expect("a first loss"), summary.loss_last.expect("a last loss"));
    eprintln!(
        "{} steps, {} tokens in {:.1}s: loss {first:.3} -> {last:.3}; {:.0} tokens/s through the service \
         ({:.0} in train_step), packing {:.1}%, trainer waited {:.1}s",
        summary.steps,
        summary.tokens_trained,
        started.elapsed().as_secs_f64(),
        summary.tokens_per_second,
        summary.compute_tokens_per_second,
        summary.packing_efficiency * 100.0,
        summary.trainer_wait_seconds
    );
    assert!(summary.steps >= 20, "too few steps to judge: {}", summary.steps);
    assert!(last < first - 2.0, "the loss did not fall: {first:.3} -> {last:.3}");
    assert_eq!(summary.records.ctx, 120);
    assert_exactly_once(out.path(), &records);
}

/// `eval_fraction`: whole tasks (every rollout) and single pull requests are held out, never
/// trained, and measured; the held-out loss falls as the model learns the rest of the corpus,
/// the set comes back with a resumed run, and a resume with another fraction is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_out_tasks_are_never_trained_and_their_loss_falls_as_the_rest_trains() {
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-eval");
    let out = tempfile::tempdir().expect("tempdir");
    // 30 tasks of three rollouts each, and ten texts each published as twelve pull requests: the
    // held-out copies of a text are learnable from the trained ones.
    let mut records = Vec::new();
    for t in 0..30u64 {
        for r in 0..3u32 {
            let mut rec = env_record(&format!("ep-{t}-{r}"), t + 1, 2, ExitReason::Submitted, r == 0);
            rec.task_id = format!("acme__ini-{t}");
            rec.rollout = r;
            records.push(rec);
        }
    }
    records.extend((0..120).map(|i| ctx_record(&format!("pr-{i}"), &common::code_text(i % 10, 150))));
    publish(&mut con, &stream, &records);
    let mut cfg = common::learner_config(&redis.url, &stream, out.path());
    cfg.eval_fraction = 0.25;
    cfg.eval_every = 5;
    cfg.peak_lr = Some(5e-3);
    cfg.schedule_steps = Some(60);
    cfg.checkpoint_every = 20;
    let summary = service::run(cfg.clone(), std::future::pending()).await.expect("the service runs");

    let task_of: BTreeMap<&str, &str> = records.iter().map(|r| (r.record_id.as_str(), r.task_id.as_str())).collect();
    let lines = ledger(out.path());
    let ids = |outcome: Outcome| -> Vec<&str> {
        lines.iter().filter(|l| l.outcome == outcome).filter_map(|l| l.record_id.as_deref()).collect()
    };
    let (held, trained) = (ids(Outcome::HeldOut), ids(Outcome::Trained));
    assert_eq!(held.len() + trained.len(), records.len(), "every record is either trained or held out");
    assert_eq!(summary.records.held_out, held.len() as u64);
    assert!((20..90).contains(&held.len()), "{} of {} held out at 0.25", held.len(), records.len());
    let held_tasks: BTreeSet<&str> = held.iter().filter(|id| id.starts_with("ep-")).map(|id| task_of[id]).collect();
    let trained_tasks: BTreeSet<&str> =
        trained.iter().filter(|id| id.starts_with("ep-")).map(|id| task_of[id]).collect();
    assert!(!held_tasks.is_empty() && !trained_tasks.is_empty(), "{held_tasks:?} / {trained_tasks:?}");
    assert!(held_tasks.is_disjoint(&trained_tasks), "a task was both trained and held out");
    for task in &held_tasks {
        let rollouts = held.iter().filter(|id| task_of.get(*id) == Some(task)).count();
        assert_eq!(rollouts, 3, "{task}: every rollout of a held-out task is held out");
    }
    assert!(held.iter().any(|id| id.starts_with("pr-")), "pull requests are held out too");
    assert_eq!(common::pending(&mut con, &stream, "learner"), 0, "held-out entries are acknowledged");

    let eval = summary.eval.clone().expect("an evaluation after the last step");
    let first = summary.eval_loss_first.expect("a first evaluation");
    eprintln!("held out {} records; eval: first {first:.3}, last {}", held.len(), eval.describe());
    assert_eq!(eval.step, summary.steps, "the last evaluation measures the final weights");
    for source in [Source::EnvPass, Source::EnvFail, Source::Ctx] {
        let l = eval.by_source.get(&source).unwrap_or_else(|| panic!("no {source} loss in {eval:?}"));
        assert!(l.loss.is_finite() && l.tokens > 0, "{source}: {l:?}");
    }
    assert!(eval.loss < first - 0.5, "the held-out loss did not fall: {first:.3} -> {:.3}", eval.loss);

    // A resume with another share is refused, naming the key; with the same one, the set
    // comes from the checkpoint and is measured again after the new steps.
    let refused = service::run(LearnerConfig { eval_fraction: 0.1, ..cfg.clone() }, std::future::pending())
        .await
        .expect_err("another eval_fraction is refused")
        .to_string();
    assert!(refused.contains("eval_fraction"), "{refused}");
    let more: Vec<_> = (120..140).map(|i| ctx_record(&format!("pr-{i}"), &common::code_text(i % 10, 150))).collect();
    publish(&mut con, &stream, &more);
    let resumed = service::run(cfg, std::future::pending()).await.expect("the resumed run");
    let again = resumed.eval.expect("the resumed run evaluates");
    assert!(again.step > eval.step && again.tokens >= eval.tokens, "{again:?} after {eval:?}");
    assert_eq!(resumed.eval_loss_first, Some(first), "the first evaluation is the run's, across resumes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stop_condition_checkpoints_and_the_next_run_continues() {
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-stops");
    let out = tempfile::tempdir().expect("tempdir");
    let mut records = mixed_records("s", 60);
    publish(&mut con, &stream, &records);

    // Run 1: a tokenizer learned from a corpus file, a Hugging Face checkpoint to continue,
    // and --max-steps: it stops at that step with a checkpoint; what the packer holds waits.
    let corpus = out.path().join("corpus.jsonl");
    let lines: Vec<String> = records.iter().map(|r| serde_json::to_string(r).expect("json")).collect();
    std::fs::write(&corpus, lines.join("\n")).expect("write the corpus");
    let base = out.path().join("base-model");
    let base_config =
        agentmill_learner::model::Qwen2Config { vocab_size: 512, ..agentmill_learner::model::Qwen2Config::tiny() };
    agentmill_learner::checkpoint::init_pretrained(&base, &base_config, 3).expect("a base model");
    let run_dir = out.path().join("run");
    let mut cfg = common::learner_config(&redis.url, &stream, &run_dir);
    cfg.tokenizer_corpus = Some(corpus);
    cfg.model = Some(base);
    cfg.max_steps = Some(5);
    cfg.until_idle = None;
    let summary = service::run(cfg.clone(), std::future::pending()).await.expect("run 1");
    assert_eq!((summary.stop_reason, summary.steps), (StopReason::MaxSteps, 5));
    assert_eq!(committed_step(&run_dir), 5);
    assert!(common::pending(&mut con, &stream, "learner") > 0, "records still in the packer stay unacknowledged");

    // Run 2: no stop condition; the stream goes quiet, flush_after_idle trains and acknowledges
    // what is held, and a shutdown (SIGTERM in the binary) then stops it.
    cfg.max_steps = None;
    cfg.flush_after_idle = Some(Duration::from_millis(500));
    let (url, s) = (redis.url.clone(), stream.clone());
    let all_acknowledged = async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (url, s) = (url.clone(), s.clone());
            let left = tokio::task::spawn_blocking(move || {
                let mut con = redis::Client::open(url.as_str()).and_then(|c| c.get_connection()).expect("connect");
                common::unacknowledged(&mut con, &s, "learner")
            })
            .await
            .expect("poll");
            if left == 0 {
                break;
            }
        }
    };
    let summary = service::run(cfg.clone(), all_acknowledged).await.expect("run 2");
    assert_eq!(summary.stop_reason, StopReason::Shutdown);
    assert!(summary.steps > 5 && summary.steps_this_process > 0, "{summary:?}");
    assert_exactly_once(&run_dir, &records);

    // Run 3: more records; until_idle stops it after a final checkpoint.
    let more = mixed_records("t", 15);
    publish(&mut con, &stream, &more);
    records.extend(more);
    cfg.until_idle = Some(Duration::from_millis(1000));
    cfg.flush_after_idle = None;
    let summary = service::run(cfg, std::future::pending()).await.expect("run 3");
    assert_eq!(summary.stop_reason, StopReason::UntilIdle);
    assert_exactly_once(&run_dir, &records);
    assert_eq!(common::unacknowledged(&mut con, &stream, "learner"), 0);
    assert_eq!(summary.loss_first.is_some(), summary.loss_last.is_some());
    let tokenizer = std::fs::read_to_string(run_dir.join("tokenizer.json")).expect("the run's tokenizer");
    assert!(tokenizer.contains("<|im_end|>"), "the learned tokenizer carries the ChatML tokens");
}

/// Redis loses the stream and with it the consumer group while the learner runs (a restart
/// without persistence, or the key deleted): the learner creates the group again and trains
/// what is published after, without a restart; records it trained before and that come again
/// are skipped as duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_consumer_group_is_recreated_and_training_goes_on() {
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-lost-group");
    let out = tempfile::tempdir().expect("tempdir");
    let before = mixed_records("a", 20);
    publish(&mut con, &stream, &before);
    let mut cfg = common::learner_config(&redis.url, &stream, out.path());
    cfg.tokenizer_bootstrap_records = 10;
    cfg.flush_after_idle = Some(Duration::from_millis(300));
    cfg.until_idle = Some(Duration::from_secs(4));
    let service = tokio::spawn(service::run(cfg, std::future::pending()));

    // Once everything published so far is trained and acknowledged, the data is lost.
    let deadline = Instant::now() + Duration::from_secs(120);
    while common::unacknowledged(&mut con, &stream, "learner") > 0 {
        assert!(Instant::now() < deadline, "the first records were never acknowledged");
        assert!(!service.is_finished(), "the learner stopped before the data was lost");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _: u64 = redis::cmd("DEL").arg(&stream).query(&mut con).expect("DEL");
    // New records, and three of the trained ones published again (a worker's retry).
    let after = mixed_records("b", 14);
    publish(&mut con, &stream, &after);
    publish(&mut con, &stream, &before[..3]);

    let summary = tokio::time::timeout(Duration::from_secs(120), service)
        .await
        .expect("the learner kept reading after the group was lost (a NOGROUP loop never goes idle)")
        .expect("join")
        .expect("the service runs");
    assert_eq!(summary.stop_reason, StopReason::UntilIdle);
    assert_eq!(summary.records.deduped, 3, "{:?}", summary.records);
    let all: Vec<TrajectoryRecord> = before.iter().chain(&after).cloned().collect();
    assert_exactly_once(out.path(), &all);
    // The new group holds the new entries, all acknowledged.
    assert_eq!(common::unacknowledged(&mut con, &stream, "learner"), 0);
    let length: u64 = redis::cmd("XLEN").arg(&stream).query(&mut con).expect("XLEN");
    assert_eq!(length, 17);
}

/// The real binary, with a test's arguments and environment (`env` last, so it overrides).
fn learner(out: &Path, redis_url: &str, stream: &str, metrics_port: u16, env: &[(&str, &str)]) -> Child {
    learner_command(out, redis_url, stream, metrics_port, env).spawn().expect("start agentmill-learner")
}

fn learner_command(out: &Path, redis_url: &str, stream: &str, metrics_port: u16, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentmill-learner"));
    cmd
        .arg("train")
        .args(["--redis-url", redis_url, "--stream", stream, "--group", "learner", "--consumer", "kill-test"])
        .arg("--output-dir")
        .arg(out)
        .args(["--device", "cpu", "--threads", "1", "--seq-len", "128", "--micro-batch-rows", "2", "--grad-accum", "2"])
        .args(["--checkpoint-every", "3", "--keep-checkpoints", "3", "--tokenizer-vocab", "400", "--log-every", "10"])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}"), "--until-idle", "2"])
        .env("AGENTMILL_LEARNER_TOKENIZER_BOOTSTRAP_RECORDS", "40")
        .env("AGENTMILL_LEARNER_FLUSH_AFTER_IDLE", "30s")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Exactly once must survive a host crash, not only a SIGKILL: every file of a checkpoint and
/// its folder are synced to disk before any stream entry it holds is acknowledged. Traced with
/// strace (fsync and the XACK written to Redis, in the order the kernel saw them): before the
/// fix no checkpoint file was ever synced.
#[test]
fn checkpoints_reach_the_disk_before_their_entries_are_acknowledged() {
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-fsync");
    let out = tempfile::tempdir().expect("tempdir");
    // Records that all train, so every acknowledgement follows a checkpoint.
    let records: Vec<TrajectoryRecord> = mixed_records("f", 80).into_iter().filter(|r| r.is_trainable()).collect();
    publish(&mut con, &stream, &records);
    let trace = out.path().join("strace.txt");
    let inner = learner_command(out.path(), &redis.url, &stream, free_port(), &[]);
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-y", "-s", "256", "-e", "trace=fsync,fdatasync,write,writev,sendto,sendmsg", "-o"])
        .arg(&trace)
        .arg("--")
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let output = cmd.output().expect("strace (deploy/setup.sh installs it)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(&trace).expect("the trace");
    let mut synced_state = false;
    let mut synced_dir = false;
    let (mut acks, mut checkpoint_syncs) = (0, 0);
    for line in text.lines() {
        let fsync = line.contains("fsync(") || line.contains("fdatasync(");
        if fsync && line.contains(&format!("/{TRAINER_STATE_FILE}>")) {
            synced_state = true;
            checkpoint_syncs += 1;
        }
        if fsync && line.contains("/checkpoints/step-") && line.contains(">)") && !line.contains(".json>") && !line.contains(".safetensors>") && !line.contains(".jsonl>") && !line.contains(".zst>") {
            synced_dir = true;
        }
        if !fsync && line.contains("XACK") {
            acks += 1;
            assert!(synced_state && synced_dir, "an XACK went to Redis before any checkpoint was synced to disk:\n{line}");
        }
    }
    assert!(acks > 0 && checkpoint_syncs > 0, "the run acknowledged {acks} times and synced {checkpoint_syncs} checkpoints");
    assert_exactly_once(out.path(), &records);
}

fn committed_step(out: &Path) -> u64 {
    position::latest_checkpoint(out).ok().flatten().map(|(s, _)| s).unwrap_or(0)
}

fn output_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut text);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut text);
    }
    text
}

#[test]
fn exactly_once_across_sigkills_and_resumes() {
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-kill");
    let out = tempfile::tempdir().expect("tempdir");
    let records = mixed_records("r", 190);
    let (first, second) = records.split_at(140);
    publish(&mut con, &stream, first);

    // Run 1: kill -9 once a few checkpoints have committed, mid-run.
    let mut child = learner(out.path(), &redis.url, &stream, free_port(), &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_step(out.path()) < 9 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the learner exited ({status}) before the kill:\n{}", output_of(&mut child));
        }
        assert!(Instant::now() < deadline, "no checkpoint within 120 s:\n{}", output_of(&mut child));
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let killed_at = committed_step(out.path());
    assert!(!out.path().join(SUMMARY_FILE).exists(), "the first run finished before the kill; the test proves nothing");
    assert!(common::pending(&mut con, &stream, "learner") > 0, "the killed run left entries unacknowledged");

    // More records arrive while it is down, some of them published a second time.
    publish(&mut con, &stream, second);
    let republished: Vec<TrajectoryRecord> = [3usize, 50, 150].iter().map(|&i| records[i].clone()).collect();
    publish(&mut con, &stream, &republished);

    // Run 2: resumes; killed the moment the data files of its next checkpoint appear, before
    // the trainer commits it (a torn checkpoint directory), with steps queued ahead.
    let resumed_from = committed_step(out.path());
    let mut child = learner(out.path(), &redis.url, &stream, free_port(), &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let torn = loop {
        let dirs = position::list_checkpoints(out.path()).expect("list checkpoints");
        if dirs.iter().any(|(step, _, committed)| *step > resumed_from && !committed) {
            child.kill().expect("SIGKILL");
            break true;
        }
        if dirs.iter().any(|(step, _, committed)| *step > resumed_from + 6 && *committed) {
            // It committed before a torn moment was seen: kill it anyway.
            child.kill().expect("SIGKILL");
            break false;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the learner exited ({status}) before the second kill:\n{}", output_of(&mut child));
        }
        assert!(Instant::now() < deadline, "no checkpoint within 120 s:\n{}", output_of(&mut child));
    };
    let _ = child.wait();
    assert!(!out.path().join(SUMMARY_FILE).exists(), "the second run finished before the kill");

    // Run 3: resumes again, now trading compute for memory (a resumed run may change how),
    // and runs until the stream is idle.
    let port = free_port();
    let memory = [
        ("AGENTMILL_LEARNER_ACTIVATION_CHECKPOINTING", "true"),
        ("AGENTMILL_LEARNER_LOSS_CHUNK_TOKENS", "96"),
        ("RUST_LOG", "warn,agentmill_learner::service::train_loop=info"),
    ];
    let mut child = learner(out.path(), &redis.url, &stream, port, &memory);
    let mut metrics = None;
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        // The last answer before the process stops shows every family in use.
        if let Some(m) = scrape(port) {
            metrics = Some(m);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the resumed learner did not stop:\n{}", output_of(&mut child));
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = output_of(&mut child);
    assert!(status.success(), "the resumed learner failed ({status}):\n{log}");
    assert!(log.contains("stopped (UntilIdle)"), "{log}");
    assert!(log.contains("activation_checkpointing=true loss_chunk_tokens=96"), "the memory plan reached the trainer:\n{log}");

    let summary: RunSummary =
        serde_json::from_str(&std::fs::read_to_string(out.path().join(SUMMARY_FILE)).expect("summary.json"))
            .expect("parses");
    assert!(summary.steps > summary.steps_this_process, "the last run resumed: {summary:?}");
    assert!(summary.steps_this_process > 0);
    assert_exactly_once(out.path(), &records);
    assert_eq!(common::pending(&mut con, &stream, "learner"), 0, "every entry is acknowledged at the end");
    let r = &summary.records;
    let trainable = records.iter().filter(|r| r.is_trainable()).count() as u64;
    assert_eq!(r.ctx + r.env, trainable, "{r:?}");
    assert_eq!(r.skipped_infra, records.iter().filter(|r| !r.is_trainable()).count() as u64);
    // The episodes' token ids come from another vocabulary: each turn is counted, none is used.
    let t = summary.recorded_turns;
    assert!(t.out_of_vocab > 0 && t.total() == t.out_of_vocab, "{t:?}");

    let metrics = metrics.expect("the resumed learner served /metrics");
    for name in [
        "agentmill_learner_step",
        "agentmill_learner_stream_lag",
        "agentmill_learner_records_total",
        "agentmill_learner_packing_efficiency",
        "agentmill_learner_loss",
        "agentmill_learner_loss_by_source{source=\"ctx\"}",
        "agentmill_learner_recorded_turns_total{outcome=\"out_of_vocab\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }
    eprintln!(
        "killed after checkpoint {killed_at}, then at a {} checkpoint after {resumed_from}; finished at step {} ({:?})",
        if torn { "half-written" } else { "committed" },
        summary.steps,
        summary.records
    );
}
