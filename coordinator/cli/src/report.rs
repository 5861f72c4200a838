//! What scripts need beyond single RPCs: overriding fields of submitted rows, waiting for a set
//! of tasks to finish (with progress), and the end-of-run report the quickstart prints.
//!
//! ```text
//! agentmill submit --rollouts 3 --policy replay deploy/tasks/tasks.jsonl
//! agentmill wait --timeout 10m                # a progress bar until every task is finished
//! agentmill report --learner runs/learner     # tasks by resolution, records by kind, loss, throughput
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentmill_proto::v1::{self, TaskKind, TaskState};
use anyhow::{Context, bail};
use serde::Serialize;

use agentmill_proto::connect::Client;

/// Fields set on every row of a submission, over what the file says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowOverrides {
    /// Rollouts per task.
    pub rollouts: Option<u32>,
    /// The policy that drives the episodes ("replay" or an endpoint's name).
    pub policy: Option<String>,
    /// Labels added to each task (a row's own label of the same key is replaced).
    pub labels: BTreeMap<String, String>,
    /// Worker labels each task requires (merged into the row's `worker_selector`).
    pub worker_selector: BTreeMap<String, String>,
}

impl RowOverrides {
    /// True when nothing is overridden (rows are sent exactly as read).
    pub fn is_empty(&self) -> bool {
        self == &RowOverrides::default()
    }

    /// The row with the overrides applied. A row that is not a JSON object is returned as it
    /// is, so that the coordinator refuses it with its usual row-by-row message.
    pub fn apply(&self, row: &str) -> String {
        if self.is_empty() {
            return row.to_string();
        }
        let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_str::<serde_json::Value>(row) else {
            return row.to_string();
        };
        if let Some(n) = self.rollouts {
            obj.insert("rollouts".into(), n.into());
        }
        if let Some(p) = &self.policy {
            obj.insert("policy".into(), p.clone().into());
        }
        for (field, pairs) in [("labels", &self.labels), ("worker_selector", &self.worker_selector)] {
            if pairs.is_empty() {
                continue;
            }
            let entry = obj.entry(field).or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let Some(map) = entry.as_object_mut() {
                for (k, v) in pairs {
                    map.insert(k.clone(), v.clone().into());
                }
            } else if let Some(items) = entry.as_array_mut() {
                // The list form (["bug", "team=infra"]): an item of the same key is replaced.
                items.retain(|item| item.as_str().is_none_or(|s| !pairs.contains_key(s.split_once('=').map_or(s, |(k, _)| k))));
                items.extend(pairs.iter().map(|(k, v)| serde_json::Value::String(format!("{k}={v}"))));
            }
            // Anything else is left for the coordinator to name.
        }
        serde_json::Value::Object(obj).to_string()
    }
}

/// Parses `key=value` pairs (for `--label` / `--selector`).
pub fn parse_pairs(flag: &str, pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{flag} {l:?}: write key=value"),
        })
        .collect()
}

/// The cluster's counts and rates (`ClusterStats`).
pub async fn cluster_stats(client: &mut Client) -> anyhow::Result<v1::ClusterStatsResponse> {
    Ok(client.cluster_stats(v1::ClusterStatsRequest {}).await.map_err(|s| anyhow::anyhow!("ClusterStats: {}: {}", s.code(), s.message()))?.into_inner())
}

/// What a [`Report`] is built from: every task carrying `labels`, and the cluster's stats.
pub async fn tasks_and_stats(client: &mut Client, labels: &BTreeMap<String, String>) -> anyhow::Result<(Vec<v1::TaskStatus>, v1::ClusterStatsResponse)> {
    let tasks = list_all(client, labels).await?;
    Ok((tasks, cluster_stats(client).await?))
}

