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
