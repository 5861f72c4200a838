//! The host's image cache budget: task images the worker pulled are removed again, least
//! recently used first, once the evictable ones together pass `images.budget`.
//!
//! A worker that works through a dataset pulls one image per task (SWE-bench images are 1–3 GB,
//! and a dataset has thousands of tasks); without this nothing removes them and the host's disk
//! fills. [`ImageCache`] is owned by the host and shared by its episodes: an episode
//! [pins](ImageCache::pin) its task's image for as long as it runs, [`ensure_image`] records each
//! use and runs a pass after a pull, and the reaper runs a pass every `reap_interval`. The host's
//! image report to the coordinator lists the images again every few seconds, so an eviction shows
//! there by itself. The process sandbox has no images and no cache.
//!
//! # Which images may go
//!
//! An image is *evictable* when none of its references (tags and registry digests, as `docker
//! image ls --digests` shows them) matches a `keep` pattern, and either Docker lists a registry
//! digest for it (it came from a registry and can be pulled again) or a reference matches an
//! `evict` pattern. Images built or imported here (the sandbox base image) carry no digest and are
//! never touched unless an `evict` pattern names them. Patterns know one wildcard, `*`, which
//! matches any run of characters, `/` and `:` included ([`Pattern`]).
//!
//! # A pass
//!
//! [`ImageCache::evict_to_budget`] lists the host's images and sums the sizes of the evictable
//! ones. While the sum is over the budget it removes the least recently used evictable image that
//! no container on the host uses (any container, running or stopped, compared by image id) and no
//! in-flight episode pins. Images not used since the worker started count as least recent, the
//! oldest (`created`) first. Sizes are Docker's `Size` per image: a layer shared by two images
//! counts in both, so the sum overstates what the disk holds and the cache errs towards evicting.
//!
//! # Why an in-flight image never goes
//!
//! - An episode pins its image before [`ensure_image`] looks for it and keeps the pin until its
//!   last container is removed — the whole episode, since grading creates a fresh container after
//!   the agent's is gone. Taking a pin and removing an image hold the same lock, so once
//!   [`ImageCache::pin`] returns no removal of that image is under way or can start; one removed
//!   just before is simply pulled again.
//! - Images are removed by id with `force: false`: Docker itself refuses an image that a container
//!   uses, also one created after the pass listed the containers. A refusal is logged and the next
//!   candidate is tried; it never fails the pass.
//!
//! [`ensure_image`]: crate::episode::init::ensure_image
//!
//! Past 600 lines with its unit tests (the code is about 500): the cache, its pins and its
//! eviction are one piece of state.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bollard::models::ImageSummary;
use bollard::query_parameters::{ListContainersOptionsBuilder, ListImagesOptions, RemoveImageOptionsBuilder};
use tracing::{debug, info, warn};

use super::docker::DockerEngine;
use super::{SandboxError, human_bytes};
use crate::config::ImagesConfig;
use crate::metrics::ImageMetrics;

