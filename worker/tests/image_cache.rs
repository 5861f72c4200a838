//! The image cache budget on a real Docker engine: with `images.budget` set, a pass removes the
//! least recently used evictable images down to the budget, and never an image a container uses,
//! one a running episode pins, one a `keep` pattern names, or one that has neither a registry
//! digest nor an `evict` pattern (the sandbox image); without a budget it removes nothing.
//!
//! No registry is reachable here, so the images are made offline: `docker import` (bollard's
//! `create_image` from a tarball) of a few KiB of random bytes each, so every image id differs,
//! named `agentmill-test/evict-<random>:N` and made evictable by an `evict` pattern naming only
//! this test's images. Every image that has a registry digest on the host when a test starts is
//! put in `keep`, so a test never removes an image of the machine it runs on. A guard removes
//! the test's images and containers, passing or failing.
//!
//! Real Docker, nothing mocked; without Docker the tests fail loudly unless the run declares
//! `AGENTMILL_NO_DOCKER=1`.

mod sandbox_support;

use std::collections::HashMap;

use agentmill_worker::config::{ImagesConfig, WorkerConfig};
use agentmill_worker::episode::init::ensure_image;
use agentmill_worker::metrics::WorkerMetrics;
use agentmill_worker::sandbox::docker::{DockerEngine, LABEL_WORKER};
use agentmill_worker::sandbox::images::{EvictionReport, HostImage, ImageCache, ImagePolicy};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, CreateImageOptionsBuilder, TagImageOptionsBuilder};
use futures::StreamExt;
use sandbox_support::{SANDBOX_IMAGE, docker, unique};

/// Random bytes per image: small, and distinct, so no two images share an id.
const PAYLOAD: usize = 16 << 10;

/// What one test made; removes it all when dropped (containers first, then images), through the
/// docker CLI, which needs no runtime while a failed assertion unwinds.
struct Scratch {
    /// Labels the test's containers.
    worker: String,
    /// `agentmill-test/evict-<random>`: every image of the test is named under it.
    repo: String,
    /// Ids of the images made.
    ids: Vec<String>,
}

impl Scratch {
    fn new(test: &str) -> Scratch {
        let name = unique(test);
        Scratch { worker: format!("image-cache-{name}"), repo: format!("agentmill-test/evict-{name}"), ids: Vec::new() }
    }

    /// The `evict` pattern naming this test's images only.
    fn pattern(&self) -> String {
        format!("{}*", self.repo)
    }

    /// Imports a tiny image as `reference` and returns its id.
    async fn image(&mut self, engine: &DockerEngine, reference: &str) -> String {
        let (repo, tag) = reference.rsplit_once(':').expect("a reference with a tag");
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(PAYLOAD as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let payload: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..)).take(PAYLOAD).collect();
        tar.append_data(&mut header, "payload", &payload[..]).expect("pack the payload");
        let tar = tar.into_inner().expect("finish the tarball");
        let options = CreateImageOptionsBuilder::new().from_src("-").repo(repo).tag(tag).build();
        let mut stream = engine.client().create_image(Some(options), Some(bollard::body_full(tar.into())), None);
        while let Some(item) = stream.next().await {
            item.unwrap_or_else(|e| panic!("docker import {reference}: {e}"));
        }
        let id = engine.client().inspect_image(reference).await.unwrap_or_else(|e| panic!("inspect {reference}: {e}")).id.expect("an image id");
        self.ids.push(id.clone());
        id
    }

    /// Creates (does not start) a container of `image`, labelled for the guard.
    async fn container(&self, engine: &DockerEngine, image: &str) -> String {
        let labels = HashMap::from([(LABEL_WORKER.to_string(), self.worker.clone())]);
        // The image holds one data file: the container is never started, so its command need not exist.
        let body = ContainerCreateBody { image: Some(image.into()), cmd: Some(vec!["/payload".into()]), labels: Some(labels), ..Default::default() };
        let name = unique(&self.worker);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        engine.client().create_container(Some(options), body).await.unwrap_or_else(|e| panic!("create a container of {image}: {e}")).id
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let docker = |args: &[&str]| std::process::Command::new("docker").args(args).output().ok();
        let filter = format!("label={LABEL_WORKER}={}", self.worker);
        if let Some(out) = docker(&["ps", "-aq", "--filter", &filter]) {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids.iter().map(String::as_str));
                docker(&args);
            }
        }
        if !self.ids.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(self.ids.iter().map(String::as_str));
            docker(&args);
        }
    }
}

