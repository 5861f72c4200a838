//! The process sandbox backend, for hosts without Docker: **weaker isolation** than a container.
//!
//! A [`ProcessSandbox`] is a private folder on the host (mode 0700 under `TMPDIR`) holding the
//! repository, agentmill's own files and a private `/tmp`. Commands run as `bash -c` child
//! processes of the worker: under [bubblewrap](https://github.com/containers/bubblewrap) when
//! `bwrap` is installed and can create namespaces ([`bwrap_available`]), as plain processes
//! otherwise. Callers put the repository in place with [`ProcessSandbox::upload_tar`] (as with
//! [`super::docker::DockerContainer::upload_tar`]) and then use the [`Sandbox`] trait like any
//! other backend.
//!
//! ```no_run
//! # async fn demo(archive: Vec<u8>) -> Result<(), agentmill_worker::sandbox::SandboxError> {
//! use agentmill_worker::sandbox::{ExecRequest, Sandbox};
//! use agentmill_worker::sandbox::process::{ProcessSandbox, ProcessSpec};
//!
//! let sandbox = ProcessSandbox::start(&ProcessSpec::new("/testbed", "episode-1")).await?;
//! sandbox.upload_tar(sandbox.workdir(), archive).await?;
//! let out = sandbox.exec(&ExecRequest::new("git status --short")).await?;
//! println!("exit {}: {}", out.exit_code, out.output);
//! sandbox.remove().await;
//! # Ok(()) }
//! ```
//!
//! # What is isolated
//!
//! Under bubblewrap (`bwrap --unshare-all --cap-drop ALL --die-with-parent --new-session`):
//! - **filesystem**: the sandbox sees a fresh root (read-only) with the host's `/usr`, `/etc`,
//!   `/bin`, `/sbin` and `/lib*` bound **read-only**, its workdir bound read-write at the path the
//!   task expects (e.g. `/testbed`, so [`Sandbox::workdir`] is the same as in a container), its own
//!   [`AGENTMILL_DIR`] and a private `/tmp` that persists between calls, `/proc` of its own pid
//!   namespace, a minimal `/dev`, and the read-only binds the spec adds (a Python prefix).
//!   Nothing else of the host (home folders, `/var`, other sandboxes, the worker's config) is
//!   visible; writes outside the three writable folders fail with "Read-only file system".
//!   `/etc` is the host's: what in it the worker's user may read, the sandbox may read too.
//! - **network**: a network namespace of its own with only `lo` (unless the spec asks for the
//!   network), so neither the internet nor the host's loopback services are reachable.
//! - **processes**: a pid namespace of its own: the sandbox cannot see or signal the host's
//!   processes, and when the command ends or is killed the whole namespace dies with it.
//! - **privileges**: every capability dropped, a new session (no terminal injection); IPC, UTS
//!   and cgroup namespaces of its own; no seccomp filter beyond bubblewrap's own.
//! - **lifetime**: the sandbox dies with the worker (`--die-with-parent`).
//!
//! As plain processes (no bubblewrap): only the workdir is a private copy; the command runs with
//! the worker's user, sees the whole host filesystem, the host's network and processes, and can
//! write wherever that user can; what it starts outlives a crashed worker. The workdir is then
//! the real host folder
//! ([`Sandbox::workdir`] says which) and [`ProcessSandbox::agentmill_dir`] replaces
//! [`AGENTMILL_DIR`]. Use plain mode only for trusted policies (e.g. `replay`) or on a
//! throwaway host; [`ProcessSandbox::start`] logs a warning when `Isolation::Auto` falls back to it.
//!
//! In both modes:
//! - **limits**: rlimits set by a `bash` preamble before the command is exec'd (so no `unsafe`
//!   `pre_exec`): address space (`ulimit -v`), processes (`ulimit -u`), CPU time (`ulimit -t`),
//!   file size (`ulimit -f`), no core files. They are per process, not per sandbox:
//!   `RLIMIT_AS` counts virtual memory (a runtime that reserves much address space may need
//!   more); `RLIMIT_NPROC` counts every process **of the worker's user** and is **not enforced
//!   for root**, so a fork bomb is only bounded when the worker runs as a dedicated unprivileged
//!   user (under bubblewrap the step timeout then kills the whole pid namespace at once);
//!   CPU *shares* (`SandboxLimits::cpus`) and total memory are not limited (that needs cgroups).
//! - **timeouts**: every command runs in a process group of its own; at the deadline the group
//!   is killed (`SIGKILL`), and when the command ends, what it left running in the background
//!   is killed too, so nothing outlives the call (unlike a container, where a background job
//!   survives until the next call). A plain-mode process that leaves its group (`setsid`)
//!   escapes this kill, but still dies once it has used its CPU-time limit.
//! - **file access** by the worker ([`Sandbox::read_file`], [`Sandbox::write_file`],
//!   [`ProcessSandbox::upload_tar`]) resolves paths, symlinks included, as the sandbox sees
//!   them and refuses any that lands outside the sandbox's folders (`..`, absolute symlinks to
//!   the host): a model cannot make the worker read or write a host file by a crafted path.
//! - **no disk quota**: the sandbox can fill the disk its temp folder lives on (each file is
//!   capped by the file-size limit, not their sum).
//!
//! # Where things are
//!
//! This file holds the spec, the errors and a [`ProcessSandbox`]'s life (start, files,
//! removal); `layout.rs` the sandbox's host folder and how a path as the sandbox sees it maps
//! onto that folder (what keeps the worker's file access inside); `bwrap.rs` bubblewrap's
//! arguments and [`bwrap_available`]; `exec.rs` one command's run (rlimits, process group,
//! output); `python.rs` the host interpreter a sandbox runs: there is no image, `python` in the
//! sandbox is the host's ([`HostPython::locate`], [`ProcessSpec::with_python`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{debug, warn};

