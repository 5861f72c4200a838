//! agentmill's command line (`agentmill`), as a library: it speaks to a coordinator through
//! `agentmill.v1` only ([`agentmill_proto::connect`]), so the server binary carries none of it.
//! The binary (`src/bin/agentmill.rs`) parses the flags and calls [`commands`].
//!
//! - [`commands`]: one file per command (`submit`, `wait`, `report`, `get`, `list`,
//!   `trajectory`, `cancel`, `retry`, `cordon`, `watch`, `stats`, `top`, `synth`), each with its
//!   flags (`*Args`) and its body (`run`), printing for people or, with `--json`, for scripts.
//! - [`client`]: the connection settings (flags, `AGENTMILL_*`, `~/.config/agentmill/cli.toml`),
//!   submitting a JSONL file or Harbor task folders in batches (with their content uploaded),
//!   and JSON output.
//! - [`report`]: row overrides, listing and waiting for tasks, and the end-of-run report.
//! - [`rounds`]: `report --compare`, the episode tasks side by side by a label.
//! - [`top`]: `agentmill top`, the operators' live terminal view of `ClusterStats` (`top/`:
//!   the view's state, `render.rs` the drawing, `live.rs` the terminal loop).
//! - [`transcript`]: a record printed as a readable transcript (`agentmill trajectory`).
//! - [`upload`]: content that travels with a task (`PutContent`): files and git bundles.
//!
//! ```text
//! agentmill submit --rollouts 3 --policy replay deploy/tasks/tasks.jsonl
//! agentmill wait --timeout 10m && agentmill report --learner runs/learner
//! agentmill top --once
//! ```

pub mod client;
pub mod commands;
pub mod report;
pub mod rounds;
pub mod top;
pub mod transcript;
pub mod upload;
