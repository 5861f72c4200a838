//! The in-memory task table: tasks, their rollouts, the priority queues and the leases.
//!
//! This is plain data with no I/O; [`crate::core`] owns one instance, applies requests to it and
//! persists what changed. Memory per task is kept small (the spec itself stays in Redis and is
//! fetched when a lease is granted), so a million queued tasks fit in a few hundred megabytes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use agentmill_proto::v1::{self, Stage, TaskState};
use serde::{Deserialize, Serialize};

/// A label map shared by every task (and worker) that carries the same labels.
pub type Labels = BTreeMap<String, String>;

/// Index of a task in [`TaskTable::tasks`].
pub type TaskIdx = u32;

/// The part of a task the scheduler needs, persisted as JSON in the task's `meta` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMeta {
    /// Submission sequence number (FIFO within a priority).
    pub seq: u64,
    /// When it was accepted.
    pub submitted_ms: i64,
    /// Higher first.
    pub priority: i32,
    /// Image, for the cached-image preference.
    pub image: String,
    /// Descriptive labels (ListTasks filters).
    #[serde(default)]
    pub labels: Labels,
    /// Affinity.
    #[serde(default)]
    pub worker_selector: Labels,
    /// Rollouts.
    pub rollouts: u32,
}

/// One rollout in memory (compact; converted to `v1::RolloutStatus` to persist or answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Queued, leased, running, done, failed or cancelled.
    pub state: TaskState,
    /// 1-based attempt; rises with each new lease after a lost lease, an infra failure or a release.
    pub attempt: u32,
    /// Attempts that failed (lost lease, infra failure); hand-backs are not counted.
    pub failures: u32,
    /// Hand-backs since the last retry (releases, cancelled episodes); bounded by `max_handbacks`.
    pub handbacks: u32,
    /// Stage the episode last reported.
    pub stage: Stage,
    /// Worker holding it.
    pub worker: Option<Arc<str>>,
    /// Live lease.
    pub lease: Option<Arc<str>>,
    /// Result once done.
    pub result: Option<Box<v1::EpisodeResult>>,
    /// Why the last attempt ended, when it failed.
    pub last_error: Option<Box<str>>,
    /// When it (re)entered the queue, for dispatch latency.
    pub queued_ms: i64,
}

impl Rollout {
    /// A fresh queued rollout.
    pub fn queued(now_ms: i64) -> Rollout {
        Rollout {
            state: TaskState::Queued,
            attempt: 1,
            failures: 0,
            handbacks: 0,
            stage: Stage::Unspecified,
            worker: None,
            lease: None,
            result: None,
            last_error: None,
            queued_ms: now_ms,
        }
    }

    /// Whether the rollout has reached an end state.
    pub fn finished(&self) -> bool {
        matches!(self.state, TaskState::Done | TaskState::Failed | TaskState::Cancelled)
    }

    /// The protobuf form.
    pub fn to_proto(&self, n: u32) -> v1::RolloutStatus {
        v1::RolloutStatus {
            rollout: n,
            state: self.state as i32,
            attempt: self.attempt,
            failures: self.failures,
            handbacks: self.handbacks,
            worker_id: self.worker.as_deref().unwrap_or_default().to_string(),
            lease_id: self.lease.as_deref().unwrap_or_default().to_string(),
            stage: self.stage as i32,
            result: self.result.as_deref().cloned(),
            last_error: self.last_error.as_deref().unwrap_or_default().to_string(),
        }
    }

    /// Reads the protobuf form back.
    pub fn from_proto(p: &v1::RolloutStatus, now_ms: i64) -> Rollout {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Rollout {
            state: TaskState::try_from(p.state).unwrap_or(TaskState::Queued),
            attempt: p.attempt.max(1),
            failures: p.failures,
            handbacks: p.handbacks,
            stage: Stage::try_from(p.stage).unwrap_or(Stage::Unspecified),
            worker: non_empty(&p.worker_id).map(Arc::from),
            lease: non_empty(&p.lease_id).map(Arc::from),
            result: p.result.clone().map(Box::new),
            last_error: non_empty(&p.last_error).map(|s| s.into_boxed_str()),
            queued_ms: now_ms,
        }
    }
}

/// One task in memory.
#[derive(Debug, Clone)]
pub struct TaskEntry {
    /// The task id.
    pub id: Arc<str>,
    /// Submission order.
    pub seq: u64,
    /// When accepted.
    pub submitted_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// Higher first.
    pub priority: i32,
    /// Interned image name.
    pub image: Arc<str>,
    /// Interned labels.
    pub labels: Arc<Labels>,
    /// Interned affinity.
    pub selector: Arc<Labels>,
    /// Its rollouts.
    pub rollouts: Vec<Rollout>,
}