/// Counts as the report shows them: `FULL 16, NO 2` (keys in order; empty when none).
pub fn counts(m: &BTreeMap<String, u64>) -> String {
    m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

/// True for an episode task, false for a synthesis shard (a report counts them apart).
pub fn is_episode(t: &v1::TaskStatus) -> bool {
    t.task.as_ref().is_none_or(|s| s.kind != TaskKind::Synth as i32)
}

/// Every task the coordinator holds, oldest first (all pages).
pub async fn list_all(client: &mut Client, labels: &BTreeMap<String, String>) -> anyhow::Result<Vec<v1::TaskStatus>> {
    list(client, &[], labels, usize::MAX).await
}

/// Up to `limit` tasks in `states` (empty: any) carrying `labels`, oldest first, following pages.
pub async fn list(client: &mut Client, states: &[i32], labels: &BTreeMap<String, String>, limit: usize) -> anyhow::Result<Vec<v1::TaskStatus>> {
    let mut out = Vec::new();
    let mut token = String::new();
    while out.len() < limit {
        let resp = client
            .list_tasks(v1::ListTasksRequest {
                states: states.to_vec(),
                labels: labels.clone().into_iter().collect(),
                page_size: (limit - out.len()).min(1000) as u32,
                page_token: token,
            })
            .await
            .map_err(|s| anyhow::anyhow!("ListTasks: {}: {}", s.code(), s.message()))?
            .into_inner();
        out.extend(resp.tasks);
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
    }
    Ok(out)
}

/// True for done, failed and cancelled.
pub fn is_finished(state: i32) -> bool {
    matches!(TaskState::try_from(state), Ok(TaskState::Done | TaskState::Failed | TaskState::Cancelled))
}

/// How far a set of tasks has come.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Tasks in the set.
    pub tasks: u64,
    /// Of those, finished.
    pub tasks_finished: u64,
    /// Rollouts in the set.
    pub rollouts: u64,
    /// Of those, finished.
    pub rollouts_finished: u64,
}

impl Progress {
    /// Counts over a task listing.
    pub fn of(tasks: &[v1::TaskStatus]) -> Progress {
        let mut p = Progress { tasks: tasks.len() as u64, ..Progress::default() };
        for t in tasks {
            p.tasks_finished += u64::from(is_finished(t.state));
            p.rollouts += t.rollouts.len() as u64;
            p.rollouts_finished += t.rollouts.iter().filter(|r| is_finished(r.state)).count() as u64;
        }
        p
    }

    /// Every task finished (and there is at least one).
    pub fn complete(&self) -> bool {
        self.tasks > 0 && self.tasks_finished == self.tasks
    }
}

/// Polls until every task carrying `labels` is finished, calling `tick` after each poll.
/// Fails after `timeout` naming what is still open.
pub async fn wait_finished(client: &mut Client, labels: &BTreeMap<String, String>, poll: Duration, timeout: Duration, mut tick: impl FnMut(&Progress, &v1::ClusterStatsResponse)) -> anyhow::Result<Vec<v1::TaskStatus>> {
    let start = Instant::now();
    loop {
        let (tasks, stats) = tasks_and_stats(client, labels).await?;
        let p = Progress::of(&tasks);
        tick(&p, &stats);
        if p.complete() {
            return Ok(tasks);
        }
        if start.elapsed() >= timeout {
            let open: Vec<String> = tasks
                .iter()
                .filter(|t| !is_finished(t.state))
                .take(10)
                .map(|t| format!("{} ({})", t.task.as_ref().map(|s| s.instance_id.as_str()).unwrap_or("?"), TaskState::try_from(t.state).map(|s| s.name().to_string()).unwrap_or_default()))
                .collect();
            bail!(
                "{} of {} tasks still open after {}: {}{} (see `agentmill list --state queued,leased,running` and the worker's log)",
                p.tasks - p.tasks_finished,
                p.tasks,
                humantime::format_duration(timeout),
                open.join(", "),
                if p.tasks - p.tasks_finished > 10 { ", …" } else { "" }
            );
        }
        tokio::time::sleep(poll).await;
    }
}

/// The end-of-run report: what the cluster did with the tasks and what the learner made of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Episode tasks (kind episode).
    pub episode_tasks: u64,
    /// Tasks whose every rollout resolved the issue.
    pub tasks_resolved: u64,
    /// Tasks with a resolved rollout but not all.
    pub tasks_partly_resolved: u64,
    /// Tasks with no resolved rollout.
    pub tasks_unresolved: u64,
    /// Episode task ids that did not resolve in every rollout.
    pub unresolved_ids: Vec<String>,
    /// Tasks by state (every kind).
    pub tasks_by_state: BTreeMap<String, u64>,
    /// Finished episode rollouts by SWE-bench resolution (FULL, PARTIAL, NO, UNSPECIFIED).
    pub rollouts_by_resolution: BTreeMap<String, u64>,
    /// Finished episode rollouts by exit reason.
    pub rollouts_by_exit: BTreeMap<String, u64>,
    /// Synthesis shards, and the ctx records they published.
    pub synth_shards: u64,
    /// ctx records the synthesis shards reported publishing.
    pub synth_records: u64,
    /// Mean episode wall time (ms) over finished episode rollouts.
    pub mean_episode_ms: f64,
    /// Finished episode rollouts.
    pub episodes: u64,
    /// Seconds from the first submission to the last finished task.
    pub span_s: f64,
    /// Episodes per second over that span.
    pub episodes_per_s: f64,
    /// Records in the trajectory stream.
    pub stream_length: u64,
    /// The learner's `summary.json`, when given.
    pub learner: Option<LearnerReport>,
}

