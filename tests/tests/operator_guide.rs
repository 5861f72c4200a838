//! The operator guide (`deploy/OPERATIONS.md`) names every setting and every metric of the
//! coordinator, the worker and the CLI, so it cannot fall behind the code unnoticed. (The
//! learner's side: `learner/tests/operator_guide.rs`; the checks themselves:
//! `agentmill_testkit::guide_check`.)
//!
//! - **Settings** come from the code, not from a list here: each service's default configuration
//!   is serialized and flattened to dotted key paths (`capacity.episodes`,
//!   `synth.filter.max_tokens`). A map that is keyed by the user and empty by default (`labels`,
//!   `extra_body`) counts as one key; `policy.endpoints` gets one sample endpoint named `<name>`,
//!   so both `policy.endpoints` and `policy.endpoints.<name>.base_url`, ... are required. Every
//!   section is then probed with an unknown key: a strict section's error lists the fields it
//!   declares, which catches a field the serialized defaults leave out; a user-keyed map is told
//!   apart by its value-type error; a section that accepts the probe silently is printed. The
//!   CLI's config has no `Serialize`; its fields come from the same probe.
//! - **Metrics** come from the doc table at the top of each `metrics.rs` and are checked against
//!   the registry: the families the exposition renders (after a label value is observed on each
//!   vector family), with their types and label names, must be exactly the table's, and the number
//!   of registered collectors (from the registry's `Debug`) must equal the number rendered — so a
//!   vector family this test does not observe fails it instead of hiding.
//!
//! A key must appear in the guide in backticks (`` `capacity.episodes` ``); a metric must appear
//! in a table row whose type cell is its type, written `` `name{label,...}` `` with exactly its
//! label names (`` `name` `` when it has none).

use std::collections::BTreeSet;

use agentmill_cli::client::ClientConfig;
use agentmill_coordinator::config::CoordinatorConfig;
use agentmill_coordinator::metrics::Metrics;
use agentmill_worker::agent::policy::OpenAiConfig;
use agentmill_worker::config::WorkerConfig;
use agentmill_testkit::guide_check::*;
use agentmill_testkit::{read, workspace};
use agentmill_worker::metrics::WorkerMetrics;
use serde_json::{Value, json};

#[test]
fn the_flattening_reads_nested_sections_maps_and_arrays() {
    let v = json!({"a": 1, "b": {"c": "x", "d": {}}, "e": [{"f": 1}, {"g": 2}], "h": ["x"], "i": null});
    let flat = flatten(&v);
    let want: BTreeSet<String> = ["a", "b.c", "b.d", "e", "e.f", "e.g", "h", "i"].into_iter().map(String::from).collect();
    assert_eq!(flat.keys, want);
    assert_eq!(dotted(&[Seg::Key("e".into()), Seg::Elem, Seg::Key("f".into())]), "e.f");
    assert_eq!(probe_at(&[Seg::Key("e".into()), Seg::Elem]), json!({"e": [{PROBE: 0}]}));
    // The probe reads the fields of a strict section, and misses none of a lenient one's keys.
    let Section::Fields(fields) = section(&|v| serde_json::from_value::<CoordinatorConfig>(v).map(drop), &[]) else {
        panic!("the coordinator refuses unknown keys")
    };
    assert!(fields.contains(&"lease_ttl".to_string()) && fields.contains(&"trim_acknowledged".to_string()), "{fields:?}");
    // A guide that lacks a key is caught.
    assert_eq!(missing_keys(&want, "`a` `b.c` `e` `e.f` `e.g` `h` `i`"), ["b.d"]);
}

#[test]
fn the_guide_lists_every_coordinator_setting() {
    let defaults = serde_json::to_value(CoordinatorConfig::default()).expect("the defaults serialize");
    let keys = config_keys("coordinator", &|v| serde_json::from_value::<CoordinatorConfig>(v).map(drop), &defaults);
    assert!(keys.len() >= 18 && keys.contains("lease_ttl") && keys.contains("metrics_listen"), "{keys:?}");
    let missing = missing_keys(&keys, &guide());
    assert!(missing.is_empty(), "deploy/OPERATIONS.md does not document these coordinator settings: {missing:?}");
}

/// The worker's defaults, with one sample `[policy.endpoints.<name>]` so the endpoint's keys
/// are listed (by default there is no endpoint at all).
fn worker_defaults() -> Value {
    let mut cfg = WorkerConfig::default();
    assert!(cfg.policy.endpoints.is_empty(), "the default worker has no endpoint; this test adds a sample one");
    cfg.policy.endpoints.insert("<name>".into(), OpenAiConfig::default());
    serde_json::to_value(cfg).expect("the defaults serialize")
}

#[test]
fn the_guide_lists_every_worker_setting() {
    let keys = config_keys("worker", &|v| serde_json::from_value::<WorkerConfig>(v).map(drop), &worker_defaults());
    for k in ["labels", "policy.endpoints", "capacity.episodes", "synth.filter.max_tokens", "synth.enhance.endpoint.model", "policy.endpoints.<name>.base_url", "policy.endpoints.<name>.extra_body"] {
        assert!(keys.contains(k), "{k} is not among the worker's keys: {keys:?}");
    }
    let missing = missing_keys(&keys, &guide());
    assert!(missing.is_empty(), "deploy/OPERATIONS.md does not document these worker settings: {missing:?}");
}