/// Every reference of every image on the host that has a registry digest: a test's `keep`, so it
/// can only ever remove its own images whatever else the machine holds.
async fn host_pulled_images(engine: &DockerEngine) -> Vec<String> {
    let list = engine.client().list_images(None::<bollard::query_parameters::ListImagesOptions>).await.expect("list the host's images");
    list.into_iter().map(HostImage::from_summary).filter(|i| i.registry_digest).flat_map(|i| i.references).collect()
}

/// A cache whose `keep` is the host's pulled images plus `keep`, `evict` this test's images.
async fn cache(engine: &DockerEngine, scratch: &Scratch, budget: &str, keep: &[String]) -> (ImageCache, WorkerMetrics) {
    let mut keep_all = host_pulled_images(engine).await;
    keep_all.extend(keep.iter().cloned());
    let cfg = WorkerConfig { images: ImagesConfig { budget: budget.into(), keep: keep_all, evict: vec![scratch.pattern()], ..ImagesConfig::default() }, ..WorkerConfig::default() };
    cfg.validate().expect("a valid configuration");
    let metrics = WorkerMetrics::new();
    let policy = ImagePolicy::from_config(&cfg.images).expect("a valid policy");
    (ImageCache::new(engine.clone(), policy, metrics.images.clone()), metrics)
}

async fn exists(engine: &DockerEngine, image: &str) -> bool {
    match engine.client().inspect_image(image).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => false,
        Err(e) => panic!("inspect {image}: {e}"),
    }
}

/// The sizes the cache sees, by image id.
async fn sizes(cache: &ImageCache) -> HashMap<String, u64> {
    cache.host_images().await.expect("list images").into_iter().map(|i| (i.id, i.size)).collect()
}

fn evicted_ids(report: &EvictionReport) -> Vec<&str> {
    report.evicted.iter().map(|e| e.id.as_str()).collect()
}

