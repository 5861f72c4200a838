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
//! # Python
//!
//! There is no image: `python` in the sandbox is the host's. Under bubblewrap only `/usr` is
//! visible by default; [`HostPython::locate`] finds an interpreter (a pyenv build, a venv with
//! the task's test dependencies) and [`ProcessSpec::with_python`] binds its prefixes read-only
//! and puts its `bin` first on `PATH`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{AGENTMILL_DIR, ExecOutput, ExecRequest, MAX_READ_FILE_BYTES, Sandbox, SandboxError, SandboxSpec, collect_output};

/// The host folders bound read-only into a bubblewrap sandbox (a symlink, as `/bin` on a
/// merged-`/usr` system, is recreated as the same symlink).
pub const SYSTEM_DIRS: [&str; 8] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"];

/// `PATH` of a sandbox unless its environment sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long output is still read after the command and its process group are gone, before a
/// pipe held open by an escaped process is abandoned.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Symlinks followed while resolving one path (Linux's own limit).
const MAX_SYMLINK_HOPS: u32 = 40;

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

    /// Makes `python` in the sandbox the given host interpreter: its prefixes are bound
    /// read-only and its `bin` folder goes first on `PATH`.
    pub fn with_python(mut self, python: &HostPython) -> Self {
        for prefix in &python.prefixes {
            if !self.ro_binds.contains(prefix) {
                self.ro_binds.push(prefix.clone());
            }
        }
        self.path_prepend.insert(0, python.bin_dir.clone());
        self
    }
}

/// A host Python interpreter as the sandbox needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPython {
    /// The folder of the interpreter's executable (a venv's `bin`, a pyenv version's `bin`).
    pub bin_dir: PathBuf,
    /// `sys.prefix` and `sys.base_prefix`, resolved: what must be visible for it to run.
    pub prefixes: Vec<PathBuf>,
}

