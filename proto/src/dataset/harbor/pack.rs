//! A Harbor task directory as one tar: what travels with the task (`content:<sha256>`), so a
//! worker never opens a path the client named on its disk.
//!
//! The tar is deterministic (entries sorted, times, owners and names zeroed, modes kept as 0o755
//! or 0o644 by the executable bit), so the same directory always hashes the same and a worker
//! builds one environment once. A symbolic link is kept as a link when it stays inside the task
//! directory and is relative; any other link (absolute, leaving the directory, or dangling) is
//! refused, naming it — in `environment/` too, where a link out would put a host file in the
//! image.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{HarborError, HarborErrorKind};

fn err(dir: &Path, at: impl Into<String>, kind: HarborErrorKind, message: impl Into<String>) -> HarborError {
    HarborError { kind, task_dir: dir.display().to_string(), at: at.into(), message: message.into() }
}

/// Packs the task directory `dir` (every file under it) as a deterministic tar.
pub fn pack_task(dir: &Path) -> Result<Vec<u8>, HarborError> {
    let root = std::fs::canonicalize(dir).map_err(|e| err(dir, ".", HarborErrorKind::Io, format!("cannot be read: {e}")))?;
    let mut files: Vec<PathBuf> = Vec::new();
    collect(dir, &root, &root, &mut files)?;
    files.sort();
    let mut b = tar::Builder::new(Vec::new());
    for rel in files {
        let full = root.join(&rel);
        let at = rel.display().to_string();
        let meta = std::fs::symlink_metadata(&full).map_err(|e| err(dir, &at, HarborErrorKind::Io, format!("cannot be read: {e}")))?;
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let io = |e: std::io::Error| err(dir, &at, HarborErrorKind::Io, format!("cannot be packed: {e}"));
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&full).map_err(io)?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            b.append_link(&mut h, &rel, &target).map_err(io)?;
        } else if meta.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, &rel, std::io::empty()).map_err(io)?;
        } else {
            use std::os::unix::fs::PermissionsExt;
            let exec = meta.permissions().mode() & 0o111 != 0;
            let data = std::fs::read(&full).map_err(io)?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(if exec { 0o755 } else { 0o644 });
            h.set_size(data.len() as u64);
            b.append_data(&mut h, &rel, data.as_slice()).map_err(io)?;
        }
    }
    b.into_inner().map_err(|e| err(dir, ".", HarborErrorKind::Io, format!("cannot be packed: {e}")))
}

fn collect(shown: &Path, root: &Path, here: &Path, out: &mut Vec<PathBuf>) -> Result<(), HarborError> {
    let rd = std::fs::read_dir(here).map_err(|e| err(shown, here.strip_prefix(root).unwrap_or(here).display().to_string(), HarborErrorKind::Io, format!("cannot be read: {e}")))?;
    for entry in rd {
        let entry = entry.map_err(|e| err(shown, ".", HarborErrorKind::Io, format!("cannot be read: {e}")))?;
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let at = rel.display().to_string();
        let ft = entry.file_type().map_err(|e| err(shown, &at, HarborErrorKind::Io, format!("cannot be read: {e}")))?;
        if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| err(shown, &at, HarborErrorKind::Io, format!("cannot be read: {e}")))?;
            let inside = std::fs::canonicalize(&path).map(|c| c.starts_with(root)).unwrap_or(false);
            if target.is_absolute() || !inside {
                return Err(err(
                    shown,
                    &at,
                    HarborErrorKind::Escape,
                    format!("is a symbolic link to {} outside the task directory (or dangling); a task travels as its own files: copy the file in instead of linking to it", target.display()),
                ));
            }
            out.push(rel);
        } else if ft.is_dir() {
            out.push(rel);
            collect(shown, root, &path, out)?;
        } else if ft.is_file() {
            out.push(rel);
        } else {
            return Err(err(shown, &at, HarborErrorKind::Io, "is not a regular file, folder or link; remove it from the task directory"));
        }
    }
    Ok(())
}