#[test]
fn the_guide_lists_every_cli_setting() {
    let Section::Fields(fields) = section(&|v| serde_json::from_value::<ClientConfig>(v).map(drop), &[]) else {
        panic!("the CLI config refuses unknown keys")
    };
    let keys: BTreeSet<String> = fields.into_iter().collect();
    assert!(keys.contains("addr") && keys.contains("ca_cert"), "{keys:?}");
    let missing = missing_keys(&keys, &guide());
    assert!(missing.is_empty(), "deploy/OPERATIONS.md does not document these CLI settings: {missing:?}");
}

// ---- metrics --------------------------------------------------------------------------------

#[test]
fn the_metric_readers_see_every_family() {
    let text = "# TYPE a_total counter\na_total{x=\"1\",y=\"2\"} 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_sum 0\nh_count 0\n";
    let fams = exposition(text);
    assert_eq!(fams["a_total"].labels, ["x", "y"].into_iter().map(String::from).collect());
    assert!(fams["h"].labels.is_empty() && fams["h"].kind == "histogram");
    let table = doc_table("//! | `a_total{x,y}` | counter | things |\n//! | `h` | histogram | time |\n", "");
    assert_eq!(table, fams);
    assert_eq!(missing_metrics(&table, "| `a_total{x,y}` | counter | x and y |\n"), ["h (histogram)"]);
    assert_eq!(missing_metrics(&table, "| `a_total` | counter | x, y |\n| `h` | histogram |"), ["a_total (counter, labels {\"x\", \"y\"})"]);
    assert_eq!(missing_metrics(&table, "| `a_total{y, x}` | counter |\n| `h` | histogram |"), Vec::<String>::new());
    assert_eq!(registered("Metrics { registry: Registry { r: RwLock { data: RegistryCore (16 collectors) } } }"), 16);
    // Vector families without a child do not render: the collector count is what catches one
    // this file forgets to observe.
    let m = Metrics::new();
    assert!(exposition(&m.render()).len() < registered(&format!("{m:?}")));
}

#[test]
fn the_guide_lists_every_coordinator_metric() {
    let m = Metrics::new();
    m.tasks.with_label_values(&["queued"]).set(0);
    m.results.with_label_values(&["FULL", "submitted"]).inc();
    let source = read(&workspace().join("coordinator/src/metrics.rs"));
    let table = documented_and_registered("coordinator", &source, "agentmill_coordinator_", &m.render(), &format!("{m:?}"));
    assert!(table.len() >= 16, "{table:?}");
    let missing = missing_metrics(&table, &guide());
    assert!(missing.is_empty(), "deploy/OPERATIONS.md does not document these coordinator metrics (name, type and labels on one line): {missing:?}");
}

#[test]
fn the_guide_lists_every_worker_metric() {
    let m = WorkerMetrics::new();
    m.ended.with_label_values(&["submitted"]).inc();
    m.stage_seconds.with_label_values(&["init"]).observe(1.0);
    agentmill_worker::metrics::env_builds().with_label_values(&["built"]);
    let source = read(&workspace().join("worker/src/metrics.rs"));
    let table = documented_and_registered("worker", &source, "agentmill_worker_", &m.render(), &format!("{m:?}"));
    assert!(table.len() >= 10, "{table:?}");
    let missing = missing_metrics(&table, &guide());
    assert!(missing.is_empty(), "deploy/OPERATIONS.md does not document these worker metrics (name, type and labels on one line): {missing:?}");
}

#[test]
fn a_guide_without_a_key_or_a_metric_fails() {
    let guide = guide();
    let defaults = serde_json::to_value(CoordinatorConfig::default()).expect("the defaults serialize");
    let keys = config_keys("coordinator", &|v| serde_json::from_value::<CoordinatorConfig>(v).map(drop), &defaults);
    assert_eq!(missing_keys(&keys, &guide.replace("`lease_ttl`", "lease_ttl")), ["lease_ttl"]);
    let keys = config_keys("worker", &|v| serde_json::from_value::<WorkerConfig>(v).map(drop), &worker_defaults());
    assert_eq!(missing_keys(&keys, &guide.replace("`synth.filter.max_tokens`", "max_tokens")), ["synth.filter.max_tokens"]);
    let table = doc_table(&read(&workspace().join("worker/src/metrics.rs")), "agentmill_worker_");
    let without_labels = guide.replace("`agentmill_worker_stage_seconds{stage}`", "`agentmill_worker_stage_seconds`");
    assert_eq!(missing_metrics(&table, &without_labels), ["agentmill_worker_stage_seconds (histogram, labels {\"stage\"})"]);
    let wrong_type = guide.replace("| `agentmill_worker_containers_alive` | gauge |", "| `agentmill_worker_containers_alive` | counter |");
    assert_eq!(missing_metrics(&table, &wrong_type), ["agentmill_worker_containers_alive (gauge)"]);
}