impl HostPython {
    /// Asks `program` (a name on `PATH` or a path, e.g. a venv's `bin/python`) where it lives.
    pub fn locate(program: impl AsRef<std::ffi::OsStr>) -> Result<HostPython, ProcessSandboxError> {
        let program = program.as_ref();
        let name = program.to_string_lossy().into_owned();
        let script = "import os, sys\nprint(os.path.dirname(os.path.abspath(sys.executable)))\nprint(sys.prefix)\nprint(sys.base_prefix)";
        let out = std::process::Command::new(program)
            .args(["-I", "-c", script])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| ProcessSandboxError::Python { program: name.clone(), reason: e.to_string() })?;
        if !out.status.success() {
            let reason = format!("it exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
            return Err(ProcessSandboxError::Python { program: name, reason });
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        let [bin_dir, prefix, base_prefix] = lines[..] else {
            return Err(ProcessSandboxError::Python { program: name, reason: format!("unexpected answer {text:?}") });
        };
        let mut prefixes = Vec::new();
        for p in [prefix, base_prefix] {
            let resolved = std::fs::canonicalize(p).map_err(|e| ProcessSandboxError::Python { program: name.clone(), reason: format!("prefix {p}: {e}") })?;
            if !prefixes.contains(&resolved) {
                prefixes.push(resolved);
            }
        }
        Ok(HostPython { bin_dir: PathBuf::from(bin_dir), prefixes })
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

/// Whether bubblewrap is installed and can create the namespaces a sandbox uses here (checked
/// once per process by running `true` in such a sandbox).
pub fn bwrap_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let mut args = bwrap_isolation_args(false);
        args.extend(system_bind_args());
        args.extend(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--remount-ro", "/", "--", "true"].map(OsString::from));
        std::process::Command::new("bwrap")
            .args(args)
            .env_clear()
            .env("PATH", DEFAULT_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The namespace and privilege flags of every bubblewrap sandbox.
fn bwrap_isolation_args(network: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--new-session"].map(OsString::from).to_vec();
    if network {
        args.push("--share-net".into());
    }
    args
}

/// Read-only binds (or symlinks) of the host's system folders that exist.
fn system_bind_args() -> Vec<OsString> {
    let mut args = Vec::new();
    for dir in SYSTEM_DIRS {
        match std::fs::symlink_metadata(dir) {
            Ok(md) if md.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(dir) {
                    args.extend([OsString::from("--symlink"), target.into_os_string(), OsString::from(dir)]);
                }
            }
            Ok(md) if md.is_dir() => args.extend(["--ro-bind", dir, dir].map(OsString::from)),
            _ => {}
        }
    }
    args
}

/// A folder the sandbox sees: `at` in the sandbox is `host` on the host.
#[derive(Debug, Clone)]
struct Mount {
    at: PathBuf,
    host: PathBuf,
    writable: bool,
}

/// Where a sandbox path lands.
#[derive(Debug)]
enum Resolved {
    /// Inside a mount: this host path.
    Host { host: PathBuf, writable: bool },
    /// A folder above the mounts (`/`, `/root` above a bound prefix): it exists, holds nothing.
    Skeleton,
    /// Nowhere the sandbox can see.
    Outside,
}

/// The sandbox's folders and how commands run; shared with blocking tasks.
#[derive(Debug)]
struct Layout {
    /// The host folder holding everything.
    root: PathBuf,
    workdir: String,
    agentmill_dir: String,
    tmp_dir: String,
    /// What `read_file` / `write_file` may reach, as the sandbox sees it.
    mounts: Vec<Mount>,
    /// `bwrap` arguments up to the command (`None`: plain processes).
    bwrap: Option<Vec<OsString>>,
    env: BTreeMap<String, String>,
    limits: ProcessLimits,
    episode: String,
}

impl Layout {
    /// Resolves `path` as the sandbox sees it — symlinks read on the host but followed in the
    /// sandbox's namespace, `..` taken after them — to the host path it names.
    fn resolve(&self, path: &str) -> std::io::Result<Resolved> {
        let full = Path::new(&self.workdir).join(path); // an absolute `path` replaces the workdir
        // Names still to walk, the next one last; a symlink's target goes before the rest.
        let mut todo = walkable(&full);
        todo.reverse();
        let mut cur = PathBuf::from("/");
        let mut hops = 0;
        while let Some(name) = todo.pop() {
            if name == ".." {
                cur.pop();
                continue;
            }
            let next = cur.join(&name);
            let Some(mount) = self.mount_for(&next) else {
                if self.mounts.iter().any(|m| m.at.starts_with(&next)) {
                    cur = next;
                    continue;
                }
                return Ok(Resolved::Outside);
            };
            let host = host_path(mount, &next);
            match std::fs::symlink_metadata(&host) {
                Ok(md) if md.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(std::io::Error::other(format!("more than {MAX_SYMLINK_HOPS} symlinks")));
                    }
                    // Relative to the link's folder (`cur`), or from the sandbox's root.
                    let target = std::fs::read_link(&host)?;
                    if target.is_absolute() {
                        cur = PathBuf::from("/");
                    }
                    todo.extend(walkable(&target).into_iter().rev());
                }
                Ok(_) => cur = next,
                // The rest does not exist (yet): it is taken as written.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::NotADirectory => cur = next,
                Err(e) => return Err(e),
            }
        }
        Ok(match self.mount_for(&cur) {
            Some(mount) => Resolved::Host { host: host_path(mount, &cur), writable: mount.writable },
            None if self.mounts.iter().any(|m| m.at.starts_with(&cur)) => Resolved::Skeleton,
            None => Resolved::Outside,
        })
    }

    /// The innermost mount holding `path`.
    fn mount_for(&self, path: &Path) -> Option<&Mount> {
        self.mounts.iter().filter(|m| path.starts_with(&m.at)).max_by_key(|m| m.at.components().count())
    }

    /// The folders `write_file` may write, for messages.
    fn writable_folders(&self) -> String {
        format!("{}, {}, {}", self.workdir, self.agentmill_dir, self.tmp_dir)
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        let host = match self.resolve(path) {
            Ok(Resolved::Host { host, .. }) => host,
            Ok(Resolved::Skeleton) => return Err(SandboxError::NotAFile(path.to_string())),
            Ok(Resolved::Outside) => return Err(SandboxError::NotFound(path.to_string())),
            Err(e) => return Err(path_io_error(path, e)),
        };
        let md = match std::fs::symlink_metadata(&host) {
            Ok(md) => md,
            Err(e) => return Err(path_io_error(path, e)),
        };
        if !md.is_file() {
            return Err(SandboxError::NotAFile(path.to_string()));
        }
        if md.len() > MAX_READ_FILE_BYTES {
            return Err(SandboxError::TooLarge { path: path.to_string(), limit: MAX_READ_FILE_BYTES });
        }
        std::fs::read(&host).map_err(|e| path_io_error(path, e))
    }

    fn write(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        let refused = |reason: String| SandboxError::WriteRefused { path: path.to_string(), reason };
        let host = match self.resolve(path) {
            Ok(Resolved::Host { host, writable: true }) => host,
            Ok(Resolved::Host { writable: false, .. }) => return Err(refused("it is in a read-only host folder of the sandbox".into())),
            Ok(Resolved::Skeleton) => return Err(refused("it is a folder of the sandbox's read-only root".into())),
            Ok(Resolved::Outside) => return Err(refused(format!("it is outside the sandbox's writable folders ({})", self.writable_folders()))),
            Err(e) => return Err(refused(e.to_string())),
        };
        match std::fs::symlink_metadata(&host) {
            Ok(md) if md.is_dir() => return Err(refused("it is a directory".into())),
            Ok(md) if !md.is_file() => {
                let kind = if md.file_type().is_fifo() { "a named pipe" } else { "a special file" };
                return Err(refused(format!("it is {kind}, not a regular file")));
            }
            _ => {}
        }
        if let Some(parent) = host.parent() {
            std::fs::create_dir_all(parent).map_err(|e| refused(format!("cannot create its folder: {e}")))?;
        }
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&host).map_err(|e| refused(e.to_string()))?;
        file.write_all(contents).map_err(|e| match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => SandboxError::Io(format!("write {path}: {e}")),
            _ => refused(e.to_string()),
        })
    }