impl TaskEntry {
    /// The task's state, derived from its rollouts: in progress while any rollout is; otherwise
    /// cancelled if every unfinished rollout was cancelled, failed if any failed, else done.
    pub fn state(&self) -> TaskState {
        let mut any_leased = false;
        let mut any_running = false;
        let mut any_queued = false;
        let (mut done, mut failed, mut cancelled) = (0, 0, 0);
        for r in &self.rollouts {
            match r.state {
                TaskState::Queued | TaskState::Unspecified => any_queued = true,
                TaskState::Leased => any_leased = true,
                TaskState::Running => any_running = true,
                TaskState::Done => done += 1,
                TaskState::Failed => failed += 1,
                TaskState::Cancelled => cancelled += 1,
            }
        }
        if any_running {
            TaskState::Running
        } else if any_leased {
            TaskState::Leased
        } else if any_queued {
            TaskState::Queued
        } else if cancelled > 0 && done == 0 && failed == 0 {
            TaskState::Cancelled
        } else if failed > 0 {
            TaskState::Failed
        } else if cancelled > 0 && done == 0 {
            TaskState::Cancelled
        } else {
            TaskState::Done
        }
    }

    /// The persisted status (without the spec).
    pub fn status_proto(&self) -> v1::TaskStatus {
        v1::TaskStatus {
            task: None,
            state: self.state() as i32,
            rollouts: self.rollouts.iter().enumerate().map(|(n, r)| r.to_proto(n as u32)).collect(),
            submitted_at_unix_ms: self.submitted_ms,
            updated_at_unix_ms: self.updated_ms,
        }
    }

    /// The scheduler's view, persisted beside the spec.
    pub fn meta(&self) -> TaskMeta {
        TaskMeta {
            seq: self.seq,
            submitted_ms: self.submitted_ms,
            priority: self.priority,
            image: self.image.to_string(),
            labels: (*self.labels).clone(),
            worker_selector: (*self.selector).clone(),
            rollouts: self.rollouts.len() as u32,
        }
    }
}

/// A position in a queue: higher priority first, then submission order, then rollout (the
/// field order is the queue order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueKey {
    /// The task's priority, highest first.
    pub priority: Reverse<i32>,
    /// Its submission sequence number, oldest first.
    pub seq: u64,
    /// The rollout of the task.
    pub rollout: u32,
    /// The task.
    pub task: TaskIdx,
}

impl QueueKey {
    /// Rollout `n` of task `t` at index `idx`.
    fn of(t: &TaskEntry, n: u32, idx: TaskIdx) -> QueueKey {
        QueueKey { priority: Reverse(t.priority), seq: t.seq, rollout: n, task: idx }
    }
}

/// A live lease.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The task.
    pub task: TaskIdx,
    /// The rollout.
    pub rollout: u32,
    /// The attempt it was granted for.
    pub attempt: u32,
    /// The worker holding it.
    pub worker: Arc<str>,
    /// The worker's session, while connected: the only session whose messages on this lease
    /// count.
    pub session: Option<u64>,
    /// The credential the lease was granted to (`None` after a coordinator restart: any
    /// credential bound to `worker` may claim it back).
    pub credential: Option<Arc<str>>,
    /// Expires at (unix ms) unless renewed by a heartbeat.
    pub deadline_ms: i64,
}

/// Interns strings and label maps so equal values share one allocation.
#[derive(Debug, Default)]
pub struct Interner {
    strings: HashMap<Arc<str>, ()>,
    labels: HashMap<Arc<Labels>, ()>,
}

impl Interner {
    /// The shared copy of `s`.
    pub fn str(&mut self, s: &str) -> Arc<str> {
        if let Some((k, _)) = self.strings.get_key_value(s) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(s);
        self.strings.insert(k.clone(), ());
        k
    }

    /// The shared copy of `l`.
    pub fn labels(&mut self, l: Labels) -> Arc<Labels> {
        if let Some((k, _)) = self.labels.get_key_value(&l) {
            return k.clone();
        }
        let k = Arc::new(l);
        self.labels.insert(k.clone(), ());
        k
    }
}

/// Tasks, queues and leases.
#[derive(Debug, Default)]
pub struct TaskTable {
    /// Every task, by index.
    pub tasks: Vec<TaskEntry>,
    /// Task id → index.
    pub by_id: HashMap<Arc<str>, TaskIdx>,
    /// Queued rollouts, one queue per distinct worker selector.
    pub queues: HashMap<Arc<Labels>, BTreeSet<QueueKey>>,
    /// Live leases by id.
    pub leases: HashMap<Arc<str>, Lease>,
    /// The next submission sequence number.
    pub next_seq: u64,
    /// Shared strings and label maps.
    pub interner: Interner,
}

impl TaskTable {
    /// Queues rollout `n` of task `idx`.
    pub fn enqueue(&mut self, idx: TaskIdx, n: u32) {
        let t = &self.tasks[idx as usize];
        let key = QueueKey::of(t, n, idx);
        self.queues.entry(t.selector.clone()).or_default().insert(key);
    }

    /// Removes rollout `n` of task `idx` from its queue (when it is there).
    pub fn dequeue(&mut self, idx: TaskIdx, n: u32) {
        let t = &self.tasks[idx as usize];
        let key = QueueKey::of(t, n, idx);
        if let Some(q) = self.queues.get_mut(&t.selector) {
            q.remove(&key);
        }
    }

