//! The worker's Publisher against a real Redis: each record lands once, and the learner's lag
//! turns into back-pressure (never into dropped records).

use std::time::Duration;

use actix::Actor;
use agentmill_proto::{ExitReason, Message, Provenance, RECORD_SCHEMA, RecordKind, Role, Timing, TrajectoryRecord, wire};
use agentmill_tests::{TestRedis, unique};
use agentmill_worker::actors::publisher::{Observe, Publish, Publisher, PublisherConfig};
use redis::AsyncCommands;

fn record(i: u32) -> TrajectoryRecord {
    TrajectoryRecord {
        schema: RECORD_SCHEMA.into(),
        record_id: TrajectoryRecord::episode_record_id("pub-task", i, 1),
        kind: RecordKind::Env,
        task_id: "pub-task".into(),
        attempt: 1,
        rollout: i,
        worker: "w".into(),
        created_at: "2026-11-24T00:00:00Z".into(),
        versions: Default::default(),
        provenance: Provenance::default(),
        tools: vec![],
        messages: vec![Message::text(Role::User, format!("episode {i}"))],
        exit_reason: Some(ExitReason::Submitted),
        error: None,
        model_patch: None,
        grading: None,
        reward: Some(1.0),
        timing: Timing::default(),
        ctx: None,
        model_calls: Vec::new(),
    }
}

async fn wait_for(addr: &actix::Addr<Publisher>, want: impl Fn(&agentmill_worker::actors::publisher::PublisherState) -> bool) -> agentmill_worker::actors::publisher::PublisherState {
    for _ in 0..200 {
        let s = addr.send(Observe).await.expect("publisher alive");
        if want(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    addr.send(Observe).await.expect("publisher alive")
}

#[actix_rt::test]
async fn a_record_lands_once_and_lag_becomes_back_pressure() {
    let redis = TestRedis::start();
    let client = redis::Client::open(redis.url.as_str()).expect("url");
    let con = redis::aio::ConnectionManager::new(client.clone()).await.expect("redis");
    let stream = unique("test:traj");
    let cfg = PublisherConfig {
        stream: stream.clone(),
        learner_group: Some("learner".into()),
        high_water: 2,
        low_water: 1,
        lag_interval: Duration::from_millis(50),
        mailbox: 16,
        outage_limit: None,
    };
    let publisher = Publisher::new(cfg, con, None).start();

    let mut ids = Vec::new();
    for i in 0..3 {
        let p = publisher.send(Publish(record(i))).await.expect("mailbox").expect("published");
        assert!(!p.duplicate);
        ids.push(p.stream_id);
    }
    // The same record again (a retried send, a worker restarted after publishing): no new entry.
    let again = publisher.send(Publish(record(1))).await.expect("mailbox").expect("answered");
    assert!(again.duplicate);
    assert_eq!(again.stream_id, ids[1]);
    let mut con = client.get_multiplexed_async_connection().await.expect("redis");
    let len: u64 = con.xlen(&stream).await.expect("XLEN");
    assert_eq!(len, 3);
    let entries: redis::streams::StreamRangeReply = con.xrange_all(&stream).await.expect("XRANGE");
    let back: Vec<TrajectoryRecord> = entries
        .ids
        .iter()
        .map(|e| wire::decode(&e.get::<String>(wire::FIELD_CODEC).expect("codec"), &e.get::<Vec<u8>>(wire::FIELD_DATA).expect("data")).expect("decode"))
        .collect();
    assert_eq!(back, (0..3).map(record).collect::<Vec<_>>());

    // No learner group yet: all 3 entries wait for it, above the high-water mark of 2.
    let s = wait_for(&publisher, |s| s.backpressured).await;
    assert!(s.backpressured && s.lag == 3, "{s:?}");
    assert_eq!((s.published, s.duplicates), (3, 1));

    // The learner reads and acknowledges everything: below the low-water mark, leases resume.
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&stream).arg("learner").arg("0").query_async(&mut con).await.expect("XGROUP");
    let opts = redis::streams::StreamReadOptions::default().group("learner", "l1").count(10);
    let read: redis::streams::StreamReadReply = con.xread_options(&[&stream], &[">"], &opts).await.expect("XREADGROUP");
    let read_ids: Vec<String> = read.keys.iter().flat_map(|k| k.ids.iter().map(|e| e.id.clone())).collect();
    assert_eq!(read_ids.len(), 3);
    let s = wait_for(&publisher, |s| s.lag == 3 && s.backpressured).await;
    assert!(s.backpressured, "read but unacknowledged entries still count: {s:?}");
    let _: u64 = con.xack(&stream, "learner", &read_ids).await.expect("XACK");
    let s = wait_for(&publisher, |s| !s.backpressured).await;
    assert_eq!((s.lag, s.backpressured), (0, false));
}
