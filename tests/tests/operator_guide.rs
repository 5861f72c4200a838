//! The operator guide (`deploy/OPERATIONS.md`) names every setting and every metric of the
//! coordinator, the worker and the CLI, so it cannot fall behind the code unnoticed. (The
//! learner's side: `learner/tests/operator_guide.rs`.)
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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use agentmill_coordinator::client::ClientConfig;
use agentmill_coordinator::config::CoordinatorConfig;
use agentmill_coordinator::metrics::Metrics;
use agentmill_worker::agent::policy::OpenAiConfig;
use agentmill_worker::config::WorkerConfig;
use agentmill_worker::metrics::WorkerMetrics;
use serde_json::{Map, Value, json};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn guide() -> String {
    read(&repo("deploy/OPERATIONS.md"))
}

// ---- settings -------------------------------------------------------------------------------

/// One step of a path into a serialized configuration.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    /// Any element of an array (a TOML array of tables such as `[[stages]]`).
    Elem,
}

fn dotted(path: &[Seg]) -> String {
    path.iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Elem => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The flattened configuration: dotted key paths of its leaves, and the paths of its sections
/// (non-empty objects, the root included) for the field probe.
#[derive(Debug, Default)]
struct Flat {
    keys: BTreeSet<String>,
    sections: Vec<Vec<Seg>>,
}

fn flatten(v: &Value) -> Flat {
    let mut flat = Flat::default();
    walk(&mut Vec::new(), v, &mut flat);
    flat
}

fn walk(path: &mut Vec<Seg>, v: &Value, flat: &mut Flat) {
    match v {
        // An empty object is a user-keyed map with no entry by default: the key itself.
        Value::Object(map) if !map.is_empty() => {
            flat.sections.push(path.clone());
            for (k, child) in map {
                path.push(Seg::Key(k.clone()));
                walk(path, child, flat);
                path.pop();
            }
        }
        // An array of tables: the array's own name, and the keys of its elements.
        Value::Array(items) if items.iter().any(Value::is_object) => {
            flat.keys.insert(dotted(path));
            path.push(Seg::Elem);
            for item in items {
                walk(path, item, flat);
            }
            path.pop();
        }
        _ => {
            flat.keys.insert(dotted(path));
        }
    }
}

const PROBE: &str = "__operator_guide_probe__";

/// A document with the probe key in the section at `path`.
fn probe_at(path: &[Seg]) -> Value {
    let mut v = json!({ PROBE: 0 });
    for seg in path.iter().rev() {
        v = match seg {
            Seg::Key(k) => {
                let mut m = Map::new();
                m.insert(k.clone(), v);
                Value::Object(m)
            }
            Seg::Elem => Value::Array(vec![v]),
        };
    }
    v
}

/// Reads a document as one configuration type (`serde_json::from_value::<T>`).
type Parse = dyn Fn(Value) -> Result<(), serde_json::Error>;

/// What serde says a section accepts.
#[derive(Debug, PartialEq)]
enum Section {
    /// A struct that refuses unknown keys, with the fields it declares (or, for a map keyed by
    /// an enum, the keys it takes).
    Fields(Vec<String>),
    /// A map keyed by the user (`policy.endpoints`): any key, values of one type.
    UserKeyed,
    /// A struct that takes unknown keys silently.
    Lenient,
}

/// Asks the section at `path` what it accepts, from the error a probe key gets there
/// (`unknown field ..., expected one of `a`, `b``; `unknown variant ...` for a map keyed by an
/// enum; `invalid type` when the key is taken and only its value is wrong: a user-keyed map).
fn section(parse: &Parse, path: &[Seg]) -> Section {
    let err = match parse(probe_at(path)) {
        Ok(()) => return Section::Lenient,
        Err(e) => e.to_string(),
    };
    if err.starts_with("invalid type: integer `0`") {
        return Section::UserKeyed;
    }
    assert!(
        err.contains(&format!("unknown field `{PROBE}`")) || err.contains(&format!("unknown variant `{PROBE}`")),
        "probing `{}`: unexpected error {err:?}",
        dotted(path)
    );
    let Some((_, expected)) = err.split_once("expected") else { return Section::Fields(Vec::new()) };
    Section::Fields(expected.split('`').skip(1).step_by(2).map(str::to_string).collect())
}

/// The keys a guide must document: the flattened keys of `defaults`, plus the name of every
/// user-keyed map. Every strict section's declared fields are checked to be among them; sections
/// that ignore unknown keys are printed (a typo there is silent).
fn config_keys(service: &str, parse: &Parse, defaults: &Value) -> BTreeSet<String> {
    let flat = flatten(defaults);
    let mut keys = flat.keys.clone();
    let mut lenient = Vec::new();
    for path in &flat.sections {
        let prefix = dotted(path);
        let fields = match section(parse, path) {
            Section::Fields(fields) => fields,
            Section::UserKeyed => {
                keys.insert(prefix);
                continue;
            }
            Section::Lenient => {
                lenient.push(if prefix.is_empty() { "(top level)".to_string() } else { prefix });
                continue;
            }
        };
        for field in fields {
            let key = if prefix.is_empty() { field } else { format!("{prefix}.{field}") };
            let covered = flat.keys.contains(&key) || flat.keys.iter().any(|k| k.starts_with(&format!("{key}.")));
            assert!(covered, "{service}: `{key}` is declared but not in the serialized defaults, so this test cannot see it");
        }
    }
    if !lenient.is_empty() {
        eprintln!("{service}: these sections accept unknown keys silently: {}", lenient.join(", "));
    }
    keys
}

fn missing_keys(keys: &BTreeSet<String>, guide: &str) -> Vec<String> {
    keys.iter().filter(|k| !guide.contains(&format!("`{k}`"))).cloned().collect()
}

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

/// A metric family: its type and label names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Family {
    kind: String,
    labels: BTreeSet<String>,
}

