//! agentmill's worker: the actor system on one host that runs sandboxed agent episodes and
//! publishes their trajectories.
//!
//! - [`host`]: wiring and the `agentmill-worker` main loop (drain on SIGTERM); [`config`]: its
//!   TOML / environment / flag configuration; [`local`]: `agentmill-worker run FILE`, a task
//!   file's episodes on this host without a coordinator (`--validate` for gold patches).
//! - [`actors`]: `HostSupervisor` (leases → episode actors, cancellation, orphan reaping,
//!   draining), `EpisodeActor` (one episode: run, publish, report), `SynthActor` (one synthesis
//!   job), `Publisher` (idempotent `XADD`, learner lag → back-pressure); [`actors::job`]: what
//!   a leased job tells its supervisor (`JobStageChanged` with its `JobStage`, `JobFinished`
//!   with its `JobExit`).
//! - [`session`]: the `Attach` session with the coordinator (credits, heartbeats, reconnects,
//!   results resent until acknowledged).
//! - [`episode`]: one episode's `init → run → grade` ([`episode::EpisodePhase`]), each phase under
//!   its own concurrency limit ([`episode::PhaseLimits`]); Harbor tasks' episodes and OpenSWE
//!   rows' environments beside them.
//! - [`agent`]: SWE-agent's tools (`bash`, `str_replace_editor`, `submit`), the policies
//!   (`replay`, `openai`) and the agent loop with its typed exits; [`harness`]: agent harnesses
//!   agentmill did not write (mini-swe-agent, any command) behind a per-episode LLM gateway.
//! - [`sandbox`]: where commands really run: [`sandbox::docker`] through bollard (a file each
//!   for locked-down creation, commands under a deadline, the disk watchdog, egress, reaping by
//!   label), [`sandbox::process`] for hosts without Docker (bubblewrap or plain processes: its
//!   layout, bwrap arguments, exec and host Python each a file); limits, timeouts that kill the
//!   process group, capped output; and [`sandbox::images`], the host's image cache budget (least
//!   recently used task images removed past `images.budget`); beside them [`sandbox::pull`]
//!   (registry pulls), [`sandbox::build`] (environments built from a Dockerfile) and
//!   [`sandbox::network`] (whether a sandbox may use the network, and its egress policy).
//! - [`repo`]: the repository at its base commit; patches applied with SWE-bench's fallbacks.
//! - [`inputs`]: a task's archive and synthesis inputs, read without trusting the client:
//!   content fetched from the coordinator by hash, host paths only under allowed roots, caps.
//! - [`diff`]: unified diffs parsed by hand, byte-exact; the one diff reader, used by the replay
//!   policy and by synthesis (both as `crate::diff`).
//! - [`grading`]: a log read as the task's reference harness reads it: every harness's log
//!   parsers ([`grading::parsers`]) and rules ([`grading::rules`]), the pytest reader for
//!   agentmill's own rows, and `agentmill-worker grade` / `eval-script` ([`grading::cli`]).
//! - [`synth`]: contextual synthesis — pull requests and commit histories rebuilt as an agent's
//!   information flow (`ctx` records).
//! - [`metrics`]: the worker's Prometheus metrics; [`shell`]: shell command lines built safely.

pub mod actors;
pub mod agent;
pub mod config;
pub mod diff;
pub mod episode;
pub mod grading;
pub mod harness;
pub mod host;
pub mod inputs;
pub mod local;
pub mod metrics;
pub mod repo;
pub mod sandbox;
pub mod session;
pub mod shell;
pub mod synth;

pub use host::synth_offline;
