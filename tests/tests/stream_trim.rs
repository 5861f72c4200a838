//! Stream retention: entries are deleted only once every consumer group has acknowledged them,
//! by the shared helper and by a coordinator (on by default, keeping `retain_acknowledged` of
//! acknowledged records), and the workers' publish index forgets the records whose entries went.

use std::time::{Duration, Instant};

use agentmill_proto::stream::{acknowledged_frontier, prune_publish_index, publish_index_key, trim_acknowledged, trim_acknowledged_below};
use agentmill_tests::{CoordinatorProcess, TestRedis, http_get, unique};

async fn add(con: &mut redis::aio::MultiplexedConnection, stream: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id: String = redis::cmd("XADD").arg(stream).arg("*").arg("i").arg(i).query_async(con).await.expect("XADD");
        ids.push(id);
    }
    ids
}

async fn read(con: &mut redis::aio::MultiplexedConnection, stream: &str, group: &str, n: usize) {
    let _: redis::Value = redis::cmd("XREADGROUP").arg("GROUP").arg(group).arg("c").arg("COUNT").arg(n).arg("STREAMS").arg(stream).arg(">").query_async(con).await.expect("XREADGROUP");
}

async fn ack(con: &mut redis::aio::MultiplexedConnection, stream: &str, group: &str, ids: &[String]) {
    let _: u64 = redis::cmd("XACK").arg(stream).arg(group).arg(ids).query_async(con).await.expect("XACK");
}

/// Indexes each entry under a record id `r<i>`, as the workers' publish script does.
async fn index(con: &mut redis::aio::MultiplexedConnection, stream: &str, ids: &[String]) {
    for (i, id) in ids.iter().enumerate() {
        let _: u64 = redis::cmd("HSET").arg(publish_index_key(stream)).arg(format!("r{i}")).arg(id).query_async(con).await.expect("HSET");
    }
}

async fn indexed(con: &mut redis::aio::MultiplexedConnection, stream: &str) -> Vec<String> {
    let mut fields: Vec<String> = redis::cmd("HKEYS").arg(publish_index_key(stream)).query_async(con).await.expect("HKEYS");
    fields.sort_by_key(|f| f[1..].parse::<u32>().unwrap_or(u32::MAX));
    fields
}

async fn len(con: &mut redis::aio::MultiplexedConnection, stream: &str) -> u64 {
    redis::cmd("XLEN").arg(stream).query_async(con).await.expect("XLEN")
}

#[tokio::test]
async fn only_what_every_group_acknowledged_is_trimmed() {
    let redis = TestRedis::start();
    let mut con = redis::Client::open(redis.url.as_str()).expect("url").get_multiplexed_async_connection().await.expect("connect");
    let stream = unique("test:trim");
    assert_eq!(trim_acknowledged(&mut con, &stream).await.expect("trim"), 0, "no stream: nothing to do");
    let ids = add(&mut con, &stream, 10).await;
    assert_eq!(acknowledged_frontier(&mut con, &stream).await.expect("frontier"), None, "no group: keep everything");
    assert_eq!(trim_acknowledged(&mut con, &stream).await.expect("trim"), 0);

    // The learner took 6 and acknowledged the first 4: the 5th is the oldest it still needs.
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&stream).arg("learner").arg("0").query_async(&mut con).await.expect("group");
    read(&mut con, &stream, "learner", 6).await;
    ack(&mut con, &stream, "learner", &ids[..4]).await;
    assert_eq!(trim_acknowledged(&mut con, &stream).await.expect("trim"), 4);
    assert_eq!(len(&mut con, &stream).await, 6);

    // Everything it was given acknowledged: the entries after the 6th stay (never delivered).
    ack(&mut con, &stream, "learner", &ids[4..6]).await;
    assert_eq!(trim_acknowledged(&mut con, &stream).await.expect("trim"), 2);
    assert_eq!(len(&mut con, &stream).await, 4);

    // A second group that has read nothing holds everything back.
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&stream).arg("archive").arg("0").query_async(&mut con).await.expect("group");
    read(&mut con, &stream, "learner", 4).await;
    ack(&mut con, &stream, "learner", &ids[6..]).await;
    assert_eq!(trim_acknowledged(&mut con, &stream).await.expect("trim"), 0);
    assert_eq!(len(&mut con, &stream).await, 4);
}