/// The figures of the learner's `summary.json` the report shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LearnerReport {
    /// Why the learner stopped.
    pub stop_reason: String,
    /// Optimizer steps.
    pub steps: u64,
    /// Tokens trained.
    pub tokens_trained: u64,
    /// Trained records by kind: env_pass, env_fail, ctx.
    pub records: BTreeMap<String, u64>,
    /// Loss of the first step.
    pub loss_first: Option<f64>,
    /// Loss of the last step.
    pub loss_last: Option<f64>,
    /// Tokens per second of the training loop.
    pub tokens_per_second: f64,
    /// Packing efficiency.
    pub packing_efficiency: f64,
    /// MFU (GPU only).
    pub mfu: Option<f64>,
    /// Device.
    pub device: String,
    /// The newest checkpoint.
    pub checkpoint: Option<PathBuf>,
    /// Records held out for evaluation.
    pub held_out: u64,
    /// Held-out loss at the first and the last evaluation.
    pub eval_loss: Option<(f64, f64)>,
    /// Target tokens the last evaluation measured.
    pub eval_tokens: u64,
    /// Assistant turns with the policy's token ids, by how the learner's tokens of their text
    /// compared (`match`, `drift`, `other_text`, `out_of_vocab`, `unmapped`, `misaligned`; empty when none
    /// carried them).
    pub recorded_turns: BTreeMap<String, u64>,
}

impl LearnerReport {
    /// Reads `summary.json` from a learner output directory (or the file itself).
    pub fn read(path: &Path) -> anyhow::Result<LearnerReport> {
        let file = if path.is_dir() { path.join("summary.json") } else { path.to_path_buf() };
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading the learner summary {} (did the learner finish?)", file.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
        let u = |p: &str| v.pointer(p).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let f = |p: &str| v.pointer(p).and_then(serde_json::Value::as_f64);
        let records = ["env_pass", "env_fail", "ctx"].iter().map(|k| (k.to_string(), u(&format!("/records/{k}")))).collect();
        Ok(LearnerReport {
            stop_reason: v.pointer("/stop_reason").map(|s| s.as_str().map(str::to_string).unwrap_or_else(|| s.to_string())).unwrap_or_default(),
            steps: u("/steps"),
            tokens_trained: u("/tokens_trained"),
            records,
            loss_first: f("/loss_first"),
            loss_last: f("/loss_last"),
            tokens_per_second: f("/tokens_per_second").unwrap_or(0.0),
            packing_efficiency: f("/packing_efficiency").unwrap_or(0.0),
            mfu: f("/mfu"),
            device: v.pointer("/device").and_then(serde_json::Value::as_str).unwrap_or_default().to_string(),
            checkpoint: v.pointer("/checkpoint").and_then(serde_json::Value::as_str).map(PathBuf::from),
            held_out: u("/records/held_out"),
            eval_loss: f("/eval/loss").map(|last| (f("/eval_loss_first").unwrap_or(last), last)),
            eval_tokens: u("/eval/tokens"),
            recorded_turns: ["match", "drift", "other_text", "out_of_vocab", "unmapped", "misaligned"]
                .iter()
                .map(|k| (k.to_string(), u(&format!("/recorded_turns/{k}"))))
                .filter(|(_, n)| *n > 0)
                .collect(),
        })
    }
}

