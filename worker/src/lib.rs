//! agentmill's worker: the actor system on one host that runs sandboxed agent episodes.
//!
//! Today it holds the parts every episode stands on:
//! - [`sandbox`]: where commands really run ([`sandbox::docker`] through bollard), with limits,
//!   labels for reaping, timeouts that kill the process group, and capped output;
//! - [`repo`]: putting a task's repository in place (archive → deterministic base commit) and
//!   applying patches with SWE-bench's fallbacks;
//! - [`grading`]: the test command, the pytest log parser and SWE-bench's resolution rule.
//!
//! - [`actors`]: the actix actors (today the [`actors::publisher::Publisher`]);
//! - [`session`]: the worker's `Attach` session with the coordinator (credits, heartbeats,
//!   reconnects, results resent until acknowledged).
//!
//! The actors (`HostSupervisor`, `EpisodeActor`, `SynthActor`, `Publisher`), the tools and the
//! policies land with the Worker issue.

pub mod actors;
pub mod grading;
pub mod repo;
pub mod sandbox;
pub mod session;
pub mod shell;
