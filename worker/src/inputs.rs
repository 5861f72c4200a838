//! A task's inputs, read without trusting whoever submitted the task.
//!
//! A task names its repository archive, its synthesis rows, issues file or git repository either
//! as content it carried to the coordinator (`content:<sha256>`: fetched with `GetContent`,
//! size-capped, its hash checked) or as a path on this host, which is opened only when it lies
//! under a root the worker's configuration allows (`host_roots`): the path made canonical first,
//! no symbolic link followed, a regular file (or, for a git repository, a folder), size-capped.
//! Archives are decompressed once before they reach a sandbox, against caps on their unpacked
//! size and entry count, so a gzip bomb costs the worker nothing. Errors name the field and the
//! fix, and never carry a file's contents or hash.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentmill_proto::v1::{self, coordinator_client::CoordinatorClient};
use agentmill_proto::{SynthSpec, Task, content_ref};
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// Where inputs come from and how much of them a worker reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The coordinator to fetch content from (`None`: content cannot be fetched, e.g. a local run).
    pub coordinator: Option<CoordinatorAccess>,
    /// Folders under which a task may name host paths; empty: none.
    pub roots: Vec<PathBuf>,
    /// The most bytes read of one input (content or file).
    pub max_bytes: u64,
    /// The most bytes an archive may unpack to.
    pub max_unpacked_bytes: u64,
    /// The most entries an archive may hold.
    pub max_entries: u64,
    /// Content fetched before, by hash (shared by every clone of these inputs).
    pub cache: ContentCache,
}

/// Content fetched from the coordinator, kept by its SHA-256 up to a byte budget (the least
/// recently used goes first). Content is immutable under its hash, so a rollout's grading step,
/// the task's other rollouts and its retries reuse what one fetch brought — and a worker cut off
/// from the coordinator can still finish the episodes it holds.
#[derive(Clone)]
pub struct ContentCache {
    inner: std::sync::Arc<std::sync::Mutex<CacheInner>>,
}

struct CacheInner {
    entries: lru::LruCache<String, std::sync::Arc<Vec<u8>>>,
    bytes: u64,
    budget: u64,
}

impl std::fmt::Debug for ContentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, bytes, budget) = self.usage();
        f.debug_struct("ContentCache").field("entries", &n).field("bytes", &bytes).field("budget", &budget).finish()
    }
}