impl Report {
    /// Builds the report from a task listing and the cluster's stats.
    pub fn build(tasks: &[v1::TaskStatus], stats: &v1::ClusterStatsResponse, learner: Option<LearnerReport>) -> Report {
        let mut r = Report {
            stream_length: stats.stream_length,
            learner,
            ..Report::default()
        };
        let mut episode_ms = (0u64, 0u64);
        let first = tasks.iter().map(|t| t.submitted_at_unix_ms).filter(|ms| *ms > 0).min().unwrap_or(0);
        let last = tasks.iter().filter(|t| is_finished(t.state)).map(|t| t.updated_at_unix_ms).max().unwrap_or(0);
        r.span_s = (last - first).max(0) as f64 / 1000.0;
        for t in tasks {
            *r.tasks_by_state.entry(TaskState::try_from(t.state).map(|s| s.name().to_string()).unwrap_or_default()).or_default() += 1;
            let spec = t.task.as_ref();
            if !is_episode(t) {
                r.synth_shards += 1;
                r.synth_records += t.rollouts.iter().filter_map(|ro| ro.result.as_ref()).map(|res| res.records_published).sum::<u64>();
                continue;
            }
            r.episode_tasks += 1;
            let mut resolved = 0;
            for ro in &t.rollouts {
                let Some(res) = &ro.result else { continue };
                let resolution = v1::Resolution::try_from(res.resolution).unwrap_or_default().name().to_string();
                *r.rollouts_by_resolution.entry(resolution).or_default() += 1;
                let exit = v1::ExitReason::try_from(res.exit_reason).unwrap_or_default().name().to_string();
                *r.rollouts_by_exit.entry(exit).or_default() += 1;
                resolved += usize::from(res.resolved);
                r.episodes += 1;
                if let Some(timing) = &res.timing {
                    episode_ms.0 += timing.total_ms;
                    episode_ms.1 += 1;
                }
            }
            if resolved == t.rollouts.len() && resolved > 0 {
                r.tasks_resolved += 1;
            } else {
                if resolved > 0 {
                    r.tasks_partly_resolved += 1;
                } else {
                    r.tasks_unresolved += 1;
                }
                r.unresolved_ids.push(spec.map(|s| s.instance_id.clone()).unwrap_or_default());
            }
        }
        if r.span_s > 0.0 {
            r.episodes_per_s = r.episodes as f64 / r.span_s;
        }
        if episode_ms.1 > 0 {
            r.mean_episode_ms = episode_ms.0 as f64 / episode_ms.1 as f64;
        }
        r
    }