    fn unpack(&self, dest: &str, tar: Vec<u8>) -> Result<(), SandboxError> {
        let host = match self.resolve(dest) {
            Ok(Resolved::Host { host, writable: true }) => host,
            Ok(_) => return Err(SandboxError::WriteRefused { path: dest.to_string(), reason: format!("archives go into the sandbox's writable folders ({})", self.writable_folders()) }),
            Err(e) => return Err(SandboxError::WriteRefused { path: dest.to_string(), reason: e.to_string() }),
        };
        let tar = if tar.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&tar[..]), &mut out).map_err(|e| SandboxError::Io(format!("gunzip archive: {e}")))?;
            out
        } else {
            tar
        };
        std::fs::create_dir_all(&host).map_err(|e| SandboxError::WriteRefused { path: dest.to_string(), reason: e.to_string() })?;
        // `unpack` skips entries that would land outside `host` (`..`, absolute names, links).
        tar::Archive::new(&tar[..]).unpack(&host).map_err(|e| SandboxError::Io(format!("extract the archive into {dest}: {e}")))
    }

    /// Where a command runs: the sandbox path for bubblewrap's `--chdir`, the host path else.
    fn cwd(&self, req: &ExecRequest) -> String {
        req.workdir.clone().unwrap_or_else(|| self.workdir.clone())
    }
}