impl ContentCache {
    /// A cache holding at most `budget` bytes (0: it keeps nothing).
    pub fn new(budget: u64) -> ContentCache {
        ContentCache { inner: std::sync::Arc::new(std::sync::Mutex::new(CacheInner { entries: lru::LruCache::unbounded(), bytes: 0, budget })) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The content under `sha`, if held (it becomes the most recently used).
    pub fn get(&self, sha: &str) -> Option<std::sync::Arc<Vec<u8>>> {
        self.lock().entries.get(sha).cloned()
    }

    /// Keeps `data` under `sha`, dropping the least recently used content past the budget.
    /// Content larger than the whole budget is not kept.
    pub fn put(&self, sha: &str, data: std::sync::Arc<Vec<u8>>) {
        let mut c = self.lock();
        let size = data.len() as u64;
        if size > c.budget {
            return;
        }
        if let Some(old) = c.entries.put(sha.to_string(), data) {
            c.bytes -= old.len() as u64;
        }
        c.bytes += size;
        while c.bytes > c.budget {
            let Some((_, gone)) = c.entries.pop_lru() else { break };
            c.bytes -= gone.len() as u64;
        }
    }

    /// (entries, bytes held, budget).
    pub fn usage(&self) -> (usize, u64, u64) {
        let c = self.lock();
        (c.entries.len(), c.bytes, c.budget)
    }
}

/// How to reach the coordinator's content store.
#[derive(Debug, Clone)]
pub struct CoordinatorAccess {
    /// `http://host:port` or `https://…`.
    pub addr: String,
    /// Bearer token.
    pub token: Option<String>,
    /// CA certificate for https.
    pub ca_cert: Option<PathBuf>,
}

/// Why an input could not be read. Messages name the task's field and never its bytes or hash.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A host path outside the allowed roots (or none are allowed).
    #[error("{field}: {path:?} is a path on this worker's disk outside the folders its configuration allows (inputs.host_roots); send the file with the task (agentmill submit uploads it as content:<sha256>) or add its folder to inputs.host_roots")]
    NotAllowed {
        /// The field.
        field: String,
        /// The path as the task wrote it.
        path: String,
    },
    /// The path is not what it must be (a link, not a regular file, missing).
    #[error("{field}: {path:?} {what}")]
    BadPath {
        /// The field.
        field: String,
        /// The path as the task wrote it.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// More bytes than allowed.
    #[error("{field}: the input is larger than {limit} bytes ({what}); raise the worker's {key} or send a smaller one")]
    TooLarge {
        /// The field.
        field: String,
        /// Which limit.
        what: &'static str,
        /// The config key.
        key: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The content could not be fetched.
    #[error("{field}: fetching its content from the coordinator failed: {reason}")]
    Fetch {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The bytes are not what the task says (hash mismatch, not an archive).
    #[error("{field}: {what}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        what: String,
    },
}

impl Default for Inputs {
    /// Trusts no host path and fetches nothing; the configuration's default caps.
    fn default() -> Inputs {
        Inputs::none()
    }
}

impl Inputs {
    /// Inputs that trust no host path and fetch nothing (tests set what they need).
    pub fn none() -> Inputs {
        Inputs { coordinator: None, roots: Vec::new(), max_bytes: 1 << 30, max_unpacked_bytes: 8 << 30, max_entries: 1_000_000, cache: ContentCache::new(0) }
    }

    /// Reads the input `spec` names (`content:<sha256>` or a host path) for `field`.
    pub async fn read(&self, field: &str, spec: &str) -> Result<Vec<u8>, InputError> {
        match content_ref(spec) {
            Some(sha) => self.fetch(field, sha).await,
            None => {
                let path = self.host_path(field, spec, false)?;
                let field = field.to_string();
                let max = self.max_bytes;
                tokio::task::spawn_blocking(move || read_capped(&field, &path, max))
                    .await
                    .map_err(|e| InputError::Invalid { field: "input".into(), what: format!("reading failed: {e}") })?
            }
        }
    }

    /// A host path a task names, checked: under an allowed root once made canonical, reached
    /// without a symbolic link, a regular file (`dir`: a folder).
    pub fn host_path(&self, field: &str, spec: &str, dir: bool) -> Result<PathBuf, InputError> {
        let raw = spec.strip_prefix("file://").unwrap_or(spec);
        let path = Path::new(raw);
        let bad = |what: &str| InputError::BadPath { field: field.to_string(), path: spec.to_string(), what: what.to_string() };
        if !path.is_absolute() || self.roots.is_empty() {
            return Err(InputError::NotAllowed { field: field.to_string(), path: spec.to_string() });
        }
        let canonical = std::fs::canonicalize(path).map_err(|_| bad("does not exist on this worker"))?;
        // A link anywhere on the way makes the canonical path differ from the written one.
        if canonical != path {
            return Err(bad("is reached through a symbolic link (or is not written canonically); name the file itself"));
        }
        let under = self.roots.iter().filter_map(|r| std::fs::canonicalize(r).ok()).any(|root| canonical.starts_with(&root));
        if !under {
            return Err(InputError::NotAllowed { field: field.to_string(), path: spec.to_string() });
        }
        let meta = std::fs::symlink_metadata(&canonical).map_err(|_| bad("cannot be read"))?;
        match (dir, meta.file_type().is_file(), meta.file_type().is_dir()) {
            (false, true, _) | (true, _, true) => Ok(canonical),
            (false, ..) => Err(bad("is not a regular file")),
            (true, ..) => Err(bad("is not a folder")),
        }
    }

    /// Content `sha`: from the cache when a fetch brought it before, else fetched from the
    /// coordinator, capped, its hash checked, and kept.
    pub async fn fetch(&self, field: &str, sha: &str) -> Result<Vec<u8>, InputError> {
        if let Some(data) = self.cache.get(sha) {
            return Ok(data.as_ref().clone());
        }
        let data = self.fetch_from_coordinator(field, sha).await?;
        self.cache.put(sha, std::sync::Arc::new(data.clone()));
        Ok(data)
    }

    async fn fetch_from_coordinator(&self, field: &str, sha: &str) -> Result<Vec<u8>, InputError> {
        let fail = |reason: String| InputError::Fetch { field: field.to_string(), reason };
        let Some(access) = &self.coordinator else {
            return Err(fail("this worker has no coordinator to fetch content from".into()));
        };
        let mut endpoint = Endpoint::from_shared(access.addr.clone()).map_err(|e| fail(format!("coordinator address: {e}")))?.connect_timeout(Duration::from_secs(5));
        if access.addr.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_enabled_roots();
            if let Some(ca) = &access.ca_cert {
                let pem = std::fs::read(ca).map_err(|e| fail(format!("ca_cert {}: {e}", ca.display())))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| fail(format!("TLS settings: {e}")))?;
        }
        let channel = endpoint.connect().await.map_err(|e| fail(format!("connect: {e}")))?;
        let token: Option<MetadataValue<_>> = match &access.token {
            Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| fail("the token is not printable ASCII".into()))?),
            None => None,
        };
        let mut client = CoordinatorClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
            if let Some(t) = &token {
                req.metadata_mut().insert("authorization", t.clone());
            }
            Ok(req)
        })
        .max_decoding_message_size(16 << 20);
        let mut stream = client
            .get_content(v1::GetContentRequest { sha256: sha.to_string() })
            .await
            .map_err(|s| fail(format!("{}: {}", s.code(), s.message())))?
            .into_inner();
        let mut data = Vec::new();
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.message().await.map_err(|s| fail(format!("{}: {}", s.code(), s.message())))? {
            if (data.len() + chunk.data.len()) as u64 > self.max_bytes {
                return Err(InputError::TooLarge { field: field.to_string(), what: "content", key: "inputs.max_bytes", limit: self.max_bytes });
            }
            hasher.update(&chunk.data);
            data.extend_from_slice(&chunk.data);
        }
        if hex(&hasher.finalize()) != sha {
            return Err(InputError::Invalid { field: field.to_string(), what: "the content fetched does not hash to the sha256 the task names".into() });
        }
        Ok(data)
    }

    /// Checks an archive before it reaches a sandbox: it must be a tar (gzip-compressed or
    /// not) whose entries unpack to at most `max_unpacked_bytes` in at most `max_entries`.
    pub fn check_archive(&self, field: &str, bytes: &[u8]) -> Result<(), InputError> {
        check_archive(field, bytes, self.max_unpacked_bytes, self.max_entries)
    }

    /// The synthesis job of `task` with its inputs on this host: content fetched into `dir`
    /// (a git bundle cloned there), host paths checked against the roots. The returned task names
    /// only local paths the job may read.
    pub async fn localise_synth(&self, task: &Task, dir: &Path) -> Result<Task, InputError> {
        let mut task = task.clone();
        let Some(spec) = task.synth.clone() else { return Ok(task) };
        let spec = match spec {
            SynthSpec::Rows { path, offset, limit } => SynthSpec::Rows { path: self.local_file("synth.path", &path, dir, "rows").await?, offset, limit },
            SynthSpec::Git { repo_path, from_rev, to_rev, single_commits, issues_path } => {
                let repo_path = match content_ref(&repo_path) {
                    Some(sha) => {
                        let bundle = self.fetch("synth.repo_path", sha).await?;
                        let file = dir.join("repo.bundle");
                        std::fs::write(&file, bundle).map_err(|e| InputError::Invalid { field: "synth.repo_path".into(), what: format!("writing the bundle: {e}") })?;
                        let clone = dir.join("repo");
                        let out = std::process::Command::new("git")
                            .args(["clone", "-q"])
                            .arg(&file)
                            .arg(&clone)
                            .env("GIT_CONFIG_NOSYSTEM", "1")
                            .output()
                            .map_err(|e| InputError::Invalid { field: "synth.repo_path".into(), what: format!("running git: {e}") })?;
                        if !out.status.success() {
                            return Err(InputError::Invalid { field: "synth.repo_path".into(), what: format!("the content is not a git bundle git can clone: {}", String::from_utf8_lossy(&out.stderr).trim()) });
                        }
                        clone.to_string_lossy().into_owned()
                    }
                    None => self.host_path("synth.repo_path", &repo_path, true)?.to_string_lossy().into_owned(),
                };
                let issues_path = if issues_path.is_empty() { issues_path } else { self.local_file("synth.issues_path", &issues_path, dir, "issues").await? };
                SynthSpec::Git { repo_path, from_rev, to_rev, single_commits, issues_path }
            }
        };
        task.synth = Some(spec);
        Ok(task)
    }

    /// A local file for `spec`: content written into `dir/name`, or the checked host path.
    async fn local_file(&self, field: &str, spec: &str, dir: &Path, name: &str) -> Result<String, InputError> {
        match content_ref(spec) {
            Some(sha) => {
                let data = self.fetch(field, sha).await?;
                let path = dir.join(name);
                std::fs::write(&path, data).map_err(|e| InputError::Invalid { field: field.to_string(), what: format!("writing it here: {e}") })?;
                Ok(path.to_string_lossy().into_owned())
            }
            None => {
                let path = self.host_path(field, spec, false)?;
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if size > self.max_bytes {
                    return Err(InputError::TooLarge { field: field.to_string(), what: "file", key: "inputs.max_bytes", limit: self.max_bytes });
                }
                Ok(path.to_string_lossy().into_owned())
            }
        }
    }
}

