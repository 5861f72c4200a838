//! Bubblewrap, the process sandbox's isolation: whether `bwrap` can run here, the arguments that
//! give a sandbox its own namespaces and a read-only root with the host's system folders, and
//! which workdirs it can bind (see the parent module for what that isolates).

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use super::{DEFAULT_PATH, ProcessSandboxError};
use crate::sandbox::AGENTMILL_DIR;

/// The host folders bound read-only into a bubblewrap sandbox (a symlink, as `/bin` on a
/// merged-`/usr` system, is recreated as the same symlink).
pub const SYSTEM_DIRS: [&str; 8] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"];

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

/// Every `bwrap` argument of a sandbox up to `--chdir`: its namespaces, the host's system
/// folders read-only, its own `/proc` and `/dev`, the `writable` host folders bound where the
/// sandbox sees them (host folder, sandbox path), the `ro_binds` at their own paths, and the
/// root remounted read-only.
pub(super) fn sandbox_args(network: bool, writable: [(&Path, &str); 3], ro_binds: &[PathBuf]) -> Vec<OsString> {
    let mut args = bwrap_isolation_args(network);
    args.extend(system_bind_args());
    args.extend(["--proc", "/proc", "--dev", "/dev"].map(OsString::from));
    // The writable folders first, so a read-only bind may sit inside one (a venv in /tmp).
    for (host, at) in writable {
        args.extend([OsString::from("--bind"), host.as_os_str().to_owned(), OsString::from(at)]);
    }
    for bind in ro_binds {
        args.extend([OsString::from("--ro-bind"), bind.clone().into_os_string(), bind.clone().into_os_string()]);
    }
    args.extend(["--remount-ro", "/"].map(OsString::from));
    args
}

/// A bubblewrap workdir must be an absolute, normalized folder that does not hide or sit in
/// one of the folders the sandbox binds itself.
pub(super) fn check_workdir(workdir: &str) -> Result<(), ProcessSandboxError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
