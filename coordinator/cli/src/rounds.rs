//! `agentmill report --compare KEY`: the episode tasks split by the value of one of their labels
//! and shown side by side — the closed loop's rounds (`round=1` replay, `round=2` the model the
//! learner trained), or any other split (`--compare policy`).
//!
//! ```text
//! round                 1                          2
//! policy                replay 18                  local 18
//! served by             replay/gold-patch 18       local/agentmill-quickstart@step-00000044 18
//! rollouts resolved     18 of 18                   0 of 18
//! ...
//! ```
//!
//! Each column is a [`Report`] of its tasks (resolution, exits, throughput) plus what only the
//! records hold: the policy, model and weight version they name, and the model's tokens (the
//! servers' usage per turn), read from the trajectory stream through the coordinator.

use std::collections::BTreeMap;
use std::io::Write;

use agentmill_proto::connect::Client;
use agentmill_proto::v1;
use agentmill_proto::{Role, TrajectoryRecord};
use serde::Serialize;

use crate::report::{self, Report};

/// One value of the compared label.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Column {
    /// The label's value (`1`, `2`, ...).
    pub value: String,
    /// The report of these tasks alone.
    pub report: Report,
    /// Finished rollouts by the policy their task named.
    pub policies: BTreeMap<String, u64>,
    /// Records by `policy/model@weight_version` (their provenance).
    pub served_by: BTreeMap<String, u64>,
    /// Agent steps over the finished rollouts.
    pub steps: u64,
    /// Records read from the stream (the token figures cover these).
    pub records: u64,
    /// Model turns with usage, and their prompt and completion tokens.
    pub model_turns: u64,
    /// Prompt tokens the server reported.
    pub prompt_tokens: u64,
    /// Completion tokens the server reported.
    pub completion_tokens: u64,
}

/// What one record adds to its column.
fn add_record(c: &mut Column, record: &TrajectoryRecord) {
    c.records += 1;
    let served = match &record.provenance.policy {
        Some(p) => {
            let mut s = p.name.clone();
            if !p.model.is_empty() {
                s = format!("{s}/{}", p.model);
            }
            if !p.weight_version.is_empty() {
                s = format!("{s}@{}", p.weight_version);
            }
            s
        }
        None => "unknown".to_string(),
    };
    *c.served_by.entry(served).or_default() += 1;
    for m in record.messages.iter().filter(|m| m.role == Role::Assistant) {
        if let Some(u) = &m.usage {
            c.model_turns += 1;
            c.prompt_tokens += u.prompt_tokens;
            c.completion_tokens += u.completion_tokens;
        }
    }
}

