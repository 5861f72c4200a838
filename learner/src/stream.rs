//! Reading trajectory records from the Redis stream with a consumer group.
//!
//! One consumer group per learner job (`group`), one consumer name per learner process. Entries
//! are read with `XREADGROUP`; they stay pending until [`StreamReader::ack`] — which the trainer
//! calls only after a checkpoint holds their effect. After a crash, the entries this consumer
//! had read but not acknowledged are delivered again first (`XREADGROUP` from id `0`, walking
//! forward), and entries other consumers of the group left pending for longer than `claim_idle`
//! are claimed (`XAUTOCLAIM`). Both kinds come back with [`Entry::redelivered`] set. The
//! service dedupes by `record_id`, so a record published twice is trained once per run.
//!
//! [`StreamScan`] reads a stream without a consumer group (`XRANGE`), for the offline tools
//! (`tokenizer train --stream`, `export --stream`): it neither claims nor acknowledges anything.

use std::time::Duration;

use agentmill_proto::{TrajectoryRecord, wire};
use redis::aio::ConnectionManager;
use redis::streams::{StreamReadOptions, StreamReadReply};

pub use agentmill_proto::wire::DEFAULT_STREAM;

/// Where and how to read.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Redis URL.
    pub redis_url: String,
    /// Stream key.
    pub stream: String,
    /// Consumer group (one per learner job).
    pub group: String,
    /// This process's consumer name.
    pub consumer: String,
    /// Entries per read.
    pub batch: usize,
    /// How long a read waits for new entries.
    pub block: Duration,
    /// Entries pending on another consumer this long are claimed.
    pub claim_idle: Duration,
}

/// One stream entry, decoded.
#[derive(Debug)]
pub struct Entry {
    /// The stream entry id (`ms-seq`).
    pub id: String,
    /// The record, or why it could not be read (it is acknowledged and counted, never retried).
    pub record: Result<TrajectoryRecord, wire::WireError>,
    /// Delivered before (this consumer's pending entries after a restart, or claimed from
    /// another consumer); false for a first delivery.
    pub redelivered: bool,
}

/// Why the stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Redis failed.
    #[error("redis stream {stream}: {source}")]
    Redis {
        /// The stream.
        stream: String,
        /// The error.
        source: redis::RedisError,
    },
    /// The consumer group was gone and has been created again; reading goes on.
    #[error(
        "consumer group {group} of stream {stream} was gone (Redis lost its data, or the group or stream was \
         deleted); created it again, reading from the stream's start: records trained before are skipped by \
         record_id, and what Redis lost must be published again (resubmit the tasks)"
    )]
    GroupRecreated {
        /// The stream.
        stream: String,
        /// The group.
        group: String,
    },
}

impl StreamError {
    /// Whether reading can go on at once (the group was recreated) rather than after a pause.
    pub fn recovered(&self) -> bool {
        matches!(self, StreamError::GroupRecreated { .. })
    }
}

/// A consumer of the trajectory stream.
pub struct StreamReader {
    cfg: StreamConfig,
    con: ConnectionManager,
    /// Still re-reading this consumer's own pending entries (after a restart), from after this id.
    replay_cursor: Option<String>,
    claim_cursor: String,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader").field("cfg", &self.cfg).field("replay_cursor", &self.replay_cursor).finish()
    }
}

impl StreamReader {
    /// Connects and creates the group (reading from the stream's beginning) when missing.
    pub async fn connect(cfg: StreamConfig) -> Result<StreamReader, StreamError> {
        let err = |source| StreamError::Redis { stream: cfg.stream.clone(), source };
        let client = redis::Client::open(cfg.redis_url.as_str()).map_err(err)?;
        // A blocking read holds its reply for up to `block`; the client's default response
        // timeout (500 ms) would cut every longer read off as an error.
        let config =
            redis::aio::ConnectionManagerConfig::new().set_response_timeout(Some(cfg.block + Duration::from_secs(10)));
        let con = ConnectionManager::new_with_config(client, config).await.map_err(err)?;
        let mut reader = StreamReader { cfg, con, replay_cursor: Some("0".into()), claim_cursor: "0-0".into() };
        reader.create_group().await?;
        Ok(reader)
    }

    /// Creates the group, reading from the stream's beginning (and the stream, when missing);
    /// a group that exists is left as it is.
    async fn create_group(&mut self) -> Result<(), StreamError> {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.con)
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    fn err(&self, source: redis::RedisError) -> StreamError {
        StreamError::Redis { stream: self.cfg.stream.clone(), source }
    }

    /// The next entries: this consumer's unacknowledged ones first (after a restart), then
    /// entries idle on other consumers, then new ones (waiting up to `block`). Empty when nothing
    /// arrived in time.
    ///
    /// When the group is gone (`NOGROUP`: Redis restarted without its data, or someone deleted
    /// the stream or the group), creates it again and answers [`StreamError::GroupRecreated`]
    /// once; the next call reads the new group from the stream's start.
    pub async fn next_batch(&mut self) -> Result<Vec<Entry>, StreamError> {
        match self.read().await {
            Err(StreamError::Redis { source, .. }) if source.code() == Some("NOGROUP") => {
                self.create_group().await?;
                self.replay_cursor = Some("0".into());
                self.claim_cursor = "0-0".into();
                Err(StreamError::GroupRecreated { stream: self.cfg.stream.clone(), group: self.cfg.group.clone() })
            }
            other => other,
        }
    }