/// An image reference pattern: `*` matches any run of characters (`/` and `:` included), every
/// other character itself. `agentmill/*` matches `agentmill/sandbox-python:bookworm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// The pattern, or why it cannot be one (the message completes "pattern N (\"…\") …").
    pub fn parse(pattern: &str) -> Result<Pattern, String> {
        if pattern.trim().is_empty() {
            return Err("is empty; remove it, or use \"*\" for every image".into());
        }
        if pattern.trim() != pattern {
            return Err("has spaces around it; image references have none".into());
        }
        if let Some(c) = pattern.chars().find(|c| matches!(c, '?' | '[' | ']' | '{' | '}')) {
            return Err(format!("uses {c:?}: only '*' is a wildcard here (it matches any characters)"));
        }
        Ok(Pattern(pattern.to_string()))
    }

    /// Whether `reference` matches the whole pattern.
    pub fn matches(&self, reference: &str) -> bool {
        let (p, t) = (self.0.as_bytes(), reference.as_bytes());
        let (mut pi, mut ti) = (0, 0);
        // The last `*` seen and the text position it was tried at: on a mismatch that `*` takes
        // one more character (the classic linear-backtracking wildcard match).
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && p[pi] == b'*' {
                star = Some((pi, ti));
                pi += 1;
            } else if pi < p.len() && p[pi] == t[ti] {
                pi += 1;
                ti += 1;
            } else if let Some((s, at)) = star {
                pi = s + 1;
                ti = at + 1;
                star = Some((s, at + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
}

/// Which images the worker may pull, and how long a pull may take (`[images] pull`,
/// `pull_timeout`).
///
/// A task names its image, and without this any task could make the worker fetch any image
/// from any registry. An image that is **already on the host** is used whatever the list says
/// (an operator built, loaded or pulled it: an operator-built local image still runs); one that
/// is not is pulled only when a `pull` pattern matches it, else the episode ends `sandbox_error`
/// naming the key, and nothing is fetched. Patterns are matched against the reference as the task
/// writes it, as Docker lists it (`swebench/x:latest`), and fully qualified
/// (`docker.io/swebench/x:latest`), so `docker.io/swebench/*` also matches `swebench/x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPolicy {
    allow: Vec<Pattern>,
    /// The longest one pull may take.
    pub timeout: std::time::Duration,
    /// Pre-pulls at once (`images.prefetch`; 0: none).
    pub prefetch: usize,
    /// The registries' logins (`images.registries`), passwords read.
    pub credentials: super::pull::RegistryCredentials,
}

impl Default for PullPolicy {
    fn default() -> Self {
        PullPolicy::from_config(&ImagesConfig::default()).unwrap_or(PullPolicy {
            allow: Vec::new(),
            timeout: std::time::Duration::from_secs(1200),
            prefetch: 0,
            credentials: super::pull::RegistryCredentials::default(),
        })
    }
}

impl PullPolicy {
    /// The policy of an `[images]` section; the registries' passwords are read here.
    pub fn from_config(cfg: &ImagesConfig) -> Result<PullPolicy, String> {
        let allow = cfg.pull.iter().enumerate().map(|(i, p)| Pattern::parse(p).map_err(|why| format!("images.pull: pattern {i} ({p:?}) {why}"))).collect::<Result<_, _>>()?;
        let credentials = super::pull::RegistryCredentials::from_config(&cfg.registries)?;
        Ok(PullPolicy { allow, timeout: cfg.pull_timeout, prefetch: cfg.prefetch as usize, credentials })
    }

    /// A policy allowing `patterns` (tests, tools).
    pub fn new(patterns: &[&str], timeout: std::time::Duration) -> Result<PullPolicy, String> {
        let cfg = ImagesConfig { pull: patterns.iter().map(|p| p.to_string()).collect(), pull_timeout: timeout, ..ImagesConfig::default() };
        PullPolicy::from_config(&cfg)
    }

    /// Whether `image` may be pulled.
    pub fn allows(&self, image: &str) -> bool {
        let normalized = normalize_reference(image);
        let qualified = qualify_reference(&normalized);
        [image.trim(), normalized.as_str(), qualified.as_str()].iter().any(|r| self.allow.iter().any(|p| p.matches(r)))
    }
}

/// A normalized reference with its registry written out: `swebench/x:1` is
/// `docker.io/swebench/x:1`, `python:3` is `docker.io/library/python:3`; a reference whose
/// first part names a host (a `.` or `:` in it, or `localhost`) is left as it is.
pub fn qualify_reference(normalized: &str) -> String {
    let first = normalized.split('/').next().unwrap_or_default();
    let has_host = normalized.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_host || normalized.starts_with("sha256:") {
        normalized.to_string()
    } else if normalized.contains('/') {
        format!("docker.io/{normalized}")
    } else {
        format!("docker.io/library/{normalized}")
    }
}

/// What may be evicted, and down to how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePolicy {
    /// The most bytes of evictable images to keep; `None`: never evict.
    pub budget: Option<u64>,
    keep: Vec<Pattern>,
    evict: Vec<Pattern>,
}

impl ImagePolicy {
    /// The policy of an `[images]` section (errors as [`crate::config::WorkerConfig::validate`]
    /// words them).
    pub fn from_config(cfg: &ImagesConfig) -> Result<ImagePolicy, String> {
        let parse = |key: &str, patterns: &[String]| -> Result<Vec<Pattern>, String> {
            patterns.iter().enumerate().map(|(i, p)| Pattern::parse(p).map_err(|why| format!("{key}: pattern {i} ({p:?}) {why}"))).collect()
        };
        Ok(ImagePolicy { budget: cfg.budget_bytes(), keep: parse("images.keep", &cfg.keep)?, evict: parse("images.evict", &cfg.evict)? })
    }

    /// Whether `image` counts against the budget and may be removed (when no container uses it
    /// and no episode pins it): no reference matches `keep`, and it has a registry digest or a
    /// reference matches `evict`.
    pub fn is_evictable(&self, image: &HostImage) -> bool {
        let named = |patterns: &[Pattern]| image.references.iter().any(|r| patterns.iter().any(|p| p.matches(r)));
        !named(&self.keep) && (image.registry_digest || named(&self.evict))
    }
}

/// One image on the host, as a pass sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostImage {
    /// The content id (`sha256:…`).
    pub id: String,
    /// Its tags (`repo:tag`).
    pub tags: Vec<String>,
    /// Its tags and registry digests (`repo@sha256:…`): what the patterns are matched against.
    pub references: Vec<String>,
    /// Docker lists a registry digest for it: it can be pulled again.
    pub registry_digest: bool,
    /// Bytes (Docker's `Size`).
    pub size: u64,
    /// When it was built, unix seconds.
    pub created: i64,
}

