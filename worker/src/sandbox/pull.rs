//! Image pulls from registries: by tag or by pinned digest, with the registry's credentials,
//! within a deadline, one pull of an image at a time, and ahead of need.
//!
//! - **Pinned digests.** A task's image `repo@sha256:<64 hex>` is pulled by that digest, and
//!   after the pull (or when the image is already here) Docker's `RepoDigests` for it must hold
//!   the digest, else the episode ends `sandbox_error` naming both
//!   ([`SandboxError::DigestMismatch`]). The digest that ran — the pinned one, or for a tag the
//!   registry digest of that repository — is what [`DockerEngine::image_digest`] returns and the
//!   record's provenance keeps.
//! - **Credentials** come from `[images.registries."HOST"]` (user name, password from a file or an
//!   environment variable, read at start) and go to the engine with the pull of an image whose
//!   reference names that host (`docker.io` for references without one). They are never logged:
//!   [`RegistryCredentials`] prints the user names only.
//! - **The deadline** (`images.pull_timeout`) ends a pull that stops moving or takes too long; the
//!   request is dropped, which makes the engine cancel it.
//! - **One pull per image.** A pull asked for while the same image (by normalized reference) is
//!   already being pulled waits for that one instead of starting another
//!   (`agentmill_worker_image_pulls_joined_total`). A pull runs in its own task, to its end or its
//!   deadline, even when the episodes waiting for it are cancelled.
//! - **Pre-pulls.** A leased task waiting for an `init` slot has its image pulled ahead
//!   ([`DockerEngine::prefetch`]), at most `images.prefetch` at once, so the pull overlaps the
//!   other episodes' work; when the episode reaches `init` it finds the image here, or joins the
//!   pull still under way.
//!
//! Every pull is counted in [`PullMetrics`] (started by kind, ended by result, failures by
//! reason, bytes, seconds, in flight).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bollard::auth::DockerCredentials;
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::StreamExt;
use tracing::{debug, info, warn};

use super::SandboxError;
use super::docker::DockerEngine;
use super::images::normalize_reference;
use crate::config::RegistryLogin;
use crate::metrics::PullMetrics;

/// The parts of an image reference a pull needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The repository, with its registry host when it names one (`127.0.0.1:5000/team/img`).
    pub repository: &'a str,
    /// The tag (`None`: `latest`, or a pinned digest).
    pub tag: Option<&'a str>,
    /// The pinned digest (`sha256:…`), after `@`.
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    /// Splits `image` (`repo[:tag][@digest]`).
    pub fn parse(image: &'a str) -> ImageRef<'a> {
        let image = image.trim();
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (image, None),
        };
        match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => ImageRef { repository: repo, tag: Some(tag), digest },
            _ => ImageRef { repository: rest, tag: None, digest },
        }
    }

    /// The registry host the reference names (`docker.io` when its first part is no host).
    pub fn registry(&self) -> &'a str {
        match self.repository.split_once('/') {
            Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
            _ => "docker.io",
        }
    }

    /// Why the pinned digest cannot be one (`None`: no pin, or a well-formed one).
    pub fn bad_digest(&self) -> Option<String> {
        let digest = self.digest?;
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        Some(format!("the digest after '@' ({digest}) is not sha256: followed by 64 lower-case hex digits"))
    }
}

/// A password that never prints.
#[derive(Clone, PartialEq, Eq)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The registries' logins, passwords read (`[images.registries]`). Its `Debug` shows hosts and
/// user names, never a password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryCredentials {
    by_host: BTreeMap<String, (String, Secret)>,
}

impl RegistryCredentials {
    /// Reads each login's password (the message names the registry and what is wrong).
    pub fn from_config(logins: &BTreeMap<String, RegistryLogin>) -> Result<RegistryCredentials, String> {
        let mut by_host = BTreeMap::new();
        for (host, login) in logins {
            let password = login.password(host).map_err(|why| if why.starts_with("images.registries") { why } else { format!("images.registries: {why}") })?;
            by_host.insert(host.clone(), (login.username.clone(), Secret(password)));
        }
        Ok(RegistryCredentials { by_host })
    }

    /// The hosts with a login.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.by_host.keys().map(String::as_str)
    }

    /// What to send with a pull from `host` (Docker Hub's aliases are one host).
    fn for_host(&self, host: &str) -> Option<DockerCredentials> {
        let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
        let (user, Secret(password)) = self.by_host.get(host).or_else(|| if hub(host) { self.by_host.iter().find(|(h, _)| hub(h)).map(|(_, v)| v) } else { None })?;
        let serveraddress = if hub(host) { "https://index.docker.io/v1/".to_string() } else { host.to_string() };
        Some(DockerCredentials { username: Some(user.clone()), password: Some(password.clone()), serveraddress: Some(serveraddress), ..DockerCredentials::default() })
    }
}