/// A path's names and `..`s in order (the root and `.` say nothing more).
fn walkable(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

fn host_path(mount: &Mount, path: &Path) -> PathBuf {
    match path.strip_prefix(&mount.at) {
        Ok(rest) if rest.as_os_str().is_empty() => mount.host.clone(),
        Ok(rest) => mount.host.join(rest),
        Err(_) => mount.host.clone(),
    }
}

fn path_io_error(path: &str, e: std::io::Error) -> SandboxError {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => SandboxError::NotFound(path.to_string()),
        std::io::ErrorKind::IsADirectory => SandboxError::NotAFile(path.to_string()),
        _ => SandboxError::Io(format!("read {path}: {e}")),
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
            check_workdir(&spec.workdir)?;
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

        let parent = spec.temp_root.clone().unwrap_or_else(std::env::temp_dir);
        let root = make_private_dir(&parent, &spec.episode).map_err(|source| ProcessSandboxError::TempDir { path: parent.clone(), source })?;
        let host_work = root.join("workdir");
        let host_agentmill = root.join("agentmill");
        let host_tmp = root.join("tmp");
        for dir in [&host_work, &host_agentmill, &host_tmp] {
            if let Err(source) = std::fs::create_dir(dir) {
                let _ = std::fs::remove_dir_all(&root);
                return Err(ProcessSandboxError::TempDir { path: parent, source });
            }
        }

        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let (workdir, agentmill_dir, tmp_dir, mounts, bwrap) = if isolation == Isolation::Bubblewrap {
            let workdir = spec.workdir.trim_end_matches('/').to_string();
            let mut mounts = vec![
                Mount { at: PathBuf::from(&workdir), host: host_work.clone(), writable: true },
                Mount { at: PathBuf::from(AGENTMILL_DIR), host: host_agentmill.clone(), writable: true },
                Mount { at: PathBuf::from("/tmp"), host: host_tmp.clone(), writable: true },
            ];
            for dir in SYSTEM_DIRS {
                if std::fs::symlink_metadata(dir).is_ok() {
                    mounts.push(Mount { at: PathBuf::from(dir), host: PathBuf::from(dir), writable: false });
                }
            }
            let mut args = bwrap_isolation_args(spec.network);
            args.extend(system_bind_args());
            args.extend(["--proc", "/proc", "--dev", "/dev"].map(OsString::from));
            // The writable folders first, so a read-only bind may sit inside one (a venv in /tmp).
            for (host, at) in [(&host_tmp, "/tmp"), (&host_work, workdir.as_str()), (&host_agentmill, AGENTMILL_DIR)] {
                args.extend([OsString::from("--bind"), host.clone().into_os_string(), OsString::from(at)]);
            }
            for bind in &ro_binds {
                args.extend([OsString::from("--ro-bind"), bind.clone().into_os_string(), bind.clone().into_os_string()]);
                mounts.push(Mount { at: bind.clone(), host: bind.clone(), writable: false });
            }
            args.extend(["--remount-ro", "/"].map(OsString::from));
            env.insert("HOME".into(), "/tmp".into());
            env.insert("TMPDIR".into(), "/tmp".into());
            (workdir, AGENTMILL_DIR.to_string(), "/tmp".to_string(), mounts, Some(args))
        } else {
            let text = |p: &Path| p.to_string_lossy().into_owned();
            let mounts = [&host_work, &host_agentmill, &host_tmp].map(|p| Mount { at: p.clone(), host: p.clone(), writable: true }).to_vec();
            env.insert("HOME".into(), text(&host_tmp));
            env.insert("TMPDIR".into(), text(&host_tmp));
            (text(&host_work), text(&host_agentmill), text(&host_tmp), mounts, None)
        };
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let base_path = env.get("PATH").cloned().unwrap_or_else(|| DEFAULT_PATH.to_string());
        let mut path: Vec<String> = spec.path_prepend.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        path.push(base_path);
        env.insert("PATH".into(), path.join(":"));

        debug!(episode = %spec.episode, root = %root.display(), ?isolation, "process sandbox started");
        let layout = Layout { root, workdir, agentmill_dir, tmp_dir, mounts, bwrap, env, limits: spec.limits.clone(), episode: spec.episode.clone() };
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

    /// The shell preamble that sets the rlimits, then execs `bash -c "$1"`.
    fn preamble(&self, timeout: Duration) -> String {
        let l = &self.layout.limits;
        let cpus = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
        let cpu = l.cpu_seconds.unwrap_or_else(|| (timeout.as_secs() + 1) * cpus).max(1);
        let mut limits = vec![format!("lim -t {cpu}")];
        if let Some(bytes) = l.address_space_bytes {
            limits.push(format!("lim -v {}", (bytes / 1024).max(1)));
        }
        if let Some(n) = l.processes {
            limits.push(format!("lim -u {}", n.max(1)));
        }
        if let Some(bytes) = l.file_size_bytes {
            limits.push(format!("lim -f {}", (bytes / 1024).max(1)));
        }
        // A hard limit already below ours is kept: only lowering is always allowed.
        format!(
            "lim() {{ h=$(ulimit -H \"$1\") || return 1; if [ \"$h\" = unlimited ] || [ \"$h\" -gt \"$2\" ]; then ulimit -S -H \"$1\" \"$2\"; else ulimit -S \"$1\" \"$h\"; fi; }}\n\
             ulimit -S -H -c 0 2>/dev/null\n\
             {} || {{ echo 'agentmill: could not set the sandbox resource limits' >&2; exit 125; }}\n\
             unset -f lim\n\
             exec bash -c \"$1\"\n",
            limits.join(" && ")
        )
    }

    fn command(&self, req: &ExecRequest) -> tokio::process::Command {
        let layout = &self.layout;
        let cwd = layout.cwd(req);
        let shell: [OsString; 5] =
            ["bash".into(), "-c".into(), self.preamble(req.timeout).into(), "agentmill-sandbox".into(), req.command.clone().into()];
        let mut cmd = match &layout.bwrap {
            Some(args) => {
                let mut cmd = tokio::process::Command::new("bwrap");
                cmd.args(args).arg("--chdir").arg(&cwd).arg("--").args(&shell);
                cmd
            }
            None => {
                let mut cmd = tokio::process::Command::new(&shell[0]);
                cmd.args(&shell[1..]).current_dir(&cwd);
                cmd
            }
        };
        cmd.env_clear().envs(&layout.env).envs(&req.env);
        cmd
    }

    /// Runs `bash -c <command>` (see [`Sandbox::exec`]). Should bubblewrap itself fail to set
    /// the sandbox up (a missing `--chdir` folder, say), its message is the output and the exit
    /// code is 1, as for a command that failed.
    pub async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        self.ensure_alive()?;
        let started = Instant::now();
        let episode = &self.layout.episode;
        // stdout and stderr share one pipe, so the output interleaves as it was written.
        let (reader, writer) = std::io::pipe().map_err(|e| SandboxError::Io(format!("create a pipe for episode {episode}: {e}")))?;
        let writer_err = writer.try_clone().map_err(|e| SandboxError::Io(format!("create a pipe for episode {episode}: {e}")))?;
        let mut command = self.command(req);
        command.stdin(Stdio::null()).stdout(writer).stderr(writer_err).process_group(0).kill_on_drop(true);
        let spawned = command.spawn();
        // The command holds our copies of the pipe's write end: drop it, or the pipe never ends.
        drop(command);
        let program = if self.isolation == Isolation::Bubblewrap { "bwrap" } else { "bash" };
        let mut child = spawned.map_err(|e| SandboxError::Io(format!("start {program} for episode {episode}: {e}")))?;
        let group = ProcessGroup(child.id());
        let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader))
            .map_err(|e| SandboxError::Io(format!("read the output of episode {episode}'s command: {e}")))?;

        let finished = CancellationToken::new();
        let stop_reading = {
            let finished = finished.clone();
            async move {
                finished.cancelled().await;
                tokio::time::sleep(DRAIN_GRACE).await;
            }
        };
        let chunks = std::pin::pin!(read_chunks(receiver).take_until(stop_reading));
        let collect = collect_output(chunks, req.max_output, req.keep);
        let wait = async {
            let (status, timed_out) = tokio::select! {
                status = child.wait() => (status, false),
                _ = tokio::time::sleep(req.timeout) => {
                    group.kill();
                    (child.wait().await, true)
                }
            };
            // Whatever the command left running in its group goes too, so the pipe closes.
            group.kill();
            finished.cancel();
            (status, timed_out)
        };
        let (collected, (status, timed_out)) = tokio::join!(collect, wait);
        let status = status.map_err(|e| SandboxError::Io(format!("wait for episode {episode}'s command: {e}")))?;
        let (output, truncated, total_bytes) = collected.map_err(|e| SandboxError::Io(format!("read the output of episode {episode}'s command: {e}")))?;
        let exit_code = status.code().map(i64::from).or_else(|| status.signal().map(|s| 128 + i64::from(s))).unwrap_or(-1);
        Ok(ExecOutput { exit_code, output, truncated, total_bytes, duration: started.elapsed(), timed_out })
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

