//! The trajectory stream's shared Redis helpers (feature `redis`): what workers read for
//! back-pressure and learners report as lag.

/// How far a consumer group is behind the stream: entries not yet delivered to it (`lag`) plus
/// entries delivered and not acknowledged (`pending`), from `XINFO GROUPS`. Without the group
/// (no learner has started) everything in the stream is waiting; without the stream, nothing is.
pub async fn group_lag<C: redis::aio::ConnectionLike + Send>(con: &mut C, stream: &str, group: &str) -> redis::RedisResult<u64> {
    type Info = std::collections::HashMap<String, redis::Value>;
    let groups: redis::RedisResult<Vec<Info>> = redis::cmd("XINFO").arg("GROUPS").arg(stream).query_async(con).await;
    let groups = match groups {
        Ok(g) => g,
        Err(e) if e.to_string().contains("no such key") => return Ok(0),
        Err(e) => return Err(e),
    };
    let num = |v: Option<&redis::Value>| v.and_then(|v| redis::from_redis_value::<u64>(v.clone()).ok()).unwrap_or(0);
    let name = |g: &Info| g.get("name").and_then(|n| redis::from_redis_value::<String>(n.clone()).ok());
    match groups.iter().find(|g| name(g).as_deref() == Some(group)) {
        Some(g) => Ok(num(g.get("lag")) + num(g.get("pending"))),
        None => redis::cmd("XLEN").arg(stream).query_async(con).await,
    }
}

/// The Redis key where the learner consuming `stream` reports its [`LearnerStatus`].
pub fn learner_status_key(stream: &str) -> String {
    format!("{stream}:learner")
}

/// How long a learner's report stays in Redis: a learner that stopped reporting disappears
/// from the cluster's view after this many seconds.
pub const LEARNER_STATUS_TTL_SECS: u64 = 60;

/// The learner's report of itself (JSON under [`learner_status_key`]); the coordinator serves it
/// in `ClusterStats` as `agentmill.v1.LearnerStatus` (same fields).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LearnerStatus {
    /// Which learner (host name and process id).
    pub learner_id: String,
    /// Where it trains ("Cpu", "Cuda(0)").
    pub device: String,
    /// Optimizer steps completed.
    pub step: u64,
    /// Real tokens trained over the run.
    pub tokens_trained: u64,
    /// Tokens per second over the last report interval.
    pub tokens_per_s: f64,
    /// The last step's loss (0 before the first step).
    pub loss: f64,
    /// The last step's learning rate.
    pub lr: f64,
    /// The last step's gradient norm (before clipping).
    pub grad_norm: f64,
    /// Model FLOPs utilisation, 0..1; 0 where unknown (CPU).
    pub mfu: f64,
    /// Records trained, by kind: `env_pass`, `env_fail`, `ctx`.
    pub records_by_kind: std::collections::BTreeMap<String, u64>,
    /// Real tokens / token slots of the rows packed so far.
    pub packing_efficiency: f64,
    /// When this report was written (Unix ms).
    pub updated_unix_ms: i64,
    /// The held-out loss at the last evaluation (`eval_fraction`); `None` before one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_loss: Option<f64>,
}

impl From<LearnerStatus> for crate::v1::LearnerStatus {
    fn from(s: LearnerStatus) -> Self {
        crate::v1::LearnerStatus {
            learner_id: s.learner_id,
            device: s.device,
            step: s.step,
            tokens_trained: s.tokens_trained,
            tokens_per_s: s.tokens_per_s,
            loss: s.loss,
            lr: s.lr,
            grad_norm: s.grad_norm,
            mfu: s.mfu,
            records_by_kind: s.records_by_kind.into_iter().collect(),
            packing_efficiency: s.packing_efficiency,
            updated_unix_ms: s.updated_unix_ms,
            eval_loss: s.eval_loss,
        }
    }
}

/// Writes the learner's report (with its expiry).
pub async fn publish_learner_status<C: redis::aio::ConnectionLike + Send>(con: &mut C, stream: &str, status: &LearnerStatus) -> redis::RedisResult<()> {
    let json = serde_json::to_string(status).expect("a LearnerStatus always serializes");
    redis::cmd("SET").arg(learner_status_key(stream)).arg(json).arg("EX").arg(LEARNER_STATUS_TTL_SECS).query_async(con).await
}

