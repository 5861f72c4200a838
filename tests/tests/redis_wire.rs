//! A trajectory record survives the trip through a real Redis stream in its wire form.

use agentmill_proto::{ExitReason, Message, Provenance, RECORD_SCHEMA, RecordKind, Role, Timing, TrajectoryRecord, wire};
use agentmill_tests::{TestRedis, unique};
use redis::AsyncCommands;
use redis::streams::StreamRangeReply;

fn record(i: u32) -> TrajectoryRecord {
    TrajectoryRecord {
        schema: RECORD_SCHEMA.into(),
        record_id: TrajectoryRecord::episode_record_id("agentmill__calc-1", i, 1),
        kind: RecordKind::Env,
        task_id: "agentmill__calc-1".into(),
        attempt: 1,
        rollout: i,
        worker: "w".into(),
        created_at: "2026-11-24T00:00:00Z".into(),
        versions: Default::default(),
        provenance: Provenance { repo: "agentmill/calc".into(), base_commit: "c".into(), ..Default::default() },
        tools: vec![],
        messages: vec![Message::text(Role::User, "x ".repeat(5000)), Message::text(Role::Assistant, "ünïcödé \u{2028} ok")],
        exit_reason: Some(ExitReason::MaxSteps),
        error: None,
        model_patch: Some(String::new()),
        grading: None,
        reward: Some(0.0),
        timing: Timing::default(),
        ctx: None,
        model_calls: Vec::new(),
    }
}

#[tokio::test]
async fn records_come_back_from_a_redis_stream_unchanged() {
    let redis = TestRedis::start();
    let client = redis::Client::open(redis.url.as_str()).expect("redis url");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect to redis");
    let stream = unique("test:wire");
    let sent: Vec<TrajectoryRecord> = (0..3).map(record).collect();
    for r in &sent {
        let data = wire::encode(r).expect("encode");
        let fields: [(&str, &[u8]); 4] = [
            (wire::FIELD_ID, r.record_id.as_bytes()),
            (wire::FIELD_KIND, r.kind.as_str().as_bytes()),
            (wire::FIELD_CODEC, wire::CODEC_ZSTD_JSON.as_bytes()),
            (wire::FIELD_DATA, &data),
        ];
        let _: String = con.xadd(&stream, "*", &fields).await.expect("XADD");
    }
    let reply: StreamRangeReply = con.xrange_all(&stream).await.expect("XRANGE");
    let got: Vec<TrajectoryRecord> = reply
        .ids
        .iter()
        .map(|entry| {
            let codec: String = entry.get(wire::FIELD_CODEC).expect("codec field");
            let data: Vec<u8> = entry.get(wire::FIELD_DATA).expect("data field");
            wire::decode(&codec, &data).expect("decode")
        })
        .collect();
    assert_eq!(got, sent);
    let _: () = con.del(&stream).await.expect("DEL");
}