/// Why a pull ended, as the failures metric labels it.
fn failure_reason(e: &SandboxError) -> &'static str {
    match e {
        SandboxError::PullTimeout { .. } => "timeout",
        SandboxError::PullRefused(_) => "refused",
        SandboxError::DigestMismatch { .. } => "digest_mismatch",
        other => {
            let m = other.to_string().to_ascii_lowercase();
            if m.contains("verification failed") || m.contains("digest mismatch") || m.contains("unexpected commit digest") {
                // The engine's own check of a pinned digest against the manifest it was sent.
                "digest_mismatch"
            } else if m.contains("unauthorized") || m.contains("authentication required") || m.contains("no basic auth credentials") || m.contains("denied") {
                "unauthorized"
            } else if m.contains("manifest unknown") || m.contains("not found") || m.contains("does not exist") {
                "not_found"
            } else {
                "error"
            }
        }
    }
}

/// Who asked for a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Episode,
    Prefetch,
}

type SharedPull = Shared<BoxFuture<'static, Result<(), SandboxError>>>;

/// The pulls of one engine: those under way, the pre-pull bound, the metrics. Clones of the
/// engine share it.
#[derive(Debug)]
pub struct Pulls {
    in_flight: Mutex<HashMap<String, (u64, SharedPull)>>,
    next: AtomicU64,
    prefetch: Arc<tokio::sync::Semaphore>,
    metrics: PullMetrics,
}

impl Pulls {
    /// No pull under way; at most `prefetch` pre-pulls at once; counting into `metrics`.
    pub fn new(prefetch: usize, metrics: PullMetrics) -> Pulls {
        Pulls { in_flight: Mutex::default(), next: AtomicU64::new(0), prefetch: Arc::new(tokio::sync::Semaphore::new(prefetch)), metrics }
    }

    /// The metrics these pulls count into.
    pub fn metrics(&self) -> &PullMetrics {
        &self.metrics
    }
}

impl DockerEngine {
    /// Pulls `image` from its registry, or waits for the pull of it already under way. Only an
    /// image the engine's [pull policy](super::images::PullPolicy) allows is pulled
    /// ([`SandboxError::PullRefused`] otherwise, before anything is fetched); a pull that takes
    /// longer than the policy's timeout is abandoned ([`SandboxError::PullTimeout`]); a failed
    /// pull is [`SandboxError::ImageMissing`] with the registry's own message, so an unreachable
    /// registry is never scored as a model failure.
    pub async fn pull(&self, image: &str) -> Result<(), SandboxError> {
        self.pull_as(image, Kind::Episode).await
    }

    /// Pulls `image` in the background when it is missing and may be pulled (a leased task's,
    /// before its `init`), at most `images.prefetch` at once; the rest wait their turn. Failures
    /// are only logged and counted: the episode's own `init` meets them and reports them.
    pub fn prefetch(&self, image: &str) {
        if self.pull_policy().prefetch == 0 || image.trim().is_empty() || !self.pull_policy().allows(image) {
            return;
        }
        let engine = self.clone();
        let image = image.to_string();
        tokio::spawn(async move {
            let Ok(_permit) = engine.pulls().prefetch.clone().acquire_owned().await else { return };
            if !matches!(engine.image_digest(&image).await, Err(SandboxError::ImageMissing(_))) {
                return;
            }
            match engine.pull_as(&image, Kind::Prefetch).await {
                Ok(()) => debug!(image, "pre-pulled"),
                Err(e) => debug!(image, "pre-pull failed (the episode's init will report it): {e}"),
            }
        });
    }

