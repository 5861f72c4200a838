//! Only the attempt the coordinator accepted trains.
//!
//! A worker cut off from the coordinator but not from Redis can publish the record of an
//! attempt whose lease expired while another worker runs the rollout's next attempt. Both
//! records reach the stream; only one is the rollout's result. The coordinator writes every
//! rollout's state and attempt into the task's status (`{ns}:task:{id}`, field `status`, an
//! `agentmill.v1.TaskStatus`) in the same Redis pipeline as the change, before it answers the
//! worker, so the status is the record of what it accepted:
//!
//! * rollout `done` at the record's attempt: the accepted attempt — it trains;
//! * rollout at a later attempt, or `failed` / `cancelled` at the record's attempt: the attempt
//!   was not accepted and never will be — `superseded`, acknowledged, never trained;
//! * rollout still `leased` / `running` / `queued` at the record's attempt: not decided yet
//!   (the worker publishes before it reports) — the record is held, unacknowledged, and
//!   checked again until the coordinator decides or `acceptance_timeout` passes (then
//!   `unaccepted`, never trained).
//!
//! Only trainable `env` records are checked: `ctx` records (contextual synthesis) and infra or
//! cancelled episodes (never trained anyway) pass as before. A record of a task the
//! coordinator does not know (no status under `{ns}:task:{id}`: a `local` run's records, which
//! have no lease, published to the stream by hand) trains as before, and so does every record
//! when `coordinator_namespace` is empty.
//!
//! Held records are never admitted to the feeder, so no checkpoint holds them and nothing
//! acknowledges them: after a restart the stream delivers them again and they are checked
//! again. A record is therefore neither lost nor trained twice across a crash.

use std::collections::HashMap;

use agentmill_proto::v1;
use agentmill_proto::{RecordKind, TrajectoryRecord};
use prost::Message as _;
use redis::aio::ConnectionManager;

/// What the coordinator's status says of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Train it (the accepted attempt, or a record the check does not apply to).
    Train,
    /// Never train it: why.
    Superseded(String),
    /// Its rollout has not decided yet.
    Pending,
}

/// Whether the check applies to a record: trainable `env` records only.
pub fn applies(record: &TrajectoryRecord) -> bool {
    record.kind == RecordKind::Env && record.is_trainable()
}

/// The verdict for `record` given its task's status (`None`: the coordinator does not know
/// the task).
pub fn verdict(record: &TrajectoryRecord, status: Option<&v1::TaskStatus>) -> Verdict {
    let Some(status) = status else { return Verdict::Train };
    let (task, n, attempt) = (&record.task_id, record.rollout, record.attempt);
    let Some(r) = status.rollouts.iter().find(|r| r.rollout == n).or_else(|| status.rollouts.get(n as usize)) else {
        return Verdict::Superseded(format!("task {task} has no rollout {n} at the coordinator"));
    };
    let state = v1::TaskState::try_from(r.state).unwrap_or(v1::TaskState::Unspecified);
    if r.attempt > attempt {
        return Verdict::Superseded(format!(
            "attempt {attempt} of rollout {n} of task {task} was superseded: the coordinator moved on to attempt {}",
            r.attempt
        ));
    }
    if r.attempt < attempt {
        // An attempt the status does not show yet: the coordinator writes the status before it
        // sends a lease, so this is a status read just before it changed. Check again.
        return Verdict::Pending;
    }
    match state {
        v1::TaskState::Done => Verdict::Train,
        v1::TaskState::Failed | v1::TaskState::Cancelled => Verdict::Superseded(format!(
            "attempt {attempt} of rollout {n} of task {task} was not accepted: the rollout ended {}",
            state.name()
        )),
        _ => Verdict::Pending,
    }
}

/// Reads task statuses from the coordinator's keys.
pub struct Acceptance {
    con: ConnectionManager,
    namespace: String,
}

impl std::fmt::Debug for Acceptance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptance").field("namespace", &self.namespace).finish()
    }
}

impl Acceptance {
    /// A checker over the coordinator's keys under `namespace`.
    pub async fn connect(redis_url: &str, namespace: &str) -> redis::RedisResult<Acceptance> {
        let client = redis::Client::open(redis_url)?;
        let con = ConnectionManager::new(client).await?;
        Ok(Acceptance { con, namespace: namespace.to_string() })
    }

    /// The verdict for each record, in order (one pipeline, one read per distinct task).
    pub async fn check(&mut self, records: &[&TrajectoryRecord]) -> redis::RedisResult<Vec<Verdict>> {
        let mut tasks: Vec<&str> = records.iter().map(|r| r.task_id.as_str()).collect();
        tasks.sort_unstable();
        tasks.dedup();
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for t in &tasks {
            pipe.hget(format!("{}:task:{t}", self.namespace), "status");
        }
        let blobs: Vec<Option<Vec<u8>>> = pipe.query_async(&mut self.con).await?;
        let statuses: HashMap<&str, Option<v1::TaskStatus>> = tasks
            .iter()
            .zip(blobs)
            .map(|(t, b)| (*t, b.and_then(|b| v1::TaskStatus::decode(&b[..]).ok())))
            .collect();
        Ok(records.iter().map(|r| verdict(r, statuses.get(r.task_id.as_str()).and_then(Option::as_ref))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(attempt: u32) -> TrajectoryRecord {
        let mut r = TrajectoryRecord::new(RecordKind::Env, TrajectoryRecord::episode_record_id("t", 0, attempt), "t");
        r.attempt = attempt;
        r.exit_reason = Some(agentmill_proto::ExitReason::Submitted);
        r
    }

    fn status(state: v1::TaskState, attempt: u32) -> v1::TaskStatus {
        v1::TaskStatus {
            rollouts: vec![v1::RolloutStatus { rollout: 0, state: state as i32, attempt, ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn only_the_accepted_attempt_trains() {
        use v1::TaskState as S;
        assert_eq!(verdict(&record(2), Some(&status(S::Done, 2))), Verdict::Train);
        assert!(matches!(verdict(&record(1), Some(&status(S::Done, 2))), Verdict::Superseded(_)));
        assert!(matches!(verdict(&record(1), Some(&status(S::Running, 2))), Verdict::Superseded(_)));
        assert!(matches!(verdict(&record(1), Some(&status(S::Failed, 1))), Verdict::Superseded(_)));
        assert!(matches!(verdict(&record(1), Some(&status(S::Cancelled, 1))), Verdict::Superseded(_)));
        assert_eq!(verdict(&record(1), Some(&status(S::Running, 1))), Verdict::Pending);
        assert_eq!(verdict(&record(1), Some(&status(S::Leased, 1))), Verdict::Pending);
        assert_eq!(verdict(&record(3), Some(&status(S::Leased, 2))), Verdict::Pending);
        // A task the coordinator does not know (a local run): trains as before.
        assert_eq!(verdict(&record(1), None), Verdict::Train);
    }
}
