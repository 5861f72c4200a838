//! The client's side of content that travels with tasks: the files a row names on the client's
//! machine (a repository archive, a synthesis job's rows or issues file, a local git
//! repository) are uploaded with `PutContent`, and the row names them as `content:<sha256>`.
//! A worker then never opens a path a client wrote.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use agentmill_proto::CONTENT_PREFIX;
use agentmill_proto::v1;
use anyhow::{Context, bail};
use serde_json::Value;

use agentmill_proto::connect::Client;

/// The chunk size of an upload.
const CHUNK: usize = 1 << 20;

/// Uploads `data`; answers `content:<sha256>`.
pub async fn put_content(client: &mut Client, data: Vec<u8>) -> anyhow::Result<String> {
    let chunks: Vec<v1::ContentChunk> = if data.is_empty() { vec![v1::ContentChunk { data: Vec::new() }] } else { data.chunks(CHUNK).map(|c| v1::ContentChunk { data: c.to_vec() }).collect() };
    let reply = client.put_content(tokio_stream::iter(chunks)).await.map_err(|s| anyhow::anyhow!("PutContent failed: {}: {}", s.code(), s.message()))?.into_inner();
    Ok(format!("{CONTENT_PREFIX}{}", reply.sha256))
}

/// A local git repository as one file: `git bundle create --all` (every branch and tag, so any
/// revision range the job names can be read from it).
pub fn git_bundle(repo: &Path) -> anyhow::Result<Vec<u8>> {
    let tmp = tempfile::tempdir().context("a temporary folder for the bundle")?;
    let file = tmp.path().join("repo.bundle");
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["bundle", "create"])
        .arg(&file)
        .args(["--all"])
        .output()
        .with_context(|| format!("running git bundle in {}", repo.display()))?;
    if !out.status.success() {
        bail!("{} is not a git repository git can bundle: {}", repo.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    std::fs::read(&file).with_context(|| format!("reading the bundle of {}", repo.display()))
}

/// Uploads the local files rows name, once each.
#[derive(Debug, Default)]
pub struct Uploads {
    done: HashMap<PathBuf, String>,
}

impl Uploads {
    /// Uploads the file (or, with `bundle`, the git repository) at `path`, or answers the
    /// reference of an earlier upload of it.
    async fn upload(&mut self, client: &mut Client, path: &Path, bundle: bool) -> anyhow::Result<String> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(r) = self.done.get(&key) {
            return Ok(r.clone());
        }
        let data = if bundle { git_bundle(path)? } else { std::fs::read(path).with_context(|| format!("reading {}", path.display()))? };
        let r = put_content(client, data).await.with_context(|| format!("uploading {}", path.display()))?;
        self.done.insert(key, r.clone());
        Ok(r)
    }

    /// Rewrites a JSON row so that every file it names that exists on this machine (relative
    /// paths against `base_dir`) is uploaded and named as content: the row's `archive` (or
    /// `source.path`), and a synthesis job's `path`, `issues_path` and `repo_path` (a git
    /// repository, sent as a bundle). Paths that do not exist here are left as they are (a
    /// worker opens them only under the roots its configuration allows). A row that is not a JSON
    /// object is returned unchanged (the coordinator refuses it with the reason).
    pub async fn localise_row(&mut self, client: &mut Client, base_dir: &Path, row: &str) -> anyhow::Result<String> {
        let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(row) else { return Ok(row.to_string()) };
        let local = |p: &str| -> Option<PathBuf> {
            if p.is_empty() || p.starts_with(CONTENT_PREFIX) || (p.contains("://") && !p.starts_with("file://")) {
                return None;
            }
            let p = Path::new(p.strip_prefix("file://").unwrap_or(p));
            let p = if p.is_absolute() { p.to_path_buf() } else { base_dir.join(p) };
            p.exists().then_some(p)
        };
        let mut changed = false;
        if let Some(Value::String(p)) = obj.get("archive").cloned()
            && let Some(path) = local(&p)
        {
            obj.insert("archive".into(), Value::String(self.upload(client, &path, false).await?));
            changed = true;
        }
        if let Some(Value::Object(src)) = obj.get_mut("source")
            && src.get("type").and_then(Value::as_str) == Some("archive")
            && let Some(Value::String(p)) = src.get("path").cloned()
            && let Some(path) = local(&p)
        {
            src.insert("path".into(), Value::String(self.upload(client, &path, false).await?));
            changed = true;
        }
        if let Some(Value::Object(synth)) = obj.get_mut("synth") {
            for (key, bundle) in [("path", false), ("issues_path", false), ("repo_path", true)] {
                if let Some(Value::String(p)) = synth.get(key).cloned()
                    && let Some(path) = local(&p)
                {
                    synth.insert(key.into(), Value::String(self.upload(client, &path, bundle).await?));
                    changed = true;
                }
            }
        }
        Ok(if changed { Value::Object(obj).to_string() } else { row.to_string() })
    }
}