impl HostImage {
    /// The image as `docker image ls` lists it (`<none>` placeholders dropped).
    pub fn from_summary(s: ImageSummary) -> HostImage {
        let real = |r: &String| !r.starts_with("<none>");
        let tags: Vec<String> = s.repo_tags.into_iter().filter(real).collect();
        let digests: Vec<String> = s.repo_digests.into_iter().filter(real).collect();
        HostImage {
            id: s.id,
            registry_digest: !digests.is_empty(),
            references: tags.iter().chain(&digests).cloned().collect(),
            tags,
            size: u64::try_from(s.size).unwrap_or(0),
            created: s.created,
        }
    }

    /// A name for logs: the first tag, else the first digest, else the id.
    pub fn name(&self) -> &str {
        self.references.first().unwrap_or(&self.id)
    }
}

/// A reference spelled as Docker lists it, so a task's `python` and the host's `python:latest`
/// (or `docker.io/library/python:3` and `python:3`) are one image to the pins and the uses.
pub fn normalize_reference(reference: &str) -> String {
    let r = reference.trim();
    let r = r.strip_prefix("docker.io/").or_else(|| r.strip_prefix("index.docker.io/")).unwrap_or(r);
    let r = r.strip_prefix("library/").unwrap_or(r);
    let last = r.rsplit('/').next().unwrap_or(r);
    if r.starts_with("sha256:") || r.contains('@') || last.contains(':') { r.to_string() } else { format!("{r}:latest") }
}

/// Uses and pins, by normalized reference or image id.
#[derive(Debug, Default)]
struct State {
    /// A logical clock: each use gets the next tick, so the order of uses is exact.
    clock: u64,
    last_use: HashMap<String, u64>,
    pins: HashMap<String, usize>,
}

impl State {
    fn record_use(&mut self, image: &str) {
        self.clock += 1;
        self.last_use.insert(normalize_reference(image), self.clock);
    }

    /// The tick of the image's last use under any of its names; `None`: not used since the start.
    fn last_use_of(&self, image: &HostImage) -> Option<u64> {
        std::iter::once(&image.id).chain(&image.references).filter_map(|r| self.last_use.get(&normalize_reference(r))).max().copied()
    }

    fn is_pinned(&self, image: &HostImage) -> bool {
        std::iter::once(&image.id).chain(&image.references).any(|r| self.pins.contains_key(&normalize_reference(r)))
    }

    /// `candidates`, least recently used first: those not used since the start, oldest
    /// `created` first, then by their last use.
    fn eviction_order<'a>(&self, candidates: impl IntoIterator<Item = &'a HostImage>) -> Vec<&'a HostImage> {
        let mut order: Vec<(Option<u64>, &HostImage)> = candidates.into_iter().map(|i| (self.last_use_of(i), i)).collect();
        order.sort_by(|(ua, a), (ub, b)| ua.cmp(ub).then(a.created.cmp(&b.created)).then_with(|| a.id.cmp(&b.id)));
        order.into_iter().map(|(_, i)| i).collect()
    }
}

