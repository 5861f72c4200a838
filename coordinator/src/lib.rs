//! agentmill's coordinator: the gRPC service that owns every task from submission to result.
//!
//! - [`service`]: `agentmill.v1.Coordinator` — submission (validated row by row), queries,
//!   cancellation, the event stream, cluster stats and the worker session (`Attach`).
//! - [`core`]: the single owner of the task table, sessions and leases; applies requests in
//!   batches and group-commits them to Redis before answering. Its parts: `store` (loading and
//!   the group commit), `sessions` (workers and their lease-bound messages), `dispatch` (granting
//!   and expiring leases), `lifecycle` (submit, cancel, retry, results, requeues) and `stats`.
//! - [`state`]: the compact in-memory task table, priority queues (one per worker selector) and
//!   leases; [`keys`] documents every Redis key.
//! - [`server`]: wiring (health, reflection, bearer auth, TLS, size limits) and the HTTP server:
//!   the status page, its JSON and `/metrics`; [`config`]: the TOML / environment / flag
//!   configuration.
//! - [`observe`]: the cluster's live view — the trajectory stream, the learner's report and a
//!   history of the figures, sampled in the background.
//! - [`auth`]: who may call what (bearer-token credentials with roles); [`content`]: what a
//!   client's tasks carry (repository archives, synthesis rows, git bundles), kept in Redis
//!   under its SHA-256; [`metrics`]: the Prometheus metrics.
//!
//! The `agentmill` CLI is a crate of its own, `agentmill-cli` (`coordinator/cli/`).
//!
//! Run it: `agentmill-coordinator --config deploy/config/coordinator.toml`.

pub mod auth;
pub mod config;
pub mod content;
pub mod core;
pub mod keys;
pub mod metrics;
pub mod observe;
pub mod server;
pub mod service;
pub mod state;