/// The process group of a running command; [`ProcessGroup::kill`] sends it `SIGKILL`, and so
/// does dropping it (a cancelled exec leaves nothing running).
#[derive(Debug)]
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn kill(&self) {
        // The group's id is the leader's pid (`process_group(0)`); the kernel keeps the id from
        // being reused while any member lives. Never 0 or 1: those would mean "everyone".
        let Some(pid) = self.0.and_then(|id| i32::try_from(id).ok()).filter(|&id| id > 1).and_then(rustix::process::Pid::from_raw) else {
            return;
        };
        match rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => warn!("could not kill process group {}: {e}", pid.as_raw_nonzero()),
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The pipe's bytes as a stream of chunks.
fn read_chunks(receiver: tokio::net::unix::pipe::Receiver) -> impl Stream<Item = std::io::Result<Bytes>> {
    futures::stream::unfold(Some(receiver), |state| async move {
        let mut receiver = state?;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        match receiver.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), Some(receiver))),
            Err(e) => Some((Err(e), None)),
        }
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, SandboxError> + Send + 'static) -> Result<T, SandboxError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SandboxError::Io(format!("a file task of the process sandbox failed: {e}")))?
}

/// A bubblewrap workdir must be an absolute, normalized folder that does not hide or sit in
/// one of the folders the sandbox binds itself.
fn check_workdir(workdir: &str) -> Result<(), ProcessSandboxError> {
    let bad = |reason: &str| ProcessSandboxError::BadWorkdir { workdir: workdir.to_string(), reason: reason.to_string() };
    let path = Path::new(workdir);
    if !path.is_absolute() {
        return Err(bad("it is not an absolute path"));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)) {
        return Err(bad("it contains `.` or `..`"));
    }
    let reserved = SYSTEM_DIRS.iter().copied().chain(["/", "/proc", "/dev", "/tmp", AGENTMILL_DIR]);
    for dir in reserved {
        let dir = Path::new(dir);
        if path == dir || (dir != Path::new("/") && (path.starts_with(dir) || dir.starts_with(path))) {
            return Err(bad(&format!("it overlaps {}, which the sandbox binds itself", dir.display())));
        }
    }
    Ok(())
}