    /// The report for people.
    pub fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "tasks      {} episode tasks: {} resolved in every rollout, {} in some, {} in none", self.episode_tasks, self.tasks_resolved, self.tasks_partly_resolved, self.tasks_unresolved)?;
        if !self.unresolved_ids.is_empty() {
            writeln!(out, "           not resolved everywhere: {}", self.unresolved_ids.join(", "))?;
        }
        writeln!(out, "rollouts   by resolution: {}", counts(&self.rollouts_by_resolution))?;
        writeln!(out, "           by exit: {}", counts(&self.rollouts_by_exit))?;
        writeln!(out, "           {} episodes in {:.0} s from submission to the last result ({:.1} episodes/min; mean episode {:.1} s)", self.episodes, self.span_s, self.episodes_per_s * 60.0, self.mean_episode_ms / 1000.0)?;
        writeln!(out, "synthesis  {} shard(s), {} ctx records published", self.synth_shards, self.synth_records)?;
        writeln!(out, "states     {}", counts(&self.tasks_by_state))?;
        writeln!(out, "stream     {} records", self.stream_length)?;
        self.print_learner(out)
    }

    /// The learner's lines of the report.
    pub fn print_learner(&self, out: &mut impl Write) -> std::io::Result<()> {
        match &self.learner {
            Some(l) => {
                let loss = |l: Option<f64>| l.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
                writeln!(out, "learner    {} steps on {}, {} tokens trained ({:.0} tokens/s, packing {:.1}%{}), stopped: {}", l.steps, l.device, l.tokens_trained, l.tokens_per_second, l.packing_efficiency * 100.0, l.mfu.map(|m| format!(", MFU {:.1}%", m * 100.0)).unwrap_or_default(), l.stop_reason)?;
                writeln!(out, "           records trained: {}", counts(&l.records))?;
                writeln!(out, "           loss {} → {}", loss(l.loss_first), loss(l.loss_last))?;
                if let Some((first, last)) = l.eval_loss {
                    writeln!(out, "           held-out loss {first:.3} → {last:.3} ({} records held out, {} tokens measured)", l.held_out, l.eval_tokens)?;
                }
                if !l.recorded_turns.is_empty() {
                    let n: u64 = l.recorded_turns.values().sum();
                    writeln!(out, "           policy tokens on {n} assistant turns, against the learner's tokens: {}", counts(&l.recorded_turns))?;
                }
                if let Some(c) = &l.checkpoint {
                    writeln!(out, "           checkpoint {}", c.display())?;
                }
            }
            None => writeln!(out, "learner    (no summary given: --learner DIR)")?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_set_fields_and_merge_labels() {
        let o = RowOverrides {
            rollouts: Some(3),
            policy: Some("replay".into()),
            labels: BTreeMap::from([("run".into(), "q1".into())]),
            worker_selector: BTreeMap::from([("pool".into(), "a".into())]),
        };
        let row = o.apply(r#"{"instance_id":"x__y-1","rollouts":1,"labels":{"team":"t"}}"#);
        let v: serde_json::Value = serde_json::from_str(&row).expect("json");
        assert_eq!(v["rollouts"], 3);
        assert_eq!(v["policy"], "replay");
        assert_eq!(v["labels"], serde_json::json!({"team": "t", "run": "q1"}));
        assert_eq!(v["worker_selector"], serde_json::json!({"pool": "a"}));
        // The list form of labels (as the bundled tasks write them) gets the label too.
        let row = o.apply(r#"{"instance_id":"x__y-1","labels":["bug","run=old"]}"#);
        let v: serde_json::Value = serde_json::from_str(&row).expect("json");
        assert_eq!(v["labels"], serde_json::json!(["bug", "run=q1"]));
        // Not an object: left for the coordinator to refuse with its own message.
        assert_eq!(o.apply("[1,2]"), "[1,2]");
        assert_eq!(RowOverrides::default().apply(r#"{"a": 1}"#), r#"{"a": 1}"#);
    }

    #[test]
    fn pairs_need_a_key() {
        assert_eq!(parse_pairs("--label", &["a=b".into(), "c=".into()]).expect("ok"), BTreeMap::from([("a".into(), "b".into()), ("c".into(), String::new())]));
        let e = parse_pairs("--label", &["=b".into()]).expect_err("no key").to_string();
        assert!(e.contains("--label \"=b\": write key=value"), "{e}");
    }

    fn rollout(resolved: bool, resolution: v1::Resolution, ms: u64) -> v1::RolloutStatus {
        v1::RolloutStatus {
            state: TaskState::Done as i32,
            result: Some(v1::EpisodeResult {
                resolved,
                resolution: resolution as i32,
                exit_reason: v1::ExitReason::Submitted as i32,
                timing: Some(v1::Timing { total_ms: ms, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn report_counts_tasks_by_resolution() {
        let task = |id: &str, kind: TaskKind, rollouts: Vec<v1::RolloutStatus>| v1::TaskStatus {
            task: Some(v1::TaskSpec { instance_id: id.into(), kind: kind as i32, ..Default::default() }),
            state: TaskState::Done as i32,
            rollouts,
            submitted_at_unix_ms: 1_000,
            updated_at_unix_ms: 11_000,
        };
        let mut synth = rollout(false, v1::Resolution::Unspecified, 0);
        if let Some(r) = synth.result.as_mut() {
            r.records_published = 7;
        }
        let tasks = vec![
            task("a", TaskKind::Episode, vec![rollout(true, v1::Resolution::Full, 1000), rollout(true, v1::Resolution::Full, 3000)]),
            task("b", TaskKind::Episode, vec![rollout(true, v1::Resolution::Full, 1000), rollout(false, v1::Resolution::Partial, 1000)]),
            task("c", TaskKind::Episode, vec![rollout(false, v1::Resolution::No, 2000)]),
            task("s", TaskKind::Synth, vec![synth]),
        ];
        let r = Report::build(&tasks, &v1::ClusterStatsResponse::default(), None);
        assert_eq!((r.episode_tasks, r.tasks_resolved, r.tasks_partly_resolved, r.tasks_unresolved), (3, 1, 1, 1));
        assert_eq!(r.unresolved_ids, ["b", "c"]);
        assert_eq!(r.rollouts_by_resolution, BTreeMap::from([("FULL".into(), 3), ("PARTIAL".into(), 1), ("NO".into(), 1)]));
        assert_eq!((r.synth_shards, r.synth_records), (1, 7));
        assert!((r.mean_episode_ms - 1600.0).abs() < 1e-9);
        assert_eq!(r.episodes, 5);
        assert!((r.span_s - 10.0).abs() < 1e-9 && (r.episodes_per_s - 0.5).abs() < 1e-9, "{r:?}");
        let mut text = Vec::new();
        r.print(&mut text).expect("print");
        let text = String::from_utf8(text).expect("utf8");
        let want = "\
tasks      3 episode tasks: 1 resolved in every rollout, 1 in some, 1 in none
           not resolved everywhere: b, c
rollouts   by resolution: FULL 3, NO 1, PARTIAL 1
           by exit: submitted 5
           5 episodes in 10 s from submission to the last result (30.0 episodes/min; mean episode 1.6 s)
synthesis  1 shard(s), 7 ctx records published
states     done 4
stream     0 records
learner    (no summary given: --learner DIR)
";
        assert_eq!(text, want, "the report as printed:\n{text}");
    }

    #[test]
    fn learner_summary_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("summary.json"),
            r#"{"stop_reason":"idle","steps":12,"tokens_trained":4096,"records":{"env_pass":3,"env_fail":1,"ctx":2},"loss_first":9.1,"loss_last":4.2,"tokens_per_second":100.0,"packing_efficiency":0.97,"mfu":null,"device":"Cpu","checkpoint":"out/checkpoints/step-00000012"}"#,
        )
        .expect("write");
        let l = LearnerReport::read(dir.path()).expect("read");
        assert_eq!((l.steps, l.tokens_trained, l.loss_first, l.loss_last), (12, 4096, Some(9.1), Some(4.2)));
        assert_eq!(l.records["ctx"], 2);
        assert_eq!(l.stop_reason, "idle");
        assert_eq!(l.eval_loss, None, "no evaluation ran");
        std::fs::write(
            dir.path().join("summary.json"),
            r#"{"steps":12,"records":{"held_out":4},"eval_loss_first":9.5,"eval":{"step":12,"loss":5.25,"tokens":800,"by_source":{}}}"#,
        )
        .expect("write");
        let l = LearnerReport::read(dir.path()).expect("read");
        assert_eq!((l.held_out, l.eval_loss, l.eval_tokens), (4, Some((9.5, 5.25)), 800));
        assert!(l.recorded_turns.is_empty(), "no turn carried ids");
        std::fs::write(dir.path().join("summary.json"), r#"{"steps":3,"recorded_turns":{"match":7,"drift":2,"out_of_vocab":0,"misaligned":1}}"#).expect("write");
        let l = LearnerReport::read(dir.path()).expect("read");
        let want: BTreeMap<String, u64> = [("drift", 2), ("match", 7), ("misaligned", 1)].map(|(k, n)| (k.to_string(), n)).into();
        assert_eq!(l.recorded_turns, want);
        // Every line the learner's summary can give, as the report prints them.
        std::fs::write(
            dir.path().join("summary.json"),
            r#"{"stop_reason":"until_idle","steps":12,"tokens_trained":4096,"records":{"env_pass":3,"env_fail":1,"ctx":2,"held_out":4},"loss_first":9.1,"loss_last":4.2,"tokens_per_second":100.0,"packing_efficiency":0.97,"mfu":null,"device":"Cpu","checkpoint":"out/checkpoints/step-00000012","eval_loss_first":9.5,"eval":{"loss":5.25,"tokens":800},"recorded_turns":{"match":7,"drift":2,"out_of_vocab":0,"misaligned":1}}"#,
        )
        .expect("write");
        let mut out = Vec::new();
        Report { learner: Some(LearnerReport::read(dir.path()).expect("read")), ..Report::default() }.print_learner(&mut out).expect("print");
        let text = String::from_utf8(out).expect("utf-8");
        let want = "\
learner    12 steps on Cpu, 4096 tokens trained (100 tokens/s, packing 97.0%), stopped: until_idle
           records trained: ctx 2, env_fail 1, env_pass 3
           loss 9.100 → 4.200
           held-out loss 9.500 → 5.250 (4 records held out, 800 tokens measured)
           policy tokens on 10 assistant turns, against the learner's tokens: drift 2, match 7, misaligned 1
           checkpoint out/checkpoints/step-00000012
";
        assert_eq!(text, want, "the learner's lines as printed:\n{text}");
        let e = LearnerReport::read(&dir.path().join("nope")).expect_err("missing").to_string();
        assert!(e.contains("did the learner finish?"), "{e}");
    }
}