    async fn read(&mut self) -> Result<Vec<Entry>, StreamError> {
        if let Some(cursor) = self.replay_cursor.clone() {
            // Pending entries stay pending until acknowledged, so the cursor walks past the
            // ones returned instead of reading the same first page again.
            let opts = StreamReadOptions::default().group(&self.cfg.group, &self.cfg.consumer).count(self.cfg.batch);
            let reply: StreamReadReply =
                redis::AsyncCommands::xread_options(&mut self.con, &[&self.cfg.stream], &[&cursor], &opts)
                    .await
                    .map_err(|e| self.err(e))?;
            let entries = decode(reply, true);
            if let Some(last) = entries.last() {
                self.replay_cursor = Some(last.id.clone());
                return Ok(entries);
            }
            self.replay_cursor = None;
        }
        let claimed = self.claim().await?;
        if !claimed.is_empty() {
            return Ok(claimed);
        }
        let opts = StreamReadOptions::default()
            .group(&self.cfg.group, &self.cfg.consumer)
            .count(self.cfg.batch)
            .block(self.cfg.block.as_millis() as usize);
        let reply: Option<StreamReadReply> =
            redis::AsyncCommands::xread_options(&mut self.con, &[&self.cfg.stream], &[">"], &opts)
                .await
                .map_err(|e| self.err(e))?;
        Ok(reply.map(|r| decode(r, false)).unwrap_or_default())
    }

    /// Entries another consumer of the group read and left unacknowledged for `claim_idle`.
    async fn claim(&mut self) -> Result<Vec<Entry>, StreamError> {
        let reply: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg(&self.cfg.consumer)
            .arg(self.cfg.claim_idle.as_millis() as u64)
            .arg(&self.claim_cursor)
            .arg("COUNT")
            .arg(self.cfg.batch)
            .query_async(&mut self.con)
            .await
            .map_err(|e| self.err(e))?;
        let redis::Value::Array(parts) = reply else { return Ok(Vec::new()) };
        let mut parts = parts.into_iter();
        if let Some(cursor) = parts.next().and_then(|c| redis::from_redis_value::<String>(c).ok()) {
            self.claim_cursor = cursor;
        }
        let Some(entries) = parts.next() else { return Ok(Vec::new()) };
        let ids: redis::streams::StreamRangeReply = redis::from_redis_value(entries).map_err(|e| self.err(e.into()))?;
        Ok(ids.ids.into_iter().map(|e| decode_entry(e, true)).collect())
    }

    /// Acknowledges entries (their effect is in a checkpoint).
    pub async fn ack(&mut self, ids: &[String]) -> Result<(), StreamError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: u64 = redis::AsyncCommands::xack(&mut self.con, &self.cfg.stream, &self.cfg.group, ids)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Entries in the stream not yet delivered to this group, plus those delivered but not
    /// acknowledged: how far the learner is behind the workers.
    pub async fn lag(&mut self) -> Result<u64, StreamError> {
        let (stream, group) = (self.cfg.stream.clone(), self.cfg.group.clone());
        agentmill_proto::stream::group_lag(&mut self.con, &stream, &group).await.map_err(|e| self.err(e))
    }
}

fn decode(reply: StreamReadReply, redelivered: bool) -> Vec<Entry> {
    reply.keys.into_iter().flat_map(|k| k.ids).map(|e| decode_entry(e, redelivered)).collect()
}

fn decode_entry(e: redis::streams::StreamId, redelivered: bool) -> Entry {
    let record = agentmill_proto::stream::entry_record(&e);
    Entry { id: e.id, record, redelivered }
}

/// Reads a stream from its beginning with `XRANGE`, page by page, without a consumer group:
/// nothing is claimed or acknowledged.
pub struct StreamScan {
    stream: String,
    con: redis::aio::MultiplexedConnection,
    /// Where the next page starts (`-`, then `(` + the last id: exclusive, Redis ≥ 6.2).
    start: String,
    done: bool,
}

impl std::fmt::Debug for StreamScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamScan").field("stream", &self.stream).field("start", &self.start).finish()
    }
}

impl StreamScan {
    /// Connects; the first page starts at the stream's first entry.
    pub async fn open(redis_url: &str, stream: &str) -> Result<StreamScan, StreamError> {
        let err = |source| StreamError::Redis { stream: stream.to_string(), source };
        let client = redis::Client::open(redis_url).map_err(err)?;
        let con = client.get_multiplexed_async_connection().await.map_err(err)?;
        Ok(StreamScan { stream: stream.to_string(), con, start: "-".into(), done: false })
    }

    /// The next `count` entries in stream order, decoded; empty at the end of the stream.
    pub async fn next_page(&mut self, count: usize) -> Result<Vec<Entry>, StreamError> {
        if self.done || count == 0 {
            return Ok(Vec::new());
        }
        let reply: redis::streams::StreamRangeReply =
            redis::AsyncCommands::xrange_count(&mut self.con, &self.stream, &self.start, "+", count)
                .await
                .map_err(|source| StreamError::Redis { stream: self.stream.clone(), source })?;
        match reply.ids.last() {
            Some(last) => self.start = format!("({}", last.id),
            None => self.done = true,
        }
        if reply.ids.len() < count {
            self.done = true;
        }
        Ok(reply.ids.into_iter().map(|e| decode_entry(e, false)).collect())
    }
}

/// Up to `limit` entries of `stream` from its beginning (see [`StreamScan`]).
pub async fn scan(redis_url: &str, stream: &str, limit: usize) -> Result<Vec<Entry>, StreamError> {
    let mut scan = StreamScan::open(redis_url, stream).await?;
    let mut out = Vec::new();
    while out.len() < limit {
        let page = scan.next_page((limit - out.len()).min(512)).await?;
        if page.is_empty() {
            break;
        }
        out.extend(page);
    }
    Ok(out)
}
