//! `Publisher`: writes trajectory records to the Redis stream, once each, and turns the
//! learner's lag into back-pressure.
//!
//! A record goes in with one Lua script that checks the record id against the stream's id
//! index and `XADD`s only when it is new, so a record republished after a worker crash or a
//! retried send lands once. Records are never dropped: when the learner's consumer group falls
//! more than `high_water` entries behind, the publisher tells the coordinator session to stop
//! taking leases, and lets it take them again below `low_water`. The mailbox is bounded, so a
//! stalled Redis slows the episodes that publish instead of growing memory.

use std::time::Duration;

use actix::prelude::*;
use agentmill_proto::{TrajectoryRecord, wire};
use redis::aio::ConnectionManager;
use tracing::{error, info, warn};

use crate::session::SessionHandle;

/// Stream entries written per record id; the script keeps `<stream>:ids` (record id → entry id).
const PUBLISH_SCRIPT: &str = r"
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return {existing, 1} end
local id = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'kind', ARGV[2], 'codec', ARGV[3], 'data', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], id)
return {id, 0}
";

/// Where to publish and when to push back.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// The stream key.
    pub stream: String,
    /// The learner's consumer group whose lag is watched; `None` watches the stream length.
    pub learner_group: Option<String>,
    /// Stop taking leases above this many unconsumed entries.
    pub high_water: u64,
    /// Take leases again below this many.
    pub low_water: u64,
    /// How often the lag is read.
    pub lag_interval: Duration,
    /// Mailbox size (records waiting to be written).
    pub mailbox: usize,
    /// How long Redis may fail every call (lag readings and writes) before the publisher gives
    /// up and stops; the host then drains and exits non-zero (a vital actor stopped). `None`:
    /// never give up.
    pub outage_limit: Option<Duration>,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            stream: wire::DEFAULT_STREAM.to_string(),
            learner_group: None,
            high_water: 10_000,
            low_water: 5_000,
            lag_interval: Duration::from_secs(1),
            mailbox: 256,
            outage_limit: None,
        }
    }
}

/// What the publisher has done (a cheap copy for metrics, tests and `agentmill top`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherState {
    /// Records written.
    pub published: u64,
    /// Records refused as already in the stream.
    pub duplicates: u64,
    /// Compressed bytes written.
    pub bytes: u64,
    /// Failed writes.
    pub errors: u64,
    /// The learner's lag at the last reading.
    pub lag: u64,
    /// Whether leases are paused for back-pressure.
    pub backpressured: bool,
}

/// The publishing actor.
pub struct Publisher {
    cfg: PublisherConfig,
    con: ConnectionManager,
    script: redis::Script,
    session: Option<SessionHandle>,
    state: PublisherState,
    /// Since when every Redis call has failed (`None`: the last one succeeded).
    failing_since: Option<std::time::Instant>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("cfg", &self.cfg).field("state", &self.state).finish()
    }
}

/// Why a record was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The record could not be encoded.
    #[error("encoding record {0}: {1}")]
    Encode(String, wire::WireError),
    /// Redis refused or failed.
    #[error("publishing record {0} to Redis: {1}")]
    Redis(String, redis::RedisError),
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The stream entry id.
    pub stream_id: String,
    /// The record was already there (this call wrote nothing).
    pub duplicate: bool,
}

/// Publish one record.
#[derive(Debug, Message)]
#[rtype(result = "Result<Published, PublishError>")]
pub struct Publish(pub TrajectoryRecord);

/// Read the publisher's state.
#[derive(Debug, Message)]
#[rtype(result = "PublisherState")]
pub struct Observe;

/// Attach the coordinator session that back-pressure talks to.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetSession(pub SessionHandle);

impl Publisher {
    /// A publisher writing through `con`.
    pub fn new(cfg: PublisherConfig, con: ConnectionManager, session: Option<SessionHandle>) -> Publisher {
        Publisher { cfg, con, script: redis::Script::new(PUBLISH_SCRIPT), session, state: PublisherState::default(), failing_since: None }
    }

    fn check_lag(&mut self, ctx: &mut Context<Self>) {
        let mut con = self.con.clone();
        let cfg = self.cfg.clone();
        let fut = async move {
            match &cfg.learner_group {
                Some(group) => agentmill_proto::stream::group_lag(&mut con, &cfg.stream, group).await,
                None => redis::AsyncCommands::xlen(&mut con, &cfg.stream).await,
            }
        };
        ctx.spawn(fut.into_actor(self).map(|lag, act, ctx| match lag {
            Ok(lag) => {
                act.failing_since = None;
                act.set_lag(lag);
            }
            Err(e) => {
                warn!("reading the learner's lag failed: {e}");
                act.redis_failed(ctx);
            }
        }));
    }

