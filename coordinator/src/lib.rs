//! agentmill's coordinator: the gRPC service that owns every task from submission to result.
//!
//! - [`service`]: `agentmill.v1.Coordinator` — submission (validated row by row), queries,
//!   cancellation, the event stream, cluster stats and the worker session (`Attach`).
//! - [`core`]: the single owner of the task table, sessions and leases; applies requests in
//!   batches and group-commits them to Redis before answering.
//! - [`state`]: the compact in-memory task table, priority queues (one per worker selector) and
//!   leases; [`keys`] documents every Redis key.
//! - [`server`]: wiring (health, reflection, bearer auth, TLS, size limits, `/metrics`);
//!   [`config`]: the TOML / environment / flag configuration.
//! - [`client`]: the `agentmill` CLI's commands, usable as a library.
//!
//! Run it: `agentmill-coordinator --config deploy/config/coordinator.toml`.

pub mod auth;
pub mod client;
pub mod config;
pub mod core;
pub mod keys;
pub mod metrics;
pub mod server;
pub mod service;
pub mod state;
