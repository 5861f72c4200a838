//! agentmill's test kit: what the tests of every crate share, written once.
//!
//! - [`TestRedis`]: the suite's private Redis (`AGENTMILL_TEST_REDIS_URL`, which `deploy/test.sh`
//!   sets), or a `redis-server` of the test's own on a free port; [`TestRedis::private`] always
//!   starts its own, for a test that pauses or stops it.
//! - [`free_port`], [`unique`] names, [`workspace`] paths, [`read`] and [`run`].
//! - [`docker`]: the Docker CLI, and the rule every Docker test follows — fail loudly, naming
//!   the fix, where no engine answers or the sandbox image is missing, unless the run declares
//!   `AGENTMILL_NO_DOCKER=1` (then the test says it skips).
//! - [`registry`]: Debian's `docker-registry` on a loopback port, and a registry that hangs.
//! - [`git`]: repositories with a fixed identity and date, so commit ids repeat.
//! - [`guide_check`] and [`dashboard_check`]: the operator guide and the Grafana dashboard
//!   checked against what the services declare and export.
//!
//! Nothing here is mocked: these helpers start and drive the real programs.
//!
//! The kit depends on no crate of the workspace, so every crate — `agentmill-proto` at the bottom
//! included — can dev-depend on it without a cycle; everything that needs a workspace type (a
//! `DockerEngine`, a `Task`, a Redis connection) stays in that crate's tests and calls the kit.
//! Its one dependency, `serde_json`, is for the guide checks, which read configurations
//! serialized as JSON values; every crate of the workspace builds it already.

pub mod dashboard_check;
pub mod docker;
pub mod git;
pub mod guide_check;
pub mod redis_server;
pub mod registry;

use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

pub use docker::SANDBOX_IMAGE;
pub use redis_server::TestRedis;

/// The workspace root, as a plain path (no `..`: a sandbox binds the paths it is given).
pub fn workspace() -> PathBuf {
    // This crate sits at tests/kit/.
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("tests/kit/ sits in the workspace").to_path_buf()
}

/// A file's text; panics naming the file when it cannot be read.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind a free port")
}

/// A name no other test, no other process and no earlier run uses, for keys, streams,
/// containers, networks and files: `prefix-<pid>-<count>-<48 random bits>`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{:012x}", std::process::id(), random_u64() & 0xffff_ffff_ffff)
}

/// 64 random bits: std's hasher with its per-process random keys, over the time and a count.
pub fn random_u64() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one((std::time::SystemTime::now(), NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// Runs `cmd`, failing the test with its output when it fails.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_keep_their_prefix() {
        let names: std::collections::BTreeSet<String> = (0..1000).map(|_| unique("kit")).collect();
        assert_eq!(names.len(), 1000);
        assert!(names.iter().all(|n| n.starts_with(&format!("kit-{}-", std::process::id()))), "{names:?}");
    }

    #[test]
    fn the_workspace_is_the_repositorys_root() {
        assert!(workspace().join("Cargo.toml").is_file() && workspace().join("tests/kit/Cargo.toml").is_file(), "{}", workspace().display());
        assert!(!workspace().components().any(|c| c == std::path::Component::ParentDir), "{}", workspace().display());
        assert!(read(&workspace().join("Cargo.toml")).contains("[workspace]"));
    }

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