/// Creates `<parent>/agentmill-sandbox-<episode>-<random>` with mode 0700.
fn make_private_dir(parent: &Path, episode: &str) -> std::io::Result<PathBuf> {
    let clean: String = episode.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' }).take(64).collect();
    let mut last = None;
    for _ in 0..16 {
        let dir = parent.join(format!("agentmill-sandbox-{}-{:08x}", clean.trim_matches('-'), fastrand::u32(..)));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free folder name")))
}

/// Removes a sandbox folder, first making its folders writable again if a command took the
/// permission away (`chmod -w`). Errors are logged, never returned.
fn remove_tree(root: &Path) {
    if std::fs::remove_dir_all(root).is_ok() || !root.exists() {
        return;
    }
    fn unlock(dir: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    unlock(&entry.path());
                }
            }
        }
    }
    unlock(root);
    if let Err(e) = std::fs::remove_dir_all(root) {
        warn!(folder = %root.display(), "could not remove the process sandbox's folder: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(mounts: Vec<Mount>) -> Layout {
        Layout {
            root: PathBuf::from("/nonexistent-root"),
            workdir: "/testbed".into(),
            agentmill_dir: AGENTMILL_DIR.into(),
            tmp_dir: "/tmp".into(),
            mounts,
            bwrap: None,
            env: BTreeMap::new(),
            limits: ProcessLimits::default(),
            episode: "unit".into(),
        }
    }

    #[test]
    fn paths_resolve_lexically_inside_mounts_and_escapes_land_outside() {
        let base = std::env::temp_dir().join(format!("agentmill-resolve-{}", std::process::id()));
        let work = base.join("work");
        std::fs::create_dir_all(&work).expect("make a test folder");
        std::os::unix::fs::symlink("/etc", work.join("etc-link")).expect("make a symlink");
        std::os::unix::fs::symlink("sub/../..", work.join("up")).expect("make a symlink");
        let l = layout(vec![
            Mount { at: "/testbed".into(), host: work.clone(), writable: true },
            Mount { at: "/usr".into(), host: "/usr".into(), writable: false },
        ]);
        let host = |p: &str| match l.resolve(p).expect("resolve") {
            Resolved::Host { host, writable } => Some((host, writable)),
            _ => None,
        };
        assert_eq!(host("/testbed/a/b.py"), Some((work.join("a/b.py"), true)));
        assert_eq!(host("a/./b.py"), Some((work.join("a/b.py"), true)), "relative to the workdir");
        assert_eq!(host("/testbed/x/../../usr/bin"), Some((PathBuf::from("/usr/bin"), false)));
        assert!(matches!(l.resolve("/testbed/../../etc/passwd").expect("resolve"), Resolved::Outside));
        assert!(matches!(l.resolve("/testbed/etc-link/passwd").expect("resolve"), Resolved::Outside), "an absolute symlink is taken in the sandbox");
        assert!(matches!(l.resolve("/testbed/up/etc").expect("resolve"), Resolved::Outside), "a relative symlink climbing out");
        assert!(matches!(l.resolve("/").expect("resolve"), Resolved::Skeleton));
        std::fs::remove_dir_all(&base).expect("clean up");
    }

    #[test]
    fn workdirs_that_overlap_the_sandboxs_own_binds_are_refused() {
        assert!(check_workdir("/testbed").is_ok());
        assert!(check_workdir("/home/user/repo").is_ok());
        for bad in ["testbed", "/", "/usr/src/app", "/tmp/x", "/agentmill", "/etc", "/a/../b"] {
            let e = check_workdir(bad).expect_err(bad);
            assert!(e.to_string().contains("such as /testbed"), "{e}");
        }
    }
}