    async fn pull_as(&self, image: &str, kind: Kind) -> Result<(), SandboxError> {
        let metrics = self.pulls().metrics.clone();
        if !self.pull_policy().allows(image) {
            metrics.failed.with_label_values(&["refused"]).inc();
            return Err(SandboxError::PullRefused(image.to_string()));
        }
        let key = normalize_reference(image);
        let pull = {
            let mut in_flight = self.pulls().in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, pull)) = in_flight.get(&key) {
                metrics.joined.inc();
                pull.clone()
            } else {
                let id = self.pulls().next.fetch_add(1, Ordering::Relaxed);
                let (engine, image, k) = (self.clone(), image.to_string(), key.clone());
                // Its own task: the pull runs to its end or its deadline even when every episode
                // waiting for it is cancelled, so the table and the metrics always close.
                let task = tokio::spawn(async move {
                    let result = engine.pull_now(&image, kind).await;
                    let mut in_flight = engine.pulls().in_flight.lock().unwrap_or_else(PoisonError::into_inner);
                    if in_flight.get(&k).is_some_and(|(i, _)| *i == id) {
                        in_flight.remove(&k);
                    }
                    result
                });
                let pull = async move { task.await.unwrap_or_else(|e| Err(SandboxError::Engine(format!("the pull's task ended: {e}")))) }.boxed().shared();
                in_flight.insert(key, (id, pull.clone()));
                pull
            }
        };
        pull.await
    }

    /// One pull, counted, within the deadline.
    async fn pull_now(&self, image: &str, kind: Kind) -> Result<(), SandboxError> {
        let metrics = self.pulls().metrics.clone();
        metrics.started.with_label_values(&[if kind == Kind::Prefetch { "prefetch" } else { "episode" }]).inc();
        metrics.in_flight.inc();
        let t0 = Instant::now();
        let reference = ImageRef::parse(image);
        let registry = reference.registry();
        let credentials = self.pull_policy().credentials.for_host(registry);
        info!(image, registry, kind = ?kind, with_credentials = credentials.is_some(), "pulling image");
        let mut layers: HashMap<String, i64> = HashMap::new();
        let result = match reference.bad_digest() {
            Some(reason) => Err(SandboxError::BadReference { image: image.to_string(), reason }),
            None => {
                let timeout = self.pull_policy().timeout;
                let pulled = self.stream_pull(image, &reference, credentials.clone(), &mut layers);
                match tokio::time::timeout(timeout, pulled).await {
                    Ok(r) => r,
                    Err(_) => Err(SandboxError::PullTimeout { image: image.to_string(), timeout }),
                }
            }
        };
        // A pinned digest must be what Docker lists for the image now.
        let result = match result {
            Ok(()) if reference.digest.is_some() => self.image_digest(image).await.map(|_| ()),
            other => other,
        };
        let result = result.map_err(|e| explain(e, registry, credentials.is_some()));
        metrics.in_flight.dec();
        metrics.bytes.inc_by(layers.values().map(|&b| u64::try_from(b).unwrap_or(0)).sum());
        metrics.seconds.observe(t0.elapsed().as_secs_f64());
        match &result {
            Ok(()) => {
                metrics.finished.with_label_values(&["pulled"]).inc();
                info!(image, seconds = t0.elapsed().as_secs_f64(), "pulled image");
            }
            Err(e) => {
                metrics.finished.with_label_values(&["failed"]).inc();
                metrics.failed.with_label_values(&[failure_reason(e)]).inc();
                warn!(image, "pull failed: {e}");
            }
        }
        result
    }

    /// Reads the engine's pull stream to its end; the bytes downloaded per layer go to `layers`.
    async fn stream_pull(&self, image: &str, reference: &ImageRef<'_>, credentials: Option<DockerCredentials>, layers: &mut HashMap<String, i64>) -> Result<(), SandboxError> {
        // A digest goes in `tag`: the engine takes a tag or a digest there.
        let tag = reference.digest.or(reference.tag).unwrap_or("latest");
        let options = bollard::query_parameters::CreateImageOptionsBuilder::new().from_image(reference.repository).tag(tag).build();
        let mut stream = self.client().create_image(Some(options), None, credentials);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| SandboxError::ImageMissing(format!("{image} (pull failed: {e})")))?;
            if let Some(detail) = info.error_detail {
                return Err(SandboxError::ImageMissing(format!("{image} (pull failed: {})", detail.message.unwrap_or_default())));
            }
            if let (Some(id), Some(progress)) = (info.id, info.progress_detail)
                && info.status.as_deref() == Some("Downloading")
                && let Some(current) = progress.current
            {
                let seen = layers.entry(id).or_default();
                *seen = (*seen).max(current);
            }
        }
        Ok(())
    }
}

