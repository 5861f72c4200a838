//! Content a client's tasks carry: repository archives, synthesis rows and issues files, git
//! bundles. The client uploads the bytes (`PutContent`), the coordinator keeps them in Redis
//! under their SHA-256 (`{ns}:content:{sha256}`, written once), a task names them as
//! `content:<sha256>`, and a worker streams them back (`GetContent`). So a task never makes a
//! worker open a path on its own disk: what a task runs on travelled with it.

use redis::AsyncCommands;
use sha2::{Digest, Sha256};

/// The prefix a task writes before a content hash.
pub use agentmill_proto::task::CONTENT_PREFIX;

/// Chunk size of `GetContent` replies.
pub const CHUNK: usize = 1 << 20;

/// Why content could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// More bytes than the coordinator keeps for one piece of content.
    #[error("the content is larger than max_content_bytes ({limit} bytes); raise it in the coordinator's configuration or send less")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// No content under that hash.
    #[error("no content is stored under sha256 {0}; upload it with PutContent first (agentmill submit does)")]
    NotFound(String),
    /// Not a SHA-256 in lower-case hex.
    #[error("{0:?} is not a sha256 (64 lower-case hex digits)")]
    BadHash(String),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The content store over the coordinator's Redis.
#[derive(Clone)]
pub struct ContentStore {
    redis: redis::aio::ConnectionManager,
    namespace: String,
    max_bytes: u64,
}

impl std::fmt::Debug for ContentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentStore").field("namespace", &self.namespace).field("max_bytes", &self.max_bytes).finish()
    }
}

/// Whether `s` is a SHA-256 in lower-case hex.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ContentStore {
    /// A store under `namespace` keeping at most `max_bytes` per piece.
    pub fn new(redis: redis::aio::ConnectionManager, namespace: &str, max_bytes: u64) -> ContentStore {
        ContentStore { redis, namespace: namespace.to_string(), max_bytes }
    }

    fn key(&self, sha256: &str) -> String {
        format!("{}:content:{sha256}", self.namespace)
    }

    /// The per-piece limit.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Stores `data` (once; the same bytes again change nothing); answers its hash.
    pub async fn put(&self, data: &[u8]) -> Result<String, ContentError> {
        if data.len() as u64 > self.max_bytes {
            return Err(ContentError::TooLarge { limit: self.max_bytes });
        }
        let sha = hex(&Sha256::digest(data));
        let mut con = self.redis.clone();
        let _: bool = redis::cmd("SET").arg(self.key(&sha)).arg(data).arg("NX").query_async(&mut con).await.map(|v: Option<String>| v.is_some())?;
        Ok(sha)
    }

    /// Whether content is stored under `sha256`.
    pub async fn exists(&self, sha256: &str) -> Result<bool, ContentError> {
        if !is_sha256(sha256) {
            return Err(ContentError::BadHash(sha256.to_string()));
        }
        let mut con = self.redis.clone();
        Ok(con.exists(self.key(sha256)).await?)
    }

    /// The size of the content under `sha256`.
    pub async fn size(&self, sha256: &str) -> Result<u64, ContentError> {
        if !self.exists(sha256).await? {
            return Err(ContentError::NotFound(sha256.to_string()));
        }
        let mut con = self.redis.clone();
        Ok(con.strlen(self.key(sha256)).await?)
    }

    /// Bytes `[start, start + len)` of the content under `sha256`.
    pub async fn read(&self, sha256: &str, start: u64, len: u64) -> Result<Vec<u8>, ContentError> {
        let mut con = self.redis.clone();
        let end = (start + len).saturating_sub(1);
        let bytes: Vec<u8> = con.getrange(self.key(sha256), start as isize, end as isize).await?;
        Ok(bytes)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