/// One image a pass removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    /// Its id.
    pub id: String,
    /// Its name in the log.
    pub name: String,
    /// Its size.
    pub size: u64,
}

/// What one pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvictionReport {
    /// The budget it worked to (`None`: it only measured).
    pub budget: Option<u64>,
    /// Bytes of evictable images before the pass.
    pub evictable_bytes: u64,
    /// Bytes of evictable images after it.
    pub remaining_bytes: u64,
    /// The images removed, in order.
    pub evicted: Vec<Evicted>,
    /// Images Docker refused to remove, with its answer.
    pub refused: Vec<(String, String)>,
}

/// The host's image cache. Cheap to clone; clones share the uses, the pins and the passes.
#[derive(Debug, Clone)]
pub struct ImageCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: DockerEngine,
    policy: ImagePolicy,
    metrics: ImageMetrics,
    state: Mutex<State>,
    /// Held while one image is removed, and by [`ImageCache::pin`]: a pin never races a removal.
    removing: tokio::sync::Mutex<()>,
    /// One pass at a time (a pass after a pull must see the pulled image).
    pass: tokio::sync::Mutex<()>,
}

/// Keeps an image on the host while held (see [`ImageCache::pin`]).
#[derive(Debug)]
#[must_use = "the image is pinned only while the pin is held"]
pub struct ImagePin {
    inner: Arc<Inner>,
    key: String,
}

