//! Every Redis key the coordinator owns. `{ns}` is `namespace` from the configuration
//! (default `agentmill`). The coordinator is the only writer of these keys; workers and the
//! learner never touch them (their keys are documented in their own crates).
//!
//! | key | type | contents |
//! |---|---|---|
//! | `{ns}:tasks` | sorted set | task id → submission sequence number: every accepted task, in submission order |
//! | `{ns}:task:{id}` | hash | `spec`: the `agentmill.v1.TaskSpec` (protobuf); `seq`; `submitted_ms`; `r{n}`: the `agentmill.v1.RolloutStatus` (protobuf) of rollout n — state, attempt, worker, lease id, stage, result |
//! | `{ns}:lease_deadline` | hash | lease id → deadline (unix ms) of every live lease, so a restarted coordinator knows when each expires |
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

    /// The hash of one task.
    pub fn task(&self, id: &str) -> String {
        format!("{}:task:{id}", self.ns)
    }

    /// The hash of live lease deadlines.
    pub fn lease_deadlines(&self) -> String {
        format!("{}:lease_deadline", self.ns)
    }

    /// The field of rollout `n` in a task hash.
    pub fn rollout_field(n: u32) -> String {
        format!("r{n}")
    }
}