use super::{ExecOutput, ExecRequest, Sandbox, SandboxError, SandboxSpec};

mod bwrap;
mod exec;
mod layout;
mod python;

pub use bwrap::{SYSTEM_DIRS, bwrap_available};
pub use python::HostPython;

use layout::{Layout, remove_tree};

/// `PATH` of a sandbox unless its environment sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How commands are isolated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Isolation {
    /// Bubblewrap when [`bwrap_available`], plain processes otherwise (with a warning).
    #[default]
    Auto,
    /// Bubblewrap, or [`ProcessSandbox::start`] fails.
    Bubblewrap,
    /// Plain child processes of the worker: rlimits and timeouts only.
    Plain,
}

/// Resource limits of every command, set as rlimits in the command's shell (per process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessLimits {
    /// `RLIMIT_AS`: address space of each process, bytes.
    pub address_space_bytes: Option<u64>,
    /// `RLIMIT_NPROC`: processes of the worker's user (not enforced for root).
    pub processes: Option<u32>,
    /// `RLIMIT_CPU`: CPU seconds of each process; `None`: the call's timeout times the host's
    /// CPU count, so only a process that escaped the timeout's kill ever meets it.
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_FSIZE`: size of any file a process writes, bytes.
    pub file_size_bytes: Option<u64>,
}

impl Default for ProcessLimits {
    /// 4 GiB of address space, 1024 processes, CPU time from the call's timeout, 1 GiB files.
    fn default() -> Self {
        ProcessLimits {
            address_space_bytes: Some(4 << 30),
            processes: Some(1024),
            cpu_seconds: None,
            file_size_bytes: Some(1 << 30),
        }
    }
}

/// What to start: the process backend's counterpart of [`SandboxSpec`].
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Where the repository appears in the sandbox under bubblewrap (e.g. `/testbed`); in plain
    /// mode the workdir is a host folder and this path is not used.
    pub workdir: String,
    /// Environment of every command (the worker's own environment is never passed on).
    pub env: BTreeMap<String, String>,
    /// Whether commands may use the network (always true in plain mode).
    pub network: bool,
    /// Limits of every command.
    pub limits: ProcessLimits,
    /// The episode the sandbox serves (for logs and the folder's name).
    pub episode: String,
    /// Bubblewrap, plain processes, or whichever is available.
    pub isolation: Isolation,
    /// Extra host folders bound read-only at the same path (e.g. a Python prefix).
    pub ro_binds: Vec<PathBuf>,
    /// Folders put before the default `PATH`.
    pub path_prepend: Vec<PathBuf>,
    /// Where the sandbox's folder is created; default: the system temp folder (`TMPDIR`).
    pub temp_root: Option<PathBuf>,
}

impl ProcessSpec {
    /// A spec with the environment every episode gets (as [`SandboxSpec::new`]), default
    /// limits, no network and [`Isolation::Auto`].
    pub fn new(workdir: impl Into<String>, episode: impl Into<String>) -> Self {
        // A container spec's defaults; its image and worker label mean nothing here.
        ProcessSpec::from_sandbox_spec(&SandboxSpec::new("", workdir, "", episode))
    }

    /// The process spec of a container spec: the same workdir, environment, network and
    /// episode; memory becomes the address-space limit and pids the process limit. The image
    /// and `cpus` have no meaning here (the host's programs run, CPU shares need cgroups).
    pub fn from_sandbox_spec(spec: &SandboxSpec) -> Self {
        let mut limits = ProcessLimits::default();
        if let Some(memory) = spec.limits.memory_bytes {
            limits.address_space_bytes = Some(memory);
        }
        if let Some(pids) = spec.limits.pids {
            limits.processes = Some(pids);
        }
        ProcessSpec {
            workdir: spec.workdir.clone(),
            env: spec.env.clone(),
            network: spec.network,
            limits,
            episode: spec.episode.clone(),
            isolation: Isolation::Auto,
            ro_binds: Vec::new(),
            path_prepend: Vec::new(),
            temp_root: None,
        }
    }
}

/// Why a process sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProcessSandboxError {
    /// The sandbox's folder could not be made.
    #[error("cannot create the sandbox folder under {path}: {source}; point TMPDIR (or ProcessSpec::temp_root) at a writable folder")]
    TempDir {
        /// The parent folder.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Bubblewrap was required and cannot run here.
    #[error("bubblewrap is required (Isolation::Bubblewrap) but `bwrap` is not installed or cannot create namespaces here; install bubblewrap, allow unprivileged user namespaces, or choose Isolation::Plain")]
    BwrapUnavailable,
    /// The workdir cannot be bound where the spec says.
    #[error("workdir {workdir:?} cannot be used: {reason}; use an absolute folder outside the host's system folders, such as /testbed")]
    BadWorkdir {
        /// The spec's workdir.
        workdir: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An extra read-only bind does not exist.
    #[error("read-only bind {path} cannot be used: {reason}; bind an absolute folder that exists on this host")]
    BadBind {
        /// The folder.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The host interpreter could not be located.
    #[error("cannot locate the host Python {program:?}: {reason}; install python3 or name an interpreter (e.g. a venv's bin/python)")]
    Python {
        /// The interpreter asked.
        program: String,
        /// What went wrong.
        reason: String,
    },
}

impl From<ProcessSandboxError> for SandboxError {
    fn from(e: ProcessSandboxError) -> Self {
        SandboxError::Io(e.to_string())
    }
}

/// A sandbox of child processes in a private host folder. See the module doc for what it
/// isolates. The folder is removed by [`ProcessSandbox::remove`] or on drop.
#[derive(Debug)]
pub struct ProcessSandbox {
    layout: Arc<Layout>,
    isolation: Isolation,
    removed: AtomicBool,
}

impl ProcessSandbox {
    /// Creates the sandbox's folder (empty workdir, agentmill folder, private tmp) and decides
    /// how commands run. Fails when bubblewrap was required and is not usable, or when the
    /// workdir or a bind cannot be used.
    pub async fn start(spec: &ProcessSpec) -> Result<ProcessSandbox, ProcessSandboxError> {
        let spec = spec.clone();
        match tokio::task::spawn_blocking(move || ProcessSandbox::start_blocking(&spec)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ProcessSandboxError::TempDir { path: std::env::temp_dir(), source: std::io::Error::other(format!("the runtime stopped: {e}")) }),
        }
    }

    fn start_blocking(spec: &ProcessSpec) -> Result<ProcessSandbox, ProcessSandboxError> {
        let isolation = match spec.isolation {
            Isolation::Plain => Isolation::Plain,
            Isolation::Bubblewrap if bwrap_available() => Isolation::Bubblewrap,
            Isolation::Bubblewrap => return Err(ProcessSandboxError::BwrapUnavailable),
            Isolation::Auto if bwrap_available() => Isolation::Bubblewrap,
            Isolation::Auto => {
                warn!(episode = %spec.episode, "bubblewrap is not usable here: the process sandbox runs plain processes that see the host's filesystem, network and processes");
                Isolation::Plain
            }
        };
        if isolation == Isolation::Bubblewrap {
            bwrap::check_workdir(&spec.workdir)?;
        }
        let mut ro_binds = Vec::new();
        for bind in &spec.ro_binds {
            let bad = |reason: String| ProcessSandboxError::BadBind { path: bind.clone(), reason };
            if !bind.is_absolute() {
                return Err(bad("it is not an absolute path".into()));
            }
            let resolved = std::fs::canonicalize(bind).map_err(|e| bad(e.to_string()))?;
            if !resolved.is_dir() {
                return Err(bad("it is not a folder".into()));
            }
            ro_binds.push(resolved);
        }
        let layout = Layout::create(spec, isolation, &ro_binds)?;
        debug!(episode = %spec.episode, root = %layout.root.display(), ?isolation, "process sandbox started");
        Ok(ProcessSandbox { layout: Arc::new(layout), isolation, removed: AtomicBool::new(false) })
    }

    /// How this sandbox's commands run: [`Isolation::Bubblewrap`] or [`Isolation::Plain`].
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The host folder that holds the sandbox's files (`workdir/`, `agentmill/`, `tmp/`).
    pub fn host_root(&self) -> &Path {
        &self.layout.root
    }

    /// Where agentmill's own files go in this sandbox: [`AGENTMILL_DIR`] under bubblewrap, a
    /// host folder in plain mode.
    pub fn agentmill_dir(&self) -> &str {
        &self.layout.agentmill_dir
    }

    /// Extracts a tar archive (optionally gzip-compressed) at `dest`, a folder in the sandbox
    /// (created if missing) such as [`Sandbox::workdir`].
    pub async fn upload_tar(&self, dest: &str, tar: Vec<u8>) -> Result<(), SandboxError> {
        self.ensure_alive()?;
        let layout = self.layout.clone();
        let dest = dest.to_string();
        blocking(move || layout.unpack(&dest, tar)).await
    }

    /// Deletes the sandbox's folder; afterwards the sandbox is no longer alive. Never fails: an
    /// error is logged.
    pub async fn remove(&self) {
        if self.removed.swap(true, Ordering::SeqCst) {
            return;
        }
        let root = self.layout.root.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || remove_tree(&root)).await {
            warn!(episode = %self.layout.episode, "removing the process sandbox's folder failed: {e}");
        }
    }

    fn ensure_alive(&self) -> Result<(), SandboxError> {
        if self.removed.load(Ordering::SeqCst) {
            return Err(SandboxError::Io(format!("the process sandbox of episode {} was removed", self.layout.episode)));
        }
        Ok(())
    }
}

impl Drop for ProcessSandbox {
    fn drop(&mut self) {
        if !self.removed.swap(true, Ordering::SeqCst) {
            remove_tree(&self.layout.root);
        }
    }
}

#[async_trait::async_trait]
impl Sandbox for ProcessSandbox {
    fn agentmill_dir(&self) -> &str {
        ProcessSandbox::agentmill_dir(self)
    }

    fn episode(&self) -> &str {
        &self.layout.episode
    }

    fn workdir(&self) -> &str {
        &self.layout.workdir
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        ProcessSandbox::exec(self, req).await
    }

    async fn read_file(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        self.ensure_alive()?;
        let layout = self.layout.clone();
        let path = path.to_string();
        blocking(move || layout.read(&path)).await
    }

    async fn write_file(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        self.ensure_alive()?;
        let layout = self.layout.clone();
        let path = path.to_string();
        let contents = contents.to_vec();
        blocking(move || layout.write(&path, &contents)).await
    }

    async fn is_alive(&self) -> bool {
        !self.removed.load(Ordering::SeqCst) && self.layout.root.is_dir()
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, SandboxError> + Send + 'static) -> Result<T, SandboxError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SandboxError::Io(format!("a file task of the process sandbox failed: {e}")))?
}