/// The entries of a task tar under `folder/` (e.g. `environment`), as a tar of their own; with
/// `strip`, their paths lose the `folder/` prefix (a build context), else they keep it (a tree
/// to unpack at `/`). Links keep their targets. Empty when the folder is absent.
pub fn subtree_tar(task_tar: &[u8], folder: &str, strip: bool) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Archive::new(task_tar);
    let mut b = tar::Builder::new(Vec::new());
    let prefix = Path::new(folder);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Ok(rest) = path.strip_prefix(prefix) else { continue };
        let name: PathBuf = if strip { rest.to_path_buf() } else { path.clone() };
        if name.as_os_str().is_empty() {
            continue;
        }
        let mut h = entry.header().clone();
        match h.entry_type() {
            tar::EntryType::Symlink => {
                let target = entry.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                b.append_link(&mut h, &name, &target)?;
            }
            _ => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                b.append_data(&mut h, &name, data.as_slice())?;
            }
        }
    }
    b.into_inner()
}

/// Whether a task tar holds `path` (a file path relative to the task directory).
pub fn tar_has(task_tar: &[u8], path: &str) -> bool {
    let mut archive = tar::Archive::new(task_tar);
    let Ok(entries) = archive.entries() else { return false };
    entries.flatten().any(|e| e.path().map(|p| p == Path::new(path)).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_packs_the_same_twice_and_its_subtrees_come_apart() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("environment")).expect("mkdir");
        std::fs::create_dir_all(d.path().join("tests")).expect("mkdir");
        std::fs::write(d.path().join("environment/Dockerfile"), "FROM scratch\n").expect("write");
        std::fs::write(d.path().join("tests/test.sh"), "echo 1 > /logs/verifier/reward.txt\n").expect("write");
        std::os::unix::fs::symlink("Dockerfile", d.path().join("environment/Dockerfile.link")).expect("link");
        let a = pack_task(d.path()).expect("packs");
        assert_eq!(a, pack_task(d.path()).expect("packs"), "deterministic");
        let env = subtree_tar(&a, "environment", true).expect("subtree");
        let names: Vec<String> = tar::Archive::new(env.as_slice()).entries().expect("entries").map(|e| e.expect("entry").path().expect("path").display().to_string()).collect();
        assert_eq!(names, ["Dockerfile", "Dockerfile.link"]);
        let tests = subtree_tar(&a, "tests", false).expect("subtree");
        let names: Vec<String> = tar::Archive::new(tests.as_slice()).entries().expect("entries").map(|e| e.expect("entry").path().expect("path").display().to_string()).collect();
        assert_eq!(names, ["tests", "tests/test.sh"]);
        assert!(tar_has(&a, "tests/test.sh") && !tar_has(&a, "solution/solve.sh"));
    }

    #[test]
    fn the_packed_directory_is_content_the_coordinator_checks_or_a_host_path() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/harbor/pass-oracle");
        let row = |content: &str| {
            let mut row = crate::dataset::harbor::task_row(&crate::dataset::harbor::read_task(&dir).expect("reads")).expect("row");
            row["harbor"]["content"] = content.into();
            crate::Task::from_json_object(row).expect("parses")
        };
        let sha = "a".repeat(64);
        let t = row(&format!("content:{sha}"));
        assert_eq!(t.content_refs(), [("harbor.content", sha.as_str())]);
        assert!(t.host_paths().is_empty());
        let t = row("/data/tasks/pass.tar");
        assert_eq!(t.host_paths(), [("harbor.content", "/data/tasks/pass.tar")]);
        assert!(t.content_refs().is_empty());
        let back = crate::Task::try_from(&crate::v1::TaskSpec::from(&t)).expect("round trip");
        assert_eq!(back.harbor.and_then(|h| h.content).as_deref(), Some("/data/tasks/pass.tar"), "the proto carries it");
    }

    #[test]
    fn a_link_out_of_the_task_is_refused_naming_it() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), "x").expect("write");
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("environment")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("environment/secret")).expect("link");
        let e = pack_task(d.path()).expect_err("refused");
        assert_eq!(e.kind, HarborErrorKind::Escape);
        assert_eq!(e.at, "environment/secret");
        std::fs::remove_file(d.path().join("environment/secret")).expect("rm");
        std::os::unix::fs::symlink("../../escape", d.path().join("environment/up")).expect("link");
        assert_eq!(pack_task(d.path()).expect_err("refused").at, "environment/up");
    }
}