/// Reads at most `max` bytes of a (checked) host file; more is an error.
fn read_capped(field: &str, path: &Path, max: u64) -> Result<Vec<u8>, InputError> {
    let file = std::fs::File::open(path).map_err(|_| InputError::BadPath { field: field.to_string(), path: path.display().to_string(), what: "cannot be opened".into() })?;
    let mut data = Vec::new();
    file.take(max + 1).read_to_end(&mut data).map_err(|_| InputError::BadPath { field: field.to_string(), path: path.display().to_string(), what: "cannot be read".into() })?;
    if data.len() as u64 > max {
        return Err(InputError::TooLarge { field: field.to_string(), what: "file", key: "inputs.max_bytes", limit: max });
    }
    Ok(data)
}

/// See [`Inputs::check_archive`].
pub fn check_archive(field: &str, bytes: &[u8], max_unpacked: u64, max_entries: u64) -> Result<(), InputError> {
    let invalid = |what: String| InputError::Invalid { field: field.to_string(), what };
    let gz = bytes.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gz { Box::new(flate2::read::GzDecoder::new(bytes)) } else { Box::new(bytes) };
    // The decompressed stream itself is capped: a bomb stops at the limit, not at the end.
    let mut archive = tar::Archive::new(reader.take(max_unpacked.saturating_add(1 << 20)));
    let (mut total, mut count) = (0u64, 0u64);
    let entries = archive.entries().map_err(|e| invalid(format!("is not a tar archive ({e})")))?;
    for entry in entries {
        let entry = entry.map_err(|e| invalid(format!("is not a readable tar archive ({e}), or it unpacks past the worker's inputs.max_unpacked_bytes ({max_unpacked} bytes)")))?;
        count += 1;
        total = total.saturating_add(entry.header().size().unwrap_or(0));
        if count > max_entries {
            return Err(InputError::TooLarge { field: field.to_string(), what: "entries in the archive", key: "inputs.max_entries", limit: max_entries });
        }
        if total > max_unpacked {
            return Err(InputError::TooLarge { field: field.to_string(), what: "unpacked archive", key: "inputs.max_unpacked_bytes", limit: max_unpacked });
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_cache_keeps_its_budget_and_drops_the_least_recently_used() {
        let cache = ContentCache::new(10);
        let bytes = |n: usize| std::sync::Arc::new(vec![7u8; n]);
        cache.put("a", bytes(4));
        cache.put("b", bytes(4));
        assert!(cache.get("a").is_some(), "a is now the most recently used");
        cache.put("c", bytes(4));
        assert_eq!(cache.usage(), (2, 8, 10));
        assert!(cache.get("b").is_none(), "b, the least recently used, went first");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        cache.put("huge", bytes(11));
        assert!(cache.get("huge").is_none(), "content larger than the budget is not kept");
        assert_eq!(cache.usage(), (2, 8, 10));
        cache.put("a", bytes(6));
        assert_eq!(cache.usage(), (2, 10, 10), "replacing a counts its new size, not both");
        cache.put("d", bytes(1));
        assert!(cache.get("c").is_none() && cache.get("a").is_some(), "c, now the least recently used, made room");
        let none = ContentCache::new(0);
        none.put("a", bytes(1));
        assert_eq!(none.usage(), (0, 0, 0));
    }

    fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data.as_slice()).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, data).expect("gzip");
        e.finish().expect("gzip")
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        // 64 MiB of zeros compress to a few dozen KiB.
        let bomb = gzip(&tar_of(&[("zeros", vec![0u8; 64 << 20])]));
        assert!(bomb.len() < 1 << 20);
        let err = check_archive("archive", &bomb, 8 << 20, 100).expect_err("refused");
        assert!(err.to_string().contains("max_unpacked_bytes"), "{err}");
        assert!(check_archive("archive", &bomb, 128 << 20, 100).is_ok());
        let many = tar_of(&(0..50).map(|i| (Box::leak(format!("f{i}").into_boxed_str()) as &str, vec![1u8])).collect::<Vec<_>>());
        assert!(check_archive("archive", &many, 1 << 20, 10).expect_err("too many").to_string().contains("max_entries"));
        assert!(check_archive("archive", b"not an archive at all", 1 << 20, 10).is_err());
    }

    #[test]
    fn host_paths_only_under_the_roots_as_regular_files_without_links() {
        let root = tempfile::tempdir().expect("tmp");
        let outside = tempfile::tempdir().expect("tmp");
        let file = root.path().join("a.tar");
        std::fs::write(&file, b"x").expect("write");
        std::fs::write(outside.path().join("secret"), b"s").expect("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link")).expect("link");
        let root_path = std::fs::canonicalize(root.path()).expect("canonical");
        let inputs = Inputs { roots: vec![root_path.clone()], ..Inputs::none() };
        let ok = root_path.join("a.tar");
        assert_eq!(inputs.host_path("archive", ok.to_str().expect("utf8"), false).expect("allowed"), ok);
        let denied = |p: String| inputs.host_path("archive", &p, false).expect_err("refused").to_string();
        assert!(denied(outside.path().join("secret").display().to_string()).contains("outside the folders"));
        assert!(denied(root_path.join("link").display().to_string()).contains("symbolic link"));
        assert!(denied("/dev/zero".into()).contains("outside the folders"));
        assert!(denied(root_path.display().to_string()).contains("not a regular file"));
        assert!(denied("relative/a.tar".into()).contains("outside the folders"));
        assert!(Inputs::none().host_path("archive", ok.to_str().expect("utf8"), false).is_err(), "no roots, no host paths");
    }
}