/// Reads the learner's report: `None` when no learner reported within the expiry, or when the
/// value is not a report this build understands.
pub async fn read_learner_status<C: redis::aio::ConnectionLike + Send>(con: &mut C, stream: &str) -> redis::RedisResult<Option<LearnerStatus>> {
    let raw: Option<String> = redis::cmd("GET").arg(learner_status_key(stream)).query_async(con).await?;
    Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
}

/// The stream's length (0 when it does not exist yet).
pub async fn stream_length<C: redis::aio::ConnectionLike + Send>(con: &mut C, stream: &str) -> redis::RedisResult<u64> {
    redis::cmd("XLEN").arg(stream).query_async(con).await
}

/// The first entry id that some consumer group of `stream` still needs: for each group, its
/// oldest pending (delivered, unacknowledged) entry, else the entry after the last one it was
/// given. `None` when the stream has no group (nobody has promised to read it: keep everything).
pub async fn acknowledged_frontier<C: redis::aio::ConnectionLike + Send>(con: &mut C, stream: &str) -> redis::RedisResult<Option<(u64, u64)>> {
    type Info = std::collections::HashMap<String, redis::Value>;
    let groups: redis::RedisResult<Vec<Info>> = redis::cmd("XINFO").arg("GROUPS").arg(stream).query_async(con).await;
    let groups = match groups {
        Ok(g) => g,
        Err(e) if e.to_string().contains("no such key") => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = |g: &Info, k: &str| g.get(k).and_then(|v| redis::from_redis_value::<String>(v.clone()).ok()).unwrap_or_default();
    let mut frontier: Option<(u64, u64)> = None;
    for g in &groups {
        let name = text(g, "name");
        let pending: u64 = g.get("pending").and_then(|v| redis::from_redis_value(v.clone()).ok()).unwrap_or(0);
        let needed = if pending > 0 {
            // XPENDING summary: [count, smallest id, greatest id, consumers].
            let (_, min, _, _): (u64, Option<String>, Option<String>, redis::Value) = redis::cmd("XPENDING").arg(stream).arg(&name).query_async(con).await?;
            min.as_deref().and_then(parse_id)
        } else {
            parse_id(&text(g, "last-delivered-id")).map(|(ms, seq)| if seq == u64::MAX { (ms + 1, 0) } else { (ms, seq + 1) })
        };
        // A group whose position cannot be read holds everything back.
        let needed = needed.unwrap_or((0, 0));
        frontier = Some(frontier.map_or(needed, |f| f.min(needed)));
    }
    Ok(frontier)
}

/// Deletes the entries every consumer group has acknowledged (`XTRIM MINID` to
/// [`acknowledged_frontier`]) and returns how many went. Nothing is deleted from a stream no
/// group reads.
pub async fn trim_acknowledged<C: redis::aio::ConnectionLike + Send>(con: &mut C, stream: &str) -> redis::RedisResult<u64> {
    Ok(trim_acknowledged_below(con, stream).await?.0)
}

/// [`trim_acknowledged`], also answering the frontier it trimmed below (`None`: nothing).
pub async fn trim_acknowledged_below<C: redis::aio::ConnectionLike + Send>(con: &mut C, stream: &str) -> redis::RedisResult<(u64, Option<(u64, u64)>)> {
    match acknowledged_frontier(con, stream).await? {
        None | Some((0, 0)) => Ok((0, None)),
        Some((ms, seq)) => {
            let trimmed = redis::cmd("XTRIM").arg(stream).arg("MINID").arg(format!("{ms}-{seq}")).query_async(con).await?;
            Ok((trimmed, Some((ms, seq))))
        }
    }
}

/// [`trim_acknowledged_below`], keeping acknowledged entries newer than `keep_from_ms` (Unix
/// ms; stream ids begin with their time): `XTRIM MINID` to the older of the acknowledged
/// frontier and `keep_from_ms`. Answers how many went and the id it trimmed below (`None`:
/// nothing), below which the publish index may be pruned.
pub async fn trim_acknowledged_before<C: redis::aio::ConnectionLike + Send>(
    con: &mut C,
    stream: &str,
    keep_from_ms: u64,
) -> redis::RedisResult<(u64, Option<(u64, u64)>)> {
    match acknowledged_frontier(con, stream).await? {
        None | Some((0, 0)) => Ok((0, None)),
        Some(frontier) => {
            let (ms, seq) = frontier.min((keep_from_ms, 0));
            if (ms, seq) == (0, 0) {
                return Ok((0, None));
            }
            let trimmed = redis::cmd("XTRIM").arg(stream).arg("MINID").arg(format!("{ms}-{seq}")).query_async(con).await?;
            Ok((trimmed, Some((ms, seq))))
        }
    }
}

/// The workers' publish index of `stream`: record id → stream entry id.
pub fn publish_index_key(stream: &str) -> String {
    format!("{stream}:ids")
}

/// The record a stream entry carries (its `codec` and `data` fields).
pub fn entry_record(entry: &redis::streams::StreamId) -> Result<crate::TrajectoryRecord, crate::wire::WireError> {
    let codec: Option<String> = entry.get(crate::wire::FIELD_CODEC);
    let data: Option<Vec<u8>> = entry.get(crate::wire::FIELD_DATA);
    match (codec, data) {
        (Some(codec), Some(data)) => crate::wire::decode(&codec, &data),
        _ => Err(crate::wire::WireError::UnknownCodec(format!("entry {} has no codec/data fields", entry.id))),
    }
}

/// Where a record stands in the stream, by its record id.
#[derive(Debug)]
pub enum Published {
    /// The publish index does not name it: never published (or its index field was pruned).
    Missing,
    /// The index names an entry the stream no longer holds (trimmed after every group
    /// acknowledged it, or deleted).
    Trimmed {
        /// The entry it was.
        stream_id: String,
    },
    /// The entry and what it decodes to.
    Found {
        /// The entry.
        stream_id: String,
        /// Its record (an error when the entry does not decode).
        record: Result<Box<crate::TrajectoryRecord>, crate::wire::WireError>,
    },
}

/// Looks a record up through the publish index ([`publish_index_key`]) and reads its entry.
pub async fn find_published<C: redis::aio::ConnectionLike + Send>(con: &mut C, stream: &str, record_id: &str) -> redis::RedisResult<Published> {
    let Some(stream_id): Option<String> = redis::cmd("HGET").arg(publish_index_key(stream)).arg(record_id).query_async(con).await? else {
        return Ok(Published::Missing);
    };
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE").arg(stream).arg(&stream_id).arg(&stream_id).query_async(con).await?;
    Ok(match reply.ids.first() {
        Some(entry) => Published::Found { stream_id, record: entry_record(entry).map(Box::new) },
        None => Published::Trimmed { stream_id },
    })
}

/// One step of pruning the publish index ([`publish_index_key`]): scans about `count` of its
/// fields from `cursor` (`HSCAN`) and deletes those whose entry lies below `frontier` (trimmed
/// from the stream, so no longer needed to recognise a republished record once its groups have
/// acknowledged it). Returns the next cursor (0: a full pass ended) and how many fields went.
/// Called a step at a time, it bounds the work of each call however large the index grows.
pub async fn prune_publish_index<C: redis::aio::ConnectionLike + Send>(
    con: &mut C,
    stream: &str,
    frontier: (u64, u64),
    cursor: u64,
    count: usize,
) -> redis::RedisResult<(u64, u64)> {
    let key = publish_index_key(stream);
    let (next, pairs): (u64, Vec<(String, String)>) = redis::cmd("HSCAN").arg(&key).arg(cursor).arg("COUNT").arg(count).query_async(con).await?;
    let below: Vec<String> = pairs.into_iter().filter(|(_, id)| parse_id(id).is_some_and(|id| id < frontier)).map(|(record, _)| record).collect();
    if below.is_empty() {
        return Ok((next, 0));
    }
    let removed: u64 = redis::cmd("HDEL").arg(&key).arg(&below).query_async(con).await?;
    Ok((next, removed))
}

fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}