    /// Notes a failed Redis call; past `outage_limit` of nothing but failures, stops the actor.
    fn redis_failed(&mut self, ctx: &mut Context<Self>) {
        let since = *self.failing_since.get_or_insert_with(std::time::Instant::now);
        if let Some(limit) = self.cfg.outage_limit
            && since.elapsed() >= limit
        {
            error!(
                stream = %self.cfg.stream,
                "Redis has failed every call for {} (the worker's redis_outage_limit): the publisher stops, and the worker drains and exits",
                humantime_serde::re::humantime::format_duration(Duration::from_secs(since.elapsed().as_secs()))
            );
            ctx.stop();
        }
    }

    fn set_lag(&mut self, lag: u64) {
        self.state.lag = lag;
        let on = if self.state.backpressured { lag > self.cfg.low_water } else { lag > self.cfg.high_water };
        if on != self.state.backpressured {
            self.state.backpressured = on;
            if on {
                info!(lag, high_water = self.cfg.high_water, "the learner lags: pausing new leases");
            } else {
                info!(lag, low_water = self.cfg.low_water, "the learner caught up: taking leases again");
            }
            if let Some(s) = &self.session {
                s.set_backpressured(on);
            }
        }
    }
}

impl Actor for Publisher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.cfg.mailbox);
        self.check_lag(ctx);
        ctx.run_interval(self.cfg.lag_interval, |act, ctx| act.check_lag(ctx));
    }
}

impl Handler<Publish> for Publisher {
    type Result = ResponseActFuture<Self, Result<Published, PublishError>>;

    fn handle(&mut self, Publish(record): Publish, _ctx: &mut Self::Context) -> Self::Result {
        let mut con = self.con.clone();
        let script = self.script.clone();
        let stream = self.cfg.stream.clone();
        let fut = async move {
            let id = record.record_id.clone();
            let data = wire::encode(&record).map_err(|e| PublishError::Encode(id.clone(), e))?;
            let len = data.len() as u64;
            let (stream_id, dup): (String, i64) = script
                .key(&stream)
                .key(agentmill_proto::stream::publish_index_key(&stream))
                .arg(&id)
                .arg(record.kind.as_str())
                .arg(wire::CODEC_ZSTD_JSON)
                .arg(data)
                .invoke_async(&mut con)
                .await
                .map_err(|e| PublishError::Redis(id.clone(), e))?;
            Ok((Published { stream_id, duplicate: dup == 1 }, len))
        };
        Box::pin(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok((p, len)) => {
                act.failing_since = None;
                if p.duplicate {
                    act.state.duplicates += 1;
                } else {
                    act.state.published += 1;
                    act.state.bytes += len;
                }
                Ok(p)
            }
            Err(e) => {
                act.state.errors += 1;
                if matches!(e, PublishError::Redis(..)) {
                    act.redis_failed(ctx);
                }
                Err(e)
            }
        }))
    }
}

impl Handler<Observe> for Publisher {
    type Result = MessageResult<Observe>;

    fn handle(&mut self, _: Observe, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.state.clone())
    }
}

impl Handler<SetSession> for Publisher {
    type Result = ();

    fn handle(&mut self, SetSession(s): SetSession, _ctx: &mut Self::Context) {
        if self.state.backpressured {
            s.set_backpressured(true);
        }
        self.session = Some(s);
    }
}

/// Publishes `record`, retrying with backoff (up to `attempts` times) while Redis or the publisher
/// is unavailable: records are never dropped silently. `None` when every attempt failed, or at
/// once when the publisher has stopped for good.
pub async fn publish_with_retry(publisher: &Addr<Publisher>, record: &TrajectoryRecord, attempts: u32) -> Option<Published> {
    let mut backoff = Duration::from_millis(200);
    for attempt in 1..=attempts {
        if !publisher.connected() {
            warn!(record = %record.record_id, "the publisher has stopped; the record is not published");
            return None;
        }
        match publisher.send(Publish(record.clone())).await {
            Ok(Ok(p)) => return Some(p),
            Ok(Err(e)) => warn!(attempt, "publishing failed, retrying: {e}"),
            Err(e) => warn!(attempt, "the publisher did not answer, retrying: {e}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
    None
}