    /// Rollouts waiting in all queues.
    pub fn queued_len(&self) -> usize {
        self.queues.values().map(BTreeSet::len).sum()
    }

    /// Picks the next rollout for a worker with these labels and cached images: the best
    /// (priority, age) among queues whose selector the worker satisfies; within that priority,
    /// a rollout whose image the worker already holds is preferred among the first `look` entries.
    pub fn pick(&mut self, worker_labels: &Labels, cached: &dyn Fn(&str) -> bool, look: usize) -> Option<QueueKey> {
        let mut best: Option<(QueueKey, Arc<Labels>)> = None;
        for (selector, q) in &self.queues {
            if !selector.iter().all(|(k, v)| worker_labels.get(k) == Some(v)) {
                continue;
            }
            if let Some(first) = q.first()
                && best.as_ref().is_none_or(|(b, _)| first < b)
            {
                best = Some((*first, selector.clone()));
            }
        }
        let (head, selector) = best?;
        let q = self.queues.get_mut(&selector)?;
        let mut chosen = head;
        if !cached(&self.tasks[head.task as usize].image) {
            for key in q.iter().take(look).skip(1) {
                if key.priority != head.priority {
                    break;
                }
                if cached(&self.tasks[key.task as usize].image) {
                    chosen = *key;
                    break;
                }
            }
        }
        q.remove(&chosen);
        if q.is_empty() {
            self.queues.remove(&selector);
        }
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_with(tasks: &[(&str, i32, &str, Labels)]) -> TaskTable {
        let mut t = TaskTable::default();
        for (i, (id, prio, image, selector)) in tasks.iter().enumerate() {
            let image = t.interner.str(image);
            let selector = t.interner.labels(selector.clone());
            let labels = t.interner.labels(Labels::new());
            t.tasks.push(TaskEntry {
                id: Arc::from(*id),
                seq: i as u64,
                submitted_ms: 0,
                updated_ms: 0,
                priority: *prio,
                image,
                labels,
                selector,
                rollouts: vec![Rollout::queued(0)],
            });
            t.by_id.insert(Arc::from(*id), i as u32);
            t.enqueue(i as u32, 0);
        }
        t
    }

    fn gpu() -> Labels {
        [("gpu".to_string(), "yes".to_string())].into_iter().collect()
    }

    #[test]
    fn priority_first_then_fifo() {
        let mut t = table_with(&[("a", 0, "img", Labels::new()), ("b", 5, "img", Labels::new()), ("c", 5, "img", Labels::new())]);
        let none = |_: &str| false;
        let order: Vec<u32> = std::iter::from_fn(|| t.pick(&Labels::new(), &none, 8).map(|k| k.task)).collect();
        assert_eq!(order, [1, 2, 0]);
    }

    #[test]
    fn affinity_keeps_tasks_from_workers_without_the_labels() {
        let mut t = table_with(&[("a", 0, "img", gpu()), ("b", 0, "img", Labels::new())]);
        let none = |_: &str| false;
        assert_eq!(t.pick(&Labels::new(), &none, 8).map(|k| k.task), Some(1));
        assert_eq!(t.pick(&Labels::new(), &none, 8), None);
        assert_eq!(t.pick(&gpu(), &none, 8).map(|k| k.task), Some(0));
    }

    #[test]
    fn a_cached_image_wins_within_the_same_priority() {
        let mut t = table_with(&[("a", 0, "big", Labels::new()), ("b", 0, "cached", Labels::new()), ("c", 1, "big", Labels::new())]);
        let cached = |i: &str| i == "cached";
        // Priority still rules: c (priority 1) comes first even without its image cached.
        assert_eq!(t.pick(&Labels::new(), &cached, 8).map(|k| k.task), Some(2));
        assert_eq!(t.pick(&Labels::new(), &cached, 8).map(|k| k.task), Some(1));
        assert_eq!(t.pick(&Labels::new(), &cached, 8).map(|k| k.task), Some(0));
    }

    #[test]
    fn task_state_is_derived_from_rollouts() {
        let mut e = table_with(&[("a", 0, "i", Labels::new())]).tasks.remove(0);
        e.rollouts = vec![Rollout::queued(0), Rollout::queued(0)];
        assert_eq!(e.state(), TaskState::Queued);
        e.rollouts[0].state = TaskState::Running;
        assert_eq!(e.state(), TaskState::Running);
        e.rollouts[0].state = TaskState::Done;
        e.rollouts[1].state = TaskState::Failed;
        assert_eq!(e.state(), TaskState::Failed);
        e.rollouts[1].state = TaskState::Done;
        assert_eq!(e.state(), TaskState::Done);
        e.rollouts[0].state = TaskState::Cancelled;
        e.rollouts[1].state = TaskState::Cancelled;
        assert_eq!(e.state(), TaskState::Cancelled);
    }
}