impl Drop for ImagePin {
    fn drop(&mut self) {
        let mut state = self.inner.state();
        if let Some(n) = state.pins.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                state.pins.remove(&self.key);
            }
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What became of one removal.
enum Removal {
    Removed,
    /// Someone else removed it first.
    Gone,
    Refused(String),
}

impl ImageCache {
    /// A cache of `engine`'s images under `policy`, counting into `metrics`.
    pub fn new(engine: DockerEngine, policy: ImagePolicy, metrics: ImageMetrics) -> ImageCache {
        ImageCache {
            inner: Arc::new(Inner {
                engine,
                policy,
                metrics,
                state: Mutex::new(State::default()),
                removing: tokio::sync::Mutex::new(()),
                pass: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &ImagePolicy {
        &self.inner.policy
    }

    /// Keeps `image` (a reference as a task names it, or an image id) on the host until the pin
    /// is dropped. Waits for a removal under way to finish, so afterwards the image is either
    /// there to stay or gone (and [`ensure_image`](crate::episode::init::ensure_image) pulls
    /// it again).
    pub async fn pin(&self, image: &str) -> ImagePin {
        let key = normalize_reference(image);
        let _removing = self.inner.removing.lock().await;
        *self.inner.state().pins.entry(key.clone()).or_default() += 1;
        ImagePin { inner: self.inner.clone(), key }
    }

    /// Records a use of `image` (what [`ensure_image`](crate::episode::init::ensure_image) does
    /// once the image is there).
    pub fn record_use(&self, image: &str) {
        self.inner.state().record_use(image);
    }

    /// The images of the host, as a pass sees them.
    pub async fn host_images(&self) -> Result<Vec<HostImage>, SandboxError> {
        let list = self.inner.engine.client().list_images(None::<ListImagesOptions>).await.map_err(|e| SandboxError::Engine(format!("list images: {e}")))?;
        Ok(list.into_iter().map(HostImage::from_summary).collect())
    }

    /// The ids of the images any container on the host uses, running or stopped (not only this
    /// worker's: an image another container needs is not ours to take).
    async fn images_in_use(&self) -> Result<HashSet<String>, SandboxError> {
        let options = ListContainersOptionsBuilder::new().all(true).build();
        let list = self.inner.engine.client().list_containers(Some(options)).await.map_err(|e| SandboxError::Engine(format!("list containers: {e}")))?;
        Ok(list.into_iter().filter_map(|c| c.image_id).collect())
    }

    /// One pass: measures the evictable images and, while they pass the budget, removes the least
    /// recently used one that no container uses and no episode pins (module docs). A removal
    /// Docker refuses is logged and skipped; only a failed listing fails the pass.
    pub async fn evict_to_budget(&self) -> Result<EvictionReport, SandboxError> {
        let _pass = self.inner.pass.lock().await;
        let policy = &self.inner.policy;
        let images = self.host_images().await?;
        let evictable: Vec<&HostImage> = images.iter().filter(|i| policy.is_evictable(i)).collect();
        let mut held: u64 = evictable.iter().map(|i| i.size).sum();
        let mut report = EvictionReport { budget: policy.budget, evictable_bytes: held, remaining_bytes: held, ..EvictionReport::default() };
        self.inner.metrics.evictable_bytes.set(i64::try_from(held).unwrap_or(i64::MAX));
        let Some(budget) = policy.budget else { return Ok(report) };
        if held <= budget {
            debug!(evictable = %human_bytes(held), budget = %human_bytes(budget), "image cache within budget");
            return Ok(report);
        }
        let in_use = self.images_in_use().await?;
        let order = self.inner.state().eviction_order(evictable.into_iter().filter(|i| !in_use.contains(&i.id)));
        for image in order {
            if held <= budget {
                break;
            }
            let _removing = self.inner.removing.lock().await;
            if self.inner.state().is_pinned(image) {
                continue;
            }
            let reason = format!("over budget: {} of {}", human_bytes(held), human_bytes(budget));
            match self.remove(image).await {
                Removal::Removed => {
                    info!(image = image.name(), id = %image.id, size = %human_bytes(image.size), reason, "evicted an image");
                    held = held.saturating_sub(image.size);
                    self.inner.metrics.evicted.inc();
                    self.inner.metrics.evicted_bytes.inc_by(image.size);
                    report.evicted.push(Evicted { id: image.id.clone(), name: image.name().to_string(), size: image.size });
                }
                Removal::Gone => held = held.saturating_sub(image.size),
                Removal::Refused(why) => {
                    warn!(image = image.name(), id = %image.id, "Docker refused to remove an image over the budget (skipped): {why}");
                    report.refused.push((image.name().to_string(), why));
                }
            }
        }
        report.remaining_bytes = held;
        self.inner.metrics.evictable_bytes.set(i64::try_from(held).unwrap_or(i64::MAX));
        let freed: u64 = report.evicted.iter().map(|e| e.size).sum();
        if held > budget {
            warn!(
                "image cache: evicted {} images ({} freed), but evictable images still hold {} of a {} budget; the rest are used by containers or running episodes, or Docker refused them: raise images.budget or lower capacity.episodes",
                report.evicted.len(),
                human_bytes(freed),
                human_bytes(held),
                human_bytes(budget)
            );
        } else {
            info!("image cache: evicted {} images ({} freed); evictable images now hold {} of a {} budget", report.evicted.len(), human_bytes(freed), human_bytes(held), human_bytes(budget));
        }
        Ok(report)
    }

    /// Runs a pass in the background (after a pull: the episode that pulled does not wait).
    pub fn spawn_pass(&self) {
        let cache = self.clone();
        tokio::spawn(async move {
            if let Err(e) = cache.evict_to_budget().await {
                warn!("image cache pass failed: {e}");
            }
        });
    }

    /// Removes `image` by id, never forced.
    async fn remove(&self, image: &HostImage) -> Removal {
        use bollard::errors::Error::DockerResponseServerError as Server;
        let docker = self.inner.engine.client();
        let unforced = || Some(RemoveImageOptionsBuilder::new().force(false).build());
        match docker.remove_image(&image.id, unforced(), None).await {
            Ok(_) => Removal::Removed,
            Err(Server { status_code: 404, .. }) => Removal::Gone,
            Err(Server { status_code: 409, message }) if message.contains("multiple repositories") => {
                // Docker removes an image by id only when one repository names it. Untag each
                // name instead: the last one deletes the image (and is refused, still unforced,
                // while a container uses it).
                for tag in &image.tags {
                    match docker.remove_image(tag, unforced(), None).await {
                        Ok(_) | Err(Server { status_code: 404, .. }) => {}
                        Err(e) => return Removal::Refused(format!("untag {tag}: {e}")),
                    }
                }
                match docker.remove_image(&image.id, unforced(), None).await {
                    Ok(_) | Err(Server { status_code: 404, .. }) => Removal::Removed,
                    Err(e) => Removal::Refused(e.to_string()),
                }
            }
            Err(e) => Removal::Refused(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, tags: &[&str], digests: &[&str], size: u64, created: i64) -> HostImage {
        HostImage::from_summary(ImageSummary {
            id: id.into(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            size: size as i64,
            created,
            ..ImageSummary::default()
        })
    }

    fn policy(keep: &[&str], evict: &[&str]) -> ImagePolicy {
        let cfg = ImagesConfig { budget: "1g".into(), keep: keep.iter().map(|s| s.to_string()).collect(), evict: evict.iter().map(|s| s.to_string()).collect(), ..ImagesConfig::default() };
        ImagePolicy::from_config(&cfg).expect("a valid policy")
    }

    fn ids(order: Vec<&HostImage>) -> Vec<&str> {
        order.into_iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn patterns_match_whole_references_with_star_as_any_run() {
        let p = |s: &str| Pattern::parse(s).expect("a pattern");
        assert!(p("agentmill/*").matches("agentmill/sandbox-python:bookworm"));
        assert!(p("agentmill/*").matches("agentmill/x/y@sha256:ab"));
        assert!(!p("agentmill/*").matches("agentmill-test/evict:1"));
        assert!(!p("agentmill/*").matches("docker.io/agentmill/sandbox:1"));
        assert!(p("*").matches("anything:at-all"));
        assert!(p("*").matches(""));
        assert!(p("swebench/sweb.eval.*:latest").matches("swebench/sweb.eval.x86_64.django_1776_django-11099:latest"));
        assert!(!p("swebench/sweb.eval.*:latest").matches("swebench/sweb.eval.x86_64.django:v2"));
        assert!(p("*django*").matches("swebench/sweb.eval.x86_64.django_1776:latest"));
        assert!(p("a*b*c").matches("aXXbYYbZZc"));
        assert!(!p("a*b*c").matches("aXXbYYcZZ"));
        assert!(p("a**c").matches("ac"));
        assert!(!p("python:3").matches("python:3.11"), "a pattern without * is an exact reference");
        assert!(p("python:3").matches("python:3"));
        assert!(p("python:3*").matches("python:3.11"));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_fix() {
        for (bad, says) in [("", "is empty"), ("  ", "is empty"), (" agentmill/*", "spaces"), ("agentmill/?", "only '*'"), ("img:[12]", "only '*'")] {
            let err = Pattern::parse(bad).expect_err(bad);
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn evictable_means_a_registry_digest_or_an_evict_pattern_and_never_a_keep_pattern() {
        let p = policy(&["agentmill/*", "python:*"], &["local/*"]);
        let pulled = image("sha256:1", &["swebench/sweb.eval.a:latest"], &["swebench/sweb.eval.a@sha256:aa"], 10, 0);
        let dangling_pulled = image("sha256:2", &["<none>:<none>"], &["swebench/sweb.eval.a@sha256:bb"], 10, 0);
        let built_here = image("sha256:3", &["mytool:dev"], &[], 10, 0);
        let named_local = image("sha256:4", &["local/tool:1"], &[], 10, 0);
        let sandbox = image("sha256:5", &["agentmill/sandbox-python:bookworm"], &[], 10, 0);
        let kept_pulled = image("sha256:6", &["python:3.11"], &["python@sha256:cc"], 10, 0);
        let kept_by_one_tag = image("sha256:7", &["local/tool:2", "agentmill/tool:2"], &[], 10, 0);
        let untagged = image("sha256:8", &["<none>:<none>"], &["<none>@<none>"], 10, 0);
        assert!(p.is_evictable(&pulled));
        assert!(p.is_evictable(&dangling_pulled), "a pulled image that lost its tag can be pulled again by digest");
        assert!(!p.is_evictable(&built_here), "no digest and no evict pattern: never touched");
        assert!(p.is_evictable(&named_local));
        assert!(!p.is_evictable(&sandbox));
        assert!(!p.is_evictable(&kept_pulled), "keep wins over a registry digest");
        assert!(!p.is_evictable(&kept_by_one_tag), "keep wins when any reference matches");
        assert!(!p.is_evictable(&untagged));
        assert_eq!(untagged.references, Vec::<String>::new());
        assert_eq!(dangling_pulled.name(), "swebench/sweb.eval.a@sha256:bb");
    }

    #[test]
    fn pull_patterns_match_a_reference_however_it_is_spelled() {
        let p = PullPolicy::new(&["docker.io/swebench/*", "agentmill/*", "localhost:5000/team/*"], std::time::Duration::from_secs(1)).expect("a policy");
        for yes in ["swebench/sweb.eval.x86_64.a:latest", "docker.io/swebench/x", "index.docker.io/swebench/x:1", "agentmill/sandbox-python:bookworm", "localhost:5000/team/tool:2"] {
            assert!(p.allows(yes), "{yes}");
        }
        for no in ["python:3", "ghcr.io/swebench/x:1", "evil.example/agentmill/x:1", "localhost:5000/other:1", "docker.io/swebenchx/y", "swebench"] {
            assert!(!p.allows(no), "{no}");
        }
        assert!(!PullPolicy::new(&[], std::time::Duration::from_secs(1)).expect("an empty policy").allows("agentmill/x:1"), "an empty list pulls nothing");
        assert_eq!(qualify_reference("python:latest"), "docker.io/library/python:latest");
        assert_eq!(qualify_reference("ghcr.io/o/i:1"), "ghcr.io/o/i:1");
    }

    #[test]
    fn the_default_keeps_the_sandbox_image_and_never_evicts() {
        let p = ImagePolicy::from_config(&ImagesConfig::default()).expect("the default policy");
        assert_eq!(p.budget, None);
        assert!(!p.is_evictable(&image("sha256:1", &["agentmill/sandbox-python:bookworm"], &["agentmill/sandbox-python@sha256:aa"], 1, 0)));
        assert!(p.is_evictable(&image("sha256:2", &["swebench/x:latest"], &["swebench/x@sha256:aa"], 1, 0)));
    }

    #[test]
    fn least_recently_used_first_and_unused_images_oldest_first_before_them() {
        let a = image("sha256:a", &["t/a:1"], &[], 1, 300);
        let b = image("sha256:b", &["t/b:1"], &[], 1, 100);
        let c = image("sha256:c", &["t/c:1"], &[], 1, 200);
        let d = image("sha256:d", &["t/d:1"], &[], 1, 50);
        let e = image("sha256:e", &["t/e:1"], &[], 1, 10);
        let mut state = State::default();
        assert_eq!(ids(state.eviction_order([&a, &b, &c, &d, &e])), ["sha256:e", "sha256:d", "sha256:b", "sha256:c", "sha256:a"], "unused: oldest created first");
        state.record_use("t/a:1");
        state.record_use("t/d:1");
        state.record_use("t/b:1");
        state.record_use("t/d:1");
        assert_eq!(ids(state.eviction_order([&a, &b, &c, &d, &e])), ["sha256:e", "sha256:c", "sha256:a", "sha256:b", "sha256:d"], "unused ones, then by last use");
    }

    #[test]
    fn uses_and_pins_match_the_names_docker_lists() {
        let img = image("sha256:f00", &["python:latest", "python:3"], &["python@sha256:aa"], 1, 0);
        let other = image("sha256:ba2", &["t/other:1"], &[], 1, 0);
        for name in ["python", "docker.io/library/python", "docker.io/library/python:3", "index.docker.io/library/python:latest", "python@sha256:aa", "sha256:f00"] {
            let mut state = State::default();
            state.record_use(name);
            assert_eq!(state.last_use_of(&img), Some(1), "{name}");
            assert_eq!(state.last_use_of(&other), None, "{name}");
            state.pins.insert(normalize_reference(name), 1);
            assert!(state.is_pinned(&img) && !state.is_pinned(&other), "{name}");
        }
        assert_eq!(normalize_reference("localhost:5000/team/tool"), "localhost:5000/team/tool:latest");
        assert_eq!(normalize_reference("localhost:5000/team/tool:2"), "localhost:5000/team/tool:2");
        assert_eq!(normalize_reference("ghcr.io/org/img:v1"), "ghcr.io/org/img:v1");
    }
}