async fn sandbox_image_is_there(engine: &DockerEngine) {
    assert!(exists(engine, SANDBOX_IMAGE).await, "the sandbox image {SANDBOX_IMAGE} was removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_recently_used_images_go_first_down_to_the_budget() {
    let mut s = Scratch::new("lru");
    let Some(engine) = docker("least_recently_used_images_go_first_down_to_the_budget", &s.worker).await else { return };
    let refs: Vec<String> = (0..5).map(|n| format!("{}:{n}", s.repo)).collect();
    let mut ids = Vec::new();
    for r in &refs {
        ids.push(s.image(&engine, r).await);
    }
    let size = sizes(&ImageCache::new(engine.clone(), ImagePolicy::from_config(&ImagesConfig::default()).expect("policy"), Default::default())).await;
    let size_of = |n: usize| size[&ids[n]];
    // Uses in the order 3, 1, 4, 2 (image 0 never used): least recent first is 0, 3, 1, 4, 2. The
    // budget holds the two most recent, so 0, 3 and 1 must go, in that order, and nothing more.
    let budget = size_of(4) + size_of(2);
    let (cache, metrics) = cache(&engine, &s, &budget.to_string(), &[]).await;
    for n in [3, 1, 4, 2] {
        ensure_image(&engine, &refs[n], Some(&cache)).await.unwrap_or_else(|e| panic!("ensure {}: {e}", refs[n]));
    }
    let total: u64 = (0..5).map(size_of).sum();
    let report = cache.evict_to_budget().await.expect("a pass");
    assert_eq!(report.budget, Some(budget));
    assert_eq!(report.evictable_bytes, total, "the pass counts exactly this test's images as evictable");
    assert_eq!(evicted_ids(&report), [ids[0].as_str(), ids[3].as_str(), ids[1].as_str()], "least recently used first, the unused one before all: {report:#?}");
    assert_eq!(report.remaining_bytes, budget);
    assert!(report.refused.is_empty(), "{report:#?}");
    for n in [0, 3, 1] {
        assert!(!exists(&engine, &ids[n]).await, "image {n} was reported evicted but is still there");
    }
    for n in [4, 2] {
        assert!(exists(&engine, &refs[n]).await, "image {n} (recently used, within the budget) was removed");
    }
    assert_eq!(metrics.images.evicted.get(), 3);
    assert_eq!(metrics.images.evicted_bytes.get(), size_of(0) + size_of(3) + size_of(1));
    assert_eq!(metrics.images.evictable_bytes.get(), budget as i64);
    assert!(metrics.render().contains("agentmill_worker_images_evicted_total 3"), "{}", metrics.render());
    // Within the budget now: a second pass removes nothing.
    let again = cache.evict_to_budget().await.expect("a second pass");
    assert!(again.evicted.is_empty(), "{again:#?}");
    sandbox_image_is_there(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_a_container_uses_is_never_evicted() {
    let mut s = Scratch::new("container");
    let Some(engine) = docker("an_image_a_container_uses_is_never_evicted", &s.worker).await else { return };
    let (used_ref, free_ref) = (format!("{}:used", s.repo), format!("{}:free", s.repo));
    // The used image is made first: unused since the start, it is the least recent of the two.
    let used = s.image(&engine, &used_ref).await;
    let free = s.image(&engine, &free_ref).await;
    let container = s.container(&engine, &used_ref).await;
    let (cache, _metrics) = cache(&engine, &s, "1", &[]).await;
    cache.record_use(&free_ref);
    let report = cache.evict_to_budget().await.expect("a pass");
    assert_eq!(evicted_ids(&report), [free.as_str()], "only the image no container uses goes: {report:#?}");
    assert!(exists(&engine, &used).await, "an image a (stopped) container uses was removed");
    assert!(report.remaining_bytes > 1, "the pass knows it is still over budget: {report:#?}");
    assert!(report.refused.is_empty(), "the used image is never even tried: {report:#?}");
    // The container was what kept it: once it is gone the image goes too.
    engine.remove_by_id(&container).await;
    let report = cache.evict_to_budget().await.expect("a pass");
    assert_eq!(evicted_ids(&report), [used.as_str()], "{report:#?}");
    assert!(!exists(&engine, &used).await);
    sandbox_image_is_there(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_image_is_never_evicted_until_the_pin_drops() {
    let mut s = Scratch::new("pin");
    let Some(engine) = docker("a_pinned_image_is_never_evicted_until_the_pin_drops", &s.worker).await else { return };
    let (pinned_ref, free_ref) = (format!("{}:pinned", s.repo), format!("{}:free", s.repo));
    let pinned = s.image(&engine, &pinned_ref).await;
    let free = s.image(&engine, &free_ref).await;
    let (cache, _metrics) = cache(&engine, &s, "1", &[]).await;
    // Pinned as a task may spell it (`docker.io/...`), the way an episode pins before init.
    let pin = cache.pin(&format!("docker.io/{pinned_ref}")).await;
    let second = cache.pin(&pinned_ref).await;
    let report = cache.evict_to_budget().await.expect("a pass");
    assert_eq!(evicted_ids(&report), [free.as_str()], "{report:#?}");
    assert!(exists(&engine, &pinned).await, "a pinned image was removed");
    drop(pin);
    let report = cache.evict_to_budget().await.expect("a pass");
    assert!(report.evicted.is_empty(), "still pinned by the second episode: {report:#?}");
    assert!(exists(&engine, &pinned).await, "an image one episode still pins was removed");
    drop(second);
    let report = cache.evict_to_budget().await.expect("a pass");
    assert_eq!(evicted_ids(&report), [pinned.as_str()], "unpinned, it goes: {report:#?}");
    sandbox_image_is_there(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_without_a_digest_or_an_evict_pattern_and_kept_images_are_never_touched() {
    let mut s = Scratch::new("untouched");
    let Some(engine) = docker("images_without_a_digest_or_an_evict_pattern_and_kept_images_are_never_touched", &s.worker).await else { return };
    // Not under this test's evict pattern, and without a digest: like an image built here.
    let local_ref = format!("agentmill-test/local-{}:1", &s.worker);
    let local = s.image(&engine, &local_ref).await;
    let kept_ref = format!("{}:kept", s.repo);
    let kept = s.image(&engine, &kept_ref).await;
    let gone_ref = format!("{}:gone", s.repo);
    let gone = s.image(&engine, &gone_ref).await;
    // No `agentmill/*` in keep: the sandbox image is protected by having no digest alone.
    let (cache, _metrics) = cache(&engine, &s, "1", std::slice::from_ref(&kept_ref)).await;
    let size = sizes(&cache).await;
    let report = cache.evict_to_budget().await.expect("a pass");
    assert_eq!(evicted_ids(&report), [gone.as_str()], "{report:#?}");
    assert_eq!(report.evictable_bytes, size[&gone], "neither the local, the kept nor the sandbox image counts against the budget");
    assert_eq!(report.remaining_bytes, 0);
    assert!(exists(&engine, &local).await, "an image with no digest and no evict pattern was removed");
    assert!(exists(&engine, &kept).await, "an image a keep pattern names was removed");
    sandbox_image_is_there(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_budget_removes_nothing() {
    let mut s = Scratch::new("default");
    let Some(engine) = docker("the_default_budget_removes_nothing", &s.worker).await else { return };
    let a = s.image(&engine, &format!("{}:a", s.repo)).await;
    let b = s.image(&engine, &format!("{}:b", s.repo)).await;
    assert_eq!(WorkerConfig::default().images.budget, "", "the default budget is none");
    let (cache, metrics) = cache(&engine, &s, &WorkerConfig::default().images.budget, &[]).await;
    assert_eq!(cache.policy().budget, None);
    let size = sizes(&cache).await;
    let report = cache.evict_to_budget().await.expect("a pass");
    assert!(report.evicted.is_empty(), "{report:#?}");
    assert_eq!(report.evictable_bytes, size[&a] + size[&b], "it still measures what it could evict");
    assert_eq!(metrics.images.evictable_bytes.get() as u64, size[&a] + size[&b]);
    assert_eq!(metrics.images.evicted.get(), 0);
    assert!(exists(&engine, &a).await && exists(&engine, &b).await, "an image was removed without a budget");
    sandbox_image_is_there(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_named_in_two_repositories_is_evicted_whole() {
    let mut s = Scratch::new("aliases");
    let Some(engine) = docker("an_image_named_in_two_repositories_is_evicted_whole", &s.worker).await else { return };
    let first = format!("{}:m", s.repo);
    let id = s.image(&engine, &first).await;
    // Docker refuses to remove an image by id, unforced, while two repositories name it.
    let alias_repo = format!("{}-alias", s.repo);
    let options = TagImageOptionsBuilder::new().repo(&alias_repo).tag("m").build();
    engine.client().tag_image(&first, Some(options)).await.expect("tag the image in a second repository");
    let (cache, _metrics) = cache(&engine, &s, "1", &[]).await;
    let report = cache.evict_to_budget().await.expect("a pass");
    assert_eq!(evicted_ids(&report), [id.as_str()], "{report:#?}");
    assert!(!exists(&engine, &id).await, "the image is still there");
    assert!(!exists(&engine, &format!("{alias_repo}:m")).await, "the alias is still there");
    sandbox_image_is_there(&engine).await;
}
