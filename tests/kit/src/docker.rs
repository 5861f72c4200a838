//! The Docker CLI for tests, and the rule every Docker test follows: where no engine answers or
//! the sandbox image is missing it fails loudly, naming the fix, unless the run declares
//! `AGENTMILL_NO_DOCKER=1`; then it says that it skips ([`available`]).
//!
//! A test that needs the worker's own client (`DockerEngine`) asks [`available`] first and
//! connects after: the kit itself talks to Docker only through the `docker` CLI, which needs no
//! runtime and works while a failed assertion unwinds (cleanup in `Drop`).

use std::process::{Command, Output, Stdio};

/// The sandbox image `deploy/setup.sh` builds.
pub const SANDBOX_IMAGE: &str = "agentmill/sandbox-python:bookworm";

/// Whether the run declares that it has no Docker engine (`AGENTMILL_NO_DOCKER=1`).
pub fn declared_absent() -> bool {
    std::env::var("AGENTMILL_NO_DOCKER").is_ok_and(|v| v == "1")
}

/// Whether `test` skips its Docker part: `true`, after saying so, when the run declares
/// `AGENTMILL_NO_DOCKER=1`. Checks nothing else (see [`available`]).
pub fn skipped(test: &str) -> bool {
    let absent = declared_absent();
    if absent {
        eprintln!("SKIPPED {test}: AGENTMILL_NO_DOCKER=1 says this run has no Docker engine");
    }
    absent
}

/// Whether `test` runs its Docker part: `false` (announced) only when the run declares
/// `AGENTMILL_NO_DOCKER=1`; otherwise the engine must answer and the sandbox image be built, or
/// the test panics naming the fix.
pub fn available(test: &str) -> bool {
    if skipped(test) {
        return false;
    }
    if let Err(e) = engine() {
        panic!("{test} needs Docker: {e}. (Set AGENTMILL_NO_DOCKER=1 to declare a run without Docker.)");
    }
    if let Err(e) = image_id(SANDBOX_IMAGE) {
        panic!("{test} needs the sandbox image: {e}. Run deploy/setup.sh.");
    }
    true
}

/// Whether a Docker engine answers the CLI (`docker version`, the server's part).
pub fn engine() -> Result<(), String> {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("the docker CLI cannot run ({e}); install Docker"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("no engine answers the docker CLI: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The id of `image` on this host, or why it cannot be had (not built, no engine).
pub fn image_id(image: &str) -> Result<String, String> {
    let out = output(&["image", "inspect", "--format", "{{.Id}}", image]);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Panics unless `image` is on this host: "the image ... is missing (why): `fix`".
pub fn require_image(image: &str, fix: &str) {
    if let Err(e) = image_id(image) {
        panic!("the image {image} is missing ({e}): {fix}");
    }
}

/// Whether Docker has `reference` on this host.
pub fn on_host(reference: &str) -> bool {
    Command::new("docker").args(["image", "inspect", reference]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Runs the docker CLI; panics with its output when it fails; returns stdout, trimmed.
pub fn docker(args: &[&str]) -> String {
    let out = output(args);
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs the docker CLI and returns what it did, success or not (panics only when it cannot run).
pub fn output(args: &[&str]) -> Output {
    Command::new("docker").args(args).stdin(Stdio::null()).output().expect("run the docker CLI (install Docker, or set AGENTMILL_NO_DOCKER=1)")
}

/// Runs the docker CLI for cleanup: output and failures ignored (safe in `Drop`).
pub fn quiet(args: &[&str]) {
    let _ = Command::new("docker").args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_finds_the_sandbox_image_and_names_a_missing_one() {
        if !available("the_cli_finds_the_sandbox_image_and_names_a_missing_one") {
            return;
        }
        let id = image_id(SANDBOX_IMAGE).expect("available() checked the image");
        assert!(id.starts_with("sha256:"), "{id}");
        assert!(on_host(SANDBOX_IMAGE));
        let missing = "agentmill-test/no-such-image:never";
        assert!(!on_host(missing));
        assert!(image_id(missing).is_err_and(|e| e.to_lowercase().contains("no such image")));
        let panic = std::panic::catch_unwind(|| require_image(missing, "build it with nothing.sh")).expect_err("a missing image panics");
        let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.starts_with(&format!("the image {missing} is missing (")) && text.ends_with("): build it with nothing.sh"), "{text}");
        assert_eq!(docker(&["image", "inspect", "--format", "{{.Id}}", SANDBOX_IMAGE]), id);
    }
}
