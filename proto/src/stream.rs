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