/// The `| `name{labels}` | type | meaning |` rows of the doc table at the top of a metrics.rs.
fn doc_table(source: &str, prefix: &str) -> BTreeMap<String, Family> {
    let mut out = BTreeMap::new();
    for line in source.lines().map(str::trim).filter(|l| l.starts_with("//!")) {
        let cells: Vec<&str> = line.trim_start_matches("//!").split('|').map(str::trim).collect();
        // "", name, type, meaning, ""
        let Some(name) = cells.get(1).and_then(|c| c.strip_prefix('`')).and_then(|c| c.strip_suffix('`')) else { continue };
        if !name.starts_with(prefix) {
            continue;
        }
        let (name, labels) = match name.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}').split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()),
            None => (name, BTreeSet::new()),
        };
        let kind = cells.get(2).map(|c| c.to_string()).unwrap_or_default();
        assert!(out.insert(name.to_string(), Family { kind, labels }).is_none(), "{name} is listed twice");
    }
    out
}

/// The families of a text exposition (`# TYPE` lines), with the label names their samples carry
/// (a histogram's `le` left out).
fn exposition(text: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            out.insert(name.to_string(), Family { kind: kind.to_string(), labels: BTreeSet::new() });
        }
    }
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let sample = &line[..end];
        let family = out
            .keys()
            .find(|f| sample == f.as_str() || ["_bucket", "_sum", "_count"].iter().any(|s| sample == format!("{f}{s}")))
            .cloned()
            .unwrap_or_else(|| panic!("sample {sample} belongs to no # TYPE line"));
        if let Some(sel) = line[end..].strip_prefix('{') {
            let close = sel.find('}').unwrap_or(sel.len());
            for pair in sel[..close].split(',') {
                if let Some((k, _)) = pair.split_once('=') {
                    let k = k.trim();
                    if k != "le" {
                        out.get_mut(&family).map(|f| f.labels.insert(k.to_string()));
                    }
                }
            }
        }
    }
    out
}

/// Collectors in a registry, from its `Debug` (`RegistryCore (N collectors)`).
fn registered(debug: &str) -> usize {
    let (_, rest) = debug.split_once("RegistryCore (").unwrap_or_else(|| panic!("no registry in {debug}"));
    rest.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no collector count in {debug}"))
}

/// Checks the doc table of `source` against the rendered registry and returns it.
fn documented_and_registered(service: &str, source: &str, prefix: &str, rendered: &str, debug: &str) -> BTreeMap<String, Family> {
    let table = doc_table(source, prefix);
    let families = exposition(rendered);
    assert_eq!(
        families.len(),
        registered(debug),
        "{service}: a registered family did not render; a vector family needs a label value observed in this test"
    );
    let names = |m: &BTreeMap<String, Family>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(names(&table), names(&families), "{service}: the metrics.rs doc table and the registry name different metrics");
    for (name, fam) in &families {
        assert_eq!(&table[name], fam, "{service}: {name}: the doc table and the registry disagree on its type or labels");
    }
    table
}

/// The metrics the guide misses: a metric must be on a line (a table row) as `` `name` `` or,
/// when it has labels, as `` `name{label,...}` `` with exactly its label names, and one of that
/// row's cells must be its type.
fn missing_metrics(table: &BTreeMap<String, Family>, guide: &str) -> Vec<String> {
    let written = |row: &str, name: &str| -> Option<BTreeSet<String>> {
        if row.contains(&format!("`{name}`")) {
            return Some(BTreeSet::new());
        }
        let (_, rest) = row.split_once(&format!("`{name}{{"))?;
        let (labels, _) = rest.split_once("}`")?;
        Some(labels.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
    };
    let mut missing = Vec::new();
    for (name, fam) in table {
        let ok = guide.lines().any(|row| row.split('|').any(|cell| cell.trim() == fam.kind) && written(row, name).as_ref() == Some(&fam.labels));
        if !ok {
            missing.push(format!("{name} ({}{})", fam.kind, if fam.labels.is_empty() { String::new() } else { format!(", labels {:?}", fam.labels) }));
        }
    }
    missing
}

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
    let source = read(&repo("coordinator/src/metrics.rs"));
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
    let source = read(&repo("worker/src/metrics.rs"));
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
    let table = doc_table(&read(&repo("worker/src/metrics.rs")), "agentmill_worker_");
    let without_labels = guide.replace("`agentmill_worker_stage_seconds{stage}`", "`agentmill_worker_stage_seconds`");
    assert_eq!(missing_metrics(&table, &without_labels), ["agentmill_worker_stage_seconds (histogram, labels {\"stage\"})"]);
    let wrong_type = guide.replace("| `agentmill_worker_containers_alive` | gauge |", "| `agentmill_worker_containers_alive` | counter |");
    assert_eq!(missing_metrics(&table, &wrong_type), ["agentmill_worker_containers_alive (gauge)"]);
}

