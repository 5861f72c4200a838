//! Every Redis key the coordinator owns. `{ns}` is `namespace` from the configuration
//! (default `agentmill`). The coordinator is the only writer of these keys; workers never
//! touch them (their keys are documented in their own crates). The learner reads one field:
//! a task's `status`, to train an episode's record only when its attempt is the one the
//! coordinator accepted (`coordinator_namespace` in the learner's configuration).
//!
//! | key | type | contents |
//! |---|---|---|
//! | `{ns}:tasks` | sorted set | task id → submission sequence number: every accepted task, in submission order |
//! | `{ns}:cordoned` | set | worker ids an operator cordoned (`CordonWorkers`): sent no new leases until uncordoned |
//! | `{ns}:content:{sha256}` | string | content a client stored with `PutContent` (an archive, a rows or issues file, a git bundle), written once under its SHA-256; tasks name it `content:<sha256>`, workers read it back with `GetContent`. Kept until removed by hand (`DEL`) |
//! | `{ns}:task:{id}` | hash | `spec`: the `agentmill.v1.TaskSpec` (protobuf, written once); `meta`: what the scheduler needs, as JSON (`TaskMeta`: sequence, submission time, priority, image, labels, worker selector, rollouts); `status`: the `agentmill.v1.TaskStatus` (protobuf) with every rollout's state, attempt, worker, lease id, stage and result, rewritten on every change |
//!
//! Lease deadlines are not stored: a restarted coordinator gives every lease it reloads a fresh
//! `lease_ttl`, which the owning worker renews by reattaching (or lets expire).
//!
//! Writes are group-committed: the coordinator applies a batch of requests in memory, writes their
//! effects in one pipeline, and only then answers the requests or sends the leases. An answer a
//! client has seen is therefore durable; a request whose write did not land was never answered.

/// The keys of one namespace.
#[derive(Debug, Clone)]
pub struct Keys {
    ns: String,
}

impl Keys {
    /// Keys under `namespace`.
    pub fn new(namespace: &str) -> Keys {
        Keys { ns: namespace.to_string() }
    }

    /// The sorted set of every task id by submission sequence.
    pub fn tasks(&self) -> String {
        format!("{}:tasks", self.ns)
    }

    /// The set of cordoned worker ids.
    pub fn cordoned(&self) -> String {
        format!("{}:cordoned", self.ns)
    }

    /// The hash of one task.
    pub fn task(&self, id: &str) -> String {
        format!("{}:task:{id}", self.ns)
    }
}
