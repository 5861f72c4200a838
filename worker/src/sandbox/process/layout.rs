//! A process sandbox's folders: one private host folder (mode 0700) holding the workdir,
//! agentmill's folder and a private `/tmp`, and the map from a path as the sandbox sees it to
//! the host path it names. The worker's own file access ([`Sandbox::read_file`],
//! [`Sandbox::write_file`], [`super::ProcessSandbox::upload_tar`]) goes through
//! [`Layout::resolve`], which follows symlinks as the sandbox's namespace would and refuses a
//! path that lands outside the sandbox's folders, so a crafted path cannot reach a host file.
//!
//! [`Sandbox::read_file`]: crate::sandbox::Sandbox::read_file
//! [`Sandbox::write_file`]: crate::sandbox::Sandbox::write_file

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _};
use std::path::{Component, Path, PathBuf};

use tracing::warn;

use super::bwrap::{self, SYSTEM_DIRS};
use super::{DEFAULT_PATH, Isolation, ProcessLimits, ProcessSandboxError, ProcessSpec};
use crate::sandbox::{AGENTMILL_DIR, ExecRequest, MAX_READ_FILE_BYTES, SandboxError};

/// Symlinks followed while resolving one path (Linux's own limit).
const MAX_SYMLINK_HOPS: u32 = 40;

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
pub(super) struct Layout {
    /// The host folder holding everything.
    pub(super) root: PathBuf,
    /// The workdir as commands see it.
    pub(super) workdir: String,
    /// agentmill's folder as commands see it.
    pub(super) agentmill_dir: String,
    tmp_dir: String,
    /// What `read_file` / `write_file` may reach, as the sandbox sees it.
    mounts: Vec<Mount>,
    /// `bwrap` arguments up to the command (`None`: plain processes).
    pub(super) bwrap: Option<Vec<OsString>>,
    /// Environment of every command.
    pub(super) env: BTreeMap<String, String>,
    /// Limits of every command.
    pub(super) limits: ProcessLimits,
    /// The episode served, for messages.
    pub(super) episode: String,
}

impl Layout {
    /// Makes the sandbox's folder under `spec.temp_root` (the system temp folder by default)
    /// with its three writable folders, and lays out what commands see: under bubblewrap the
    /// spec's workdir, [`AGENTMILL_DIR`], `/tmp`, the host's system folders and `ro_binds`
    /// (resolved folders); in plain mode the host folders themselves.
    pub(super) fn create(spec: &ProcessSpec, isolation: Isolation, ro_binds: &[PathBuf]) -> Result<Layout, ProcessSandboxError> {
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
            mounts.extend(ro_binds.iter().map(|bind| Mount { at: bind.clone(), host: bind.clone(), writable: false }));
            let writable = [(host_tmp.as_path(), "/tmp"), (host_work.as_path(), workdir.as_str()), (host_agentmill.as_path(), AGENTMILL_DIR)];
            let args = bwrap::sandbox_args(spec.network, writable, ro_binds);
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
        Ok(Layout { root, workdir, agentmill_dir, tmp_dir, mounts, bwrap, env, limits: spec.limits.clone(), episode: spec.episode.clone() })
    }

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

    pub(super) fn read(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
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

    pub(super) fn write(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
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

    pub(super) fn unpack(&self, dest: &str, tar: Vec<u8>) -> Result<(), SandboxError> {
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
    pub(super) fn cwd(&self, req: &ExecRequest) -> String {
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
pub(super) fn remove_tree(root: &Path) {
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
}