#[tokio::test]
async fn the_publish_index_forgets_trimmed_records_a_step_at_a_time() {
    let redis = TestRedis::start();
    let mut con = redis::Client::open(redis.url.as_str()).expect("url").get_multiplexed_async_connection().await.expect("connect");
    let stream = unique("test:prune");
    // More fields than Redis keeps in a listpack (512 on Debian), which HSCAN returns whole.
    let ids = add(&mut con, &stream, 1000).await;
    index(&mut con, &stream, &ids).await;
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&stream).arg("learner").arg("0").query_async(&mut con).await.expect("group");
    read(&mut con, &stream, "learner", 1000).await;
    ack(&mut con, &stream, "learner", &ids[..900]).await;
    let (trimmed, frontier) = trim_acknowledged_below(&mut con, &stream).await.expect("trim");
    assert_eq!(trimmed, 900);
    let frontier = frontier.expect("a frontier");
    // Small steps, as the coordinator takes them per sample, until a pass ends.
    let (mut cursor, mut pruned, mut steps) = (0, 0, 0);
    loop {
        let (next, n) = prune_publish_index(&mut con, &stream, frontier, cursor, 100).await.expect("prune");
        pruned += n;
        steps += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(pruned, 900);
    assert!(steps >= 5, "a 1000-field index pruned ~100 at a time takes several steps: {steps}");
    let want: Vec<String> = (900..1000).map(|i| format!("r{i}")).collect();
    assert_eq!(indexed(&mut con, &stream).await, want, "exactly the records still in the stream stay indexed");
    // Another pass finds nothing more.
    let (_, again) = prune_publish_index(&mut con, &stream, frontier, 0, 1000).await.expect("prune");
    assert_eq!(again, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_with_trim_acknowledged_trims_behind_the_learner() {
    let redis = TestRedis::start();
    let mut con = redis::Client::open(redis.url.as_str()).expect("url").get_multiplexed_async_connection().await.expect("connect");
    let stream = unique("test:trim-coord");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(&config, format!("stream = {stream:?}\nhistory_interval = \"200ms\"\ntrim_acknowledged = true\nretain_acknowledged = \"0s\"\n")).expect("config");
    let coord = CoordinatorProcess::start(&redis.url, &["--config", config.to_str().expect("utf-8 path")]).await;

    let ids = add(&mut con, &stream, 5).await;
    index(&mut con, &stream, &ids).await;
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&stream).arg("learner").arg("0").query_async(&mut con).await.expect("group");
    read(&mut con, &stream, "learner", 5).await;
    ack(&mut con, &stream, "learner", &ids[..3]).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while len(&mut con, &stream).await != 2 {
        assert!(Instant::now() < deadline, "the coordinator did not trim the 3 acknowledged entries");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while indexed(&mut con, &stream).await.len() != 2 {
        assert!(Instant::now() < deadline, "the coordinator did not prune the publish index");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(indexed(&mut con, &stream).await, ["r3", "r4"]);
    let metrics = http_get(coord.metrics_port, "/metrics").await;
    assert!(metrics.contains("agentmill_coordinator_stream_trimmed_total 3"), "{metrics}");
    assert!(metrics.contains("agentmill_coordinator_publish_index_pruned_total 3"), "{metrics}");
    // The unacknowledged two stay, however long it runs.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(len(&mut con, &stream).await, 2);
}

/// Entries `age` old (their ids carry the time) at `XADD`, one millisecond apart.
async fn add_aged(con: &mut redis::aio::MultiplexedConnection, stream: &str, n: usize, age: Duration) -> Vec<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
    let start = now - age.as_millis() as u64;
    let mut ids = Vec::new();
    for i in 0..n {
        let id: String = redis::cmd("XADD").arg(stream).arg(format!("{}-0", start + i as u64)).arg("i").arg(i).query_async(con).await.expect("XADD");
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_coordinator_trims_acknowledged_records_past_the_retention_and_their_index() {
    let redis = TestRedis::start();
    let mut con = redis::Client::open(redis.url.as_str()).expect("url").get_multiplexed_async_connection().await.expect("connect");
    let stream = unique("test:trim-default");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("coordinator.toml");
    // Nothing about retention: the defaults apply (on, keeping 10 minutes of acknowledged records).
    std::fs::write(&config, format!("stream = {stream:?}\nhistory_interval = \"200ms\"\n")).expect("config");
    let coord = CoordinatorProcess::start(&redis.url, &["--config", config.to_str().expect("utf-8 path")]).await;

    // Four records from two hours ago, three from now; the learner acknowledges all but the last.
    let mut ids = add_aged(&mut con, &stream, 4, Duration::from_secs(7200)).await;
    ids.extend(add(&mut con, &stream, 3).await);
    index(&mut con, &stream, &ids).await;
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&stream).arg("learner").arg("0").query_async(&mut con).await.expect("group");
    read(&mut con, &stream, "learner", 7).await;
    ack(&mut con, &stream, "learner", &ids[..6]).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while len(&mut con, &stream).await != 3 {
        assert!(Instant::now() < deadline, "the coordinator did not trim the 4 old acknowledged entries by default");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while indexed(&mut con, &stream).await.len() != 3 {
        assert!(Instant::now() < deadline, "the coordinator did not prune the publish index with the stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The recent acknowledged two stay for the retention, the unacknowledged one for good.
    assert_eq!(indexed(&mut con, &stream).await, ["r4", "r5", "r6"]);
    let metrics = http_get(coord.metrics_port, "/metrics").await;
    assert!(metrics.contains("agentmill_coordinator_stream_trimmed_total 4"), "{metrics}");
    assert!(metrics.contains("agentmill_coordinator_publish_index_pruned_total 4"), "{metrics}");
}