/// The error with the fix an operator needs when the registry wants credentials.
fn explain(e: SandboxError, registry: &str, had_credentials: bool) -> SandboxError {
    if failure_reason(&e) != "unauthorized" {
        return e;
    }
    let SandboxError::ImageMissing(message) = e else { return e };
    let fix = if had_credentials {
        format!("the registry {registry} refused the credentials of [images.registries.\"{registry}\"]; check its username and password")
    } else {
        format!("the registry {registry} wants credentials: set [images.registries.\"{registry}\"] username and password_file (or password_env) in the worker's configuration")
    };
    SandboxError::ImageMissing(format!("{message}; {fix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_tag_and_digest() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let pinned = format!("127.0.0.1:5000/team/img@{d}");
        assert_eq!(ImageRef::parse(&pinned), ImageRef { repository: "127.0.0.1:5000/team/img", tag: None, digest: Some(d) });
        assert_eq!(ImageRef::parse(&pinned).registry(), "127.0.0.1:5000");
        assert_eq!(ImageRef::parse(&pinned).bad_digest(), None);
        let both = format!("reg.example/img:1@{d}");
        assert_eq!(ImageRef::parse(&both), ImageRef { repository: "reg.example/img", tag: Some("1"), digest: Some(d) });
        assert_eq!(ImageRef::parse("localhost:5000/x"), ImageRef { repository: "localhost:5000/x", tag: None, digest: None });
        assert_eq!(ImageRef::parse("localhost/x:2").registry(), "localhost");
        assert_eq!(ImageRef::parse("swebench/sweb.eval.x:latest").registry(), "docker.io");
        assert_eq!(ImageRef::parse("python:3").registry(), "docker.io");
        for bad in ["img@sha256:abc", "img@md5:0123", "img@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"] {
            assert!(ImageRef::parse(bad).bad_digest().is_some_and(|m| m.contains("64 lower-case hex")), "{bad}");
        }
    }

    #[test]
    fn credentials_go_to_their_host_and_never_print() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret-pw\n").expect("write");
        let logins: BTreeMap<String, RegistryLogin> = [
            ("reg.example:5000".to_string(), RegistryLogin { username: "bot".into(), password_file: Some(file.clone()), password_env: None }),
            ("docker.io".to_string(), RegistryLogin { username: "hub".into(), password_file: Some(file), password_env: None }),
        ]
        .into_iter()
        .collect();
        let creds = RegistryCredentials::from_config(&logins).expect("the logins read");
        let sent = creds.for_host("reg.example:5000").expect("credentials for the host");
        assert_eq!((sent.username.as_deref(), sent.password.as_deref(), sent.serveraddress.as_deref()), (Some("bot"), Some("s3cret-pw"), Some("reg.example:5000")));
        assert_eq!(creds.for_host("index.docker.io").and_then(|c| c.username), Some("hub".into()), "Docker Hub's aliases are one host");
        assert!(creds.for_host("other.example").is_none());
        let printed = format!("{creds:?}");
        assert!(!printed.contains("s3cret") && printed.contains("bot"), "{printed}");

        let missing = [("r.example".to_string(), RegistryLogin { username: "u".into(), password_file: None, password_env: Some("AGENTMILL_TEST_UNSET_PW_VAR".into()) })].into_iter().collect();
        let err = RegistryCredentials::from_config(&missing).expect_err("an unset variable");
        assert!(err.contains("r.example") && err.contains("AGENTMILL_TEST_UNSET_PW_VAR") && err.contains("not set"), "{err}");
        let none = [("r.example".to_string(), RegistryLogin { username: "u".into(), ..RegistryLogin::default() })].into_iter().collect();
        let err = RegistryCredentials::from_config(&none).expect_err("no password source");
        assert!(err.contains("password_file") && err.contains("password_env"), "{err}");
    }

    #[test]
    fn failures_are_sorted_by_reason() {
        let missing = |m: &str| SandboxError::ImageMissing(m.into());
        assert_eq!(failure_reason(&missing("x (pull failed: unauthorized: authentication required)")), "unauthorized");
        assert_eq!(failure_reason(&missing("x (pull failed: no basic auth credentials)")), "unauthorized");
        assert_eq!(failure_reason(&missing("x (pull failed: manifest unknown: manifest unknown)")), "not_found");
        assert_eq!(failure_reason(&missing("x (pull failed: connection refused)")), "error");
        assert_eq!(failure_reason(&missing("x (pull failed: Docker stream error: manifest verification failed for digest sha256:ab)")), "digest_mismatch");
        assert_eq!(failure_reason(&SandboxError::PullTimeout { image: "x".into(), timeout: std::time::Duration::from_secs(1) }), "timeout");
        let explained = explain(missing("x (pull failed: no basic auth credentials)"), "127.0.0.1:5000", false).to_string();
        assert!(explained.contains("[images.registries.\"127.0.0.1:5000\"]") && explained.contains("password_file"), "{explained}");
    }
}