/// The episode tasks carrying `labels`, split by the value of their label `key` (tasks without
/// it are left out), each with its records read back.
pub async fn compare(client: &mut Client, key: &str, labels: &BTreeMap<String, String>) -> anyhow::Result<Vec<Column>> {
    let (tasks, stats) = report::tasks_and_stats(client, labels).await?;
    let mut groups: BTreeMap<String, Vec<v1::TaskStatus>> = BTreeMap::new();
    for t in tasks.into_iter().filter(report::is_episode) {
        if let Some(v) = t.task.as_ref().and_then(|spec| spec.labels.get(key)) {
            groups.entry(v.clone()).or_default().push(t);
        }
    }
    anyhow::ensure!(!groups.is_empty(), "no episode task carries the label {key:?}{}: --compare splits tasks by a label they were submitted with (agentmill submit --label {key}=VALUE)", if labels.is_empty() { String::new() } else { " among those with the --label filters".into() });
    let mut out = Vec::new();
    for (value, tasks) in groups {
        let mut c = Column { value, report: Report::build(&tasks, &stats, None), ..Column::default() };
        for t in &tasks {
            let spec = t.task.as_ref().expect("grouped tasks have a spec");
            for ro in &t.rollouts {
                let Some(res) = &ro.result else { continue };
                *c.policies.entry(if spec.policy.is_empty() { "(worker default)".into() } else { spec.policy.clone() }).or_default() += 1;
                c.steps += u64::from(res.steps);
                if res.stream_id.is_empty() {
                    continue;
                }
                let got = client.get_trajectory(v1::GetTrajectoryRequest { task_id: spec.instance_id.clone(), rollout: ro.rollout, attempt: 0 }).await;
                // A record trimmed from the stream leaves the figures of the others.
                let Ok(got) = got else { continue };
                let record: TrajectoryRecord = serde_json::from_str(&got.into_inner().record_json).map_err(|e| anyhow::anyhow!("{} rollout {}: the coordinator sent a record this build cannot read: {e}", spec.instance_id, ro.rollout))?;
                add_record(&mut c, &record);
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// The columns as a table for people.
pub fn print(key: &str, columns: &[Column], out: &mut impl Write) -> std::io::Result<()> {
    let join = |m: &BTreeMap<String, u64>| if m.is_empty() { "-".to_string() } else { report::counts(m) };
    let per = |n: u64, d: u64| if d == 0 { "-".to_string() } else { format!("{:.1}", n as f64 / d as f64) };
    let rows: Vec<(&str, Vec<String>)> = vec![
        (key, columns.iter().map(|c| c.value.clone()).collect()),
        ("policy", columns.iter().map(|c| join(&c.policies)).collect()),
        ("served by", columns.iter().map(|c| join(&c.served_by)).collect()),
        ("tasks resolved", columns.iter().map(|c| format!("{} of {} (all rollouts)", c.report.tasks_resolved, c.report.episode_tasks)).collect()),
        ("by resolution", columns.iter().map(|c| join(&c.report.rollouts_by_resolution)).collect()),
        ("by exit", columns.iter().map(|c| join(&c.report.rollouts_by_exit)).collect()),
        ("episodes", columns.iter().map(|c| c.report.episodes.to_string()).collect()),
        ("steps per episode", columns.iter().map(|c| per(c.steps, c.report.episodes)).collect()),
        ("model turns", columns.iter().map(|c| c.model_turns.to_string()).collect()),
        ("prompt tokens", columns.iter().map(|c| c.prompt_tokens.to_string()).collect()),
        ("completion tokens", columns.iter().map(|c| c.completion_tokens.to_string()).collect()),
        ("completion tokens/episode", columns.iter().map(|c| per(c.completion_tokens, c.records)).collect()),
        ("mean episode", columns.iter().map(|c| format!("{:.1} s", c.report.mean_episode_ms / 1000.0)).collect()),
        ("episodes per hour", columns.iter().map(|c| format!("{:.0} (over {:.0} s)", c.report.episodes_per_s * 3600.0, c.report.span_s)).collect()),
    ];
    let width = rows.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0) + 2;
    let col_width: Vec<usize> = (0..columns.len()).map(|i| rows.iter().map(|(_, cells)| cells[i].chars().count()).max().unwrap_or(0) + 3).collect();
    for (name, cells) in &rows {
        let mut line = format!("{name:<width$}");
        for (i, cell) in cells.iter().enumerate() {
            let w = col_width[i];
            line.push_str(&format!("{cell:<w$}"));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentmill_proto::{Message, PolicyInfo, RecordKind, Usage};

    #[test]
    fn records_add_their_provenance_and_the_servers_usage() {
        let mut c = Column { value: "2".into(), ..Column::default() };
        let mut r = TrajectoryRecord::new(RecordKind::Env, "env:t-r2:r0:a1", "t-r2");
        r.provenance.policy = Some(PolicyInfo { name: "local".into(), model: "m".into(), sampling: serde_json::Value::Null, weight_version: "step-00000040".into() });
        let mut turn = Message::text(Role::Assistant, "x");
        turn.usage = Some(Usage { prompt_tokens: 100, completion_tokens: 7 });
        r.messages = vec![Message::text(Role::User, "fix it"), turn.clone(), Message::text(Role::Assistant, "no usage"), turn];
        add_record(&mut c, &r);
        r.provenance.policy = None;
        r.messages.clear();
        add_record(&mut c, &r);
        assert_eq!(c.served_by, BTreeMap::from([("local/m@step-00000040".to_string(), 1), ("unknown".to_string(), 1)]));
        assert_eq!((c.records, c.model_turns, c.prompt_tokens, c.completion_tokens), (2, 2, 200, 14));

        c.report.episodes = 2;
        c.steps = 5;
        let replay = Column { value: "1".into(), policies: BTreeMap::from([("replay".to_string(), 4)]), ..Column::default() };
        let mut text = Vec::new();
        print("round", &[replay, c], &mut text).expect("print");
        let text = String::from_utf8(text).expect("utf-8");
        let want = "\
round                      1                       2
policy                     replay 4                -
served by                  -                       local/m@step-00000040 1, unknown 1
tasks resolved             0 of 0 (all rollouts)   0 of 0 (all rollouts)
by resolution              -                       -
by exit                    -                       -
episodes                   0                       2
steps per episode          -                       2.5
model turns                0                       2
prompt tokens              0                       200
completion tokens          0                       14
completion tokens/episode  -                       7.0
mean episode               0.0 s                   0.0 s
episodes per hour          0 (over 0 s)            0 (over 0 s)
";
        assert_eq!(text, want, "the table as printed:\n{text}");
    }
}
