//! agentmill's command line (`agentmill`), as a library: it speaks to a coordinator through
//! `agentmill.v1` only ([`agentmill_proto::connect`]), so the server binary carries none of it.
//!
//! - [`client`]: the connection settings, submitting a JSONL file or Harbor task folders in
//!   batches (with their content uploaded), and JSON output.
//! - [`report`]: row overrides, waiting for tasks to finish and the end-of-run report.
//! - [`top`]: `agentmill top`, the operators' live terminal view of `ClusterStats`.
//! - [`transcript`]: a record printed as a readable transcript (`agentmill show --transcript`).
//! - [`upload`]: content that travels with a task (`PutContent`): files and git bundles.

pub mod client;
pub mod report;
pub mod rounds;
pub mod top;
pub mod transcript;
pub mod upload;
