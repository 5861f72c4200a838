//! The learner's status report in Redis (`<stream>:learner`): written repeatedly while the
//! service trains, and at the end holding the run's final figures — the same ones as
//! `summary.json` — across a resume.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentmill_learner::service::{self, RunSummary, StopReason};
use agentmill_proto::ExitReason;
use agentmill_proto::stream::{LEARNER_STATUS_TTL_SECS, LearnerStatus, learner_status_key, read_learner_status};
use agentmill_testkit::{TestRedis, unique};
use common::{ctx_record, env_record, publish};
use tokio::sync::oneshot;

/// Reads the report every 50 ms until told to stop, and once more then; returns every distinct
/// report seen.
fn watch(redis_url: &str, stream: &str) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Vec<LearnerStatus>>) {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let (url, stream) = (redis_url.to_string(), stream.to_string());
    let task = tokio::spawn(async move {
        let client = redis::Client::open(url.as_str()).expect("a redis url");
        let mut con = client.get_multiplexed_async_connection().await.expect("connect to the test redis");
        let mut seen: Vec<LearnerStatus> = Vec::new();
        let mut done = false;
        loop {
            if let Some(s) = read_learner_status(&mut con, &stream).await.expect("GET the report")
                && seen.last() != Some(&s)
            {
                seen.push(s);
            }
            // One more read after the stop: the run's final report.
            if done {
                return seen;
            }
            done = tokio::select! {
                _ = &mut stopped => true,
                _ = tokio::time::sleep(Duration::from_millis(50)) => false,
            };
        }
    });
    (stop, task)
}

/// Checks the report left in Redis against the run's summary.
fn assert_final_report(con: &mut redis::Connection, stream: &str, summary: &RunSummary) -> LearnerStatus {
    let key = learner_status_key(stream);
    let raw: String = redis::cmd("GET").arg(&key).query(con).expect("GET the report");
    let status: LearnerStatus = serde_json::from_str(&raw).expect("the report is a LearnerStatus");
    assert_eq!(status.step, summary.steps, "{status:?}");
    assert_eq!(status.tokens_trained, summary.tokens_trained, "{status:?}");
    let loss_last = summary.loss_last.expect("a last loss");
    assert!((status.loss - loss_last).abs() < 1e-9, "report {} vs summary {loss_last}", status.loss);
    let r = &summary.records;
    let want: BTreeMap<String, u64> =
        [("ctx", r.ctx), ("env_fail", r.env_fail), ("env_pass", r.env_pass)].map(|(k, n)| (k.to_string(), n)).into();
    assert_eq!(status.records_by_kind, want);
    assert!((status.packing_efficiency - summary.packing_efficiency).abs() < 1e-9, "{status:?}");
    assert_eq!(status.device, summary.device);
    assert_eq!(status.mfu, 0.0, "no MFU on the CPU");
    assert!(status.lr > 0.0 && status.grad_norm > 0.0 && status.tokens_per_s >= 0.0, "{status:?}");
    assert!(status.learner_id.ends_with(&format!(":{}", std::process::id())), "{}", status.learner_id);
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(con).expect("TTL");
    assert!(ttl > 0 && ttl <= LEARNER_STATUS_TTL_SECS as i64, "TTL {ttl}");
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as i64;
    assert!((now_ms - status.updated_unix_ms).abs() < 30_000, "updated {} ms ago", now_ms - status.updated_unix_ms);
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_learner_reports_its_status_while_it_trains_and_its_final_figures_at_the_end() {
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-status");
    let out = tempfile::tempdir().expect("tempdir");
    let mut records = Vec::new();
    for i in 0..8 {
        records.push(ctx_record(&format!("ctx-{i}"), &common::code_text(i, 80 + 15 * i as usize)));
    }
    for i in 0..3 {
        records.push(env_record(&format!("pass-{i}"), 10 + i, 2, ExitReason::Submitted, true));
        records.push(env_record(&format!("fail-{i}"), 20 + i, 3, ExitReason::MaxSteps, false));
    }
    records.push(env_record("infra-0", 30, 1, ExitReason::SandboxError, false));
    publish(&mut con, &stream, &records);

    let mut cfg = common::learner_config(&redis.url, &stream, out.path());
    cfg.status_interval = Duration::from_millis(200);
    let (stop, watcher) = watch(&redis.url, &stream);
    let summary = service::run(cfg.clone(), std::future::pending()).await.expect("the service runs");
    let _ = stop.send(());
    let seen = watcher.await.expect("the watcher");

    assert_eq!(summary.stop_reason, StopReason::UntilIdle);
    assert!(summary.steps > 0, "{summary:?}");
    let r = &summary.records;
    assert_eq!((r.ctx, r.env_pass, r.env_fail), (8, 3, 3), "{r:?}");
    let first = assert_final_report(&mut con, &stream, &summary);
    // Reported again and again while it ran (every 200 ms through at least the 1.5 s idle wait),
    // never going backwards.
    assert!(seen.len() >= 3, "only {} distinct reports seen: {seen:?}", seen.len());
    for pair in seen.windows(2) {
        assert!(pair[1].step >= pair[0].step && pair[1].tokens_trained >= pair[0].tokens_trained, "{pair:?}");
        assert!(pair[1].updated_unix_ms >= pair[0].updated_unix_ms, "{pair:?}");
    }
    assert_eq!(seen.last(), Some(&first), "the last report is the final one");

    // A resumed run reports the counts across both runs, from its first report on.
    let more: Vec<_> =
        (0..6).map(|i| ctx_record(&format!("more-{i}"), &common::code_text(100 + i, 90 + 10 * i as usize))).collect();
    publish(&mut con, &stream, &more);
    let (stop, watcher) = watch(&redis.url, &stream);
    let resumed = service::run(cfg, std::future::pending()).await.expect("the resumed service runs");
    let _ = stop.send(());
    let seen = watcher.await.expect("the watcher");
    assert!(resumed.steps > summary.steps && resumed.steps_this_process < resumed.steps, "{resumed:?}");
    assert!(resumed.tokens_trained > resumed.tokens_this_process, "{resumed:?}");
    let last = assert_final_report(&mut con, &stream, &resumed);
    assert_eq!(last.records_by_kind.get("ctx"), Some(&14));
    let after_resume: Vec<_> = seen.iter().filter(|s| s.updated_unix_ms > first.updated_unix_ms).collect();
    assert!(!after_resume.is_empty(), "the resumed run reported");
    for s in after_resume {
        assert!(
            s.step >= summary.steps && s.tokens_trained >= summary.tokens_trained,
            "a report lost the resume: {s:?}"
        );
        assert!(s.records_by_kind.get("ctx").is_some_and(|&n| n >= 8), "{s:?}");
    }
}
