//! Checks that keep the operator guide (`deploy/OPERATIONS.md`) honest, used by
//! `tests/tests/operator_guide.rs` (coordinator, worker, CLI) and
//! `learner/tests/operator_guide.rs`.
//!
//! - **Settings**: a service's default configuration serialized and flattened to dotted key
//!   paths ([`flatten`]); every section that refuses unknown keys is asked for the fields it
//!   declares ([`section`]: a probe key makes serde list them), which catches a field the
//!   serialized defaults leave out ([`config_keys`]).
//! - **Metrics**: the doc table at the top of a service's `metrics.rs` ([`doc_table`]) checked
//!   against what its registry renders ([`documented_and_registered`]).
//!
//! A key must appear in the guide in backticks ([`missing_keys`]); a metric in a table row whose
//! type cell is its type, written `` `name{label,...}` `` with exactly its label names
//! ([`missing_metrics`]).

use std::collections::{BTreeMap, BTreeSet};
use serde_json::{Map, Value, json};

use crate::{read, workspace};

/// The operator guide's text.
pub fn guide() -> String {
    read(&workspace().join("deploy/OPERATIONS.md"))
}

// ---- settings -------------------------------------------------------------------------------

/// One step of a path into a serialized configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    /// Any element of an array (a TOML array of tables such as `[[stages]]`).
    Elem,
}

/// The dotted key path (`a.b.c`) of a path; array steps leave no mark.
pub fn dotted(path: &[Seg]) -> String {
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
pub struct Flat {
    pub keys: BTreeSet<String>,
    pub sections: Vec<Vec<Seg>>,
}

/// Flattens a serialized configuration.
pub fn flatten(v: &Value) -> Flat {
    let mut flat = Flat::default();
    walk(&mut Vec::new(), v, &mut flat);
    flat
}

/// Adds what lies at `path` (the value `v`) to `flat`.
pub fn walk(path: &mut Vec<Seg>, v: &Value, flat: &mut Flat) {
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

/// The key no section declares, whose refusal makes serde list the fields a section does.
pub const PROBE: &str = "__operator_guide_probe__";

/// A document with the probe key in the section at `path`.
pub fn probe_at(path: &[Seg]) -> Value {
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
pub type Parse = dyn Fn(Value) -> Result<(), serde_json::Error>;

/// What serde says a section accepts.
#[derive(Debug, PartialEq)]
pub enum Section {
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
pub fn section(parse: &Parse, path: &[Seg]) -> Section {
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
pub fn config_keys(service: &str, parse: &Parse, defaults: &Value) -> BTreeSet<String> {
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

/// The keys the guide does not name in backticks.
pub fn missing_keys(keys: &BTreeSet<String>, guide: &str) -> Vec<String> {
    keys.iter().filter(|k| !guide.contains(&format!("`{k}`"))).cloned().collect()
}

// ---- metrics --------------------------------------------------------------------------------

/// A metric family: its type and label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub kind: String,
    pub labels: BTreeSet<String>,
}

/// The `| `name{labels}` | type | meaning |` rows of the doc table at the top of a metrics.rs.
pub fn doc_table(source: &str, prefix: &str) -> BTreeMap<String, Family> {
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
pub fn exposition(text: &str) -> BTreeMap<String, Family> {
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
pub fn registered(debug: &str) -> usize {
    let (_, rest) = debug.split_once("RegistryCore (").unwrap_or_else(|| panic!("no registry in {debug}"));
    rest.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no collector count in {debug}"))
}

/// Checks the doc table of `source` against the rendered registry and returns it.
pub fn documented_and_registered(service: &str, source: &str, prefix: &str, rendered: &str, debug: &str) -> BTreeMap<String, Family> {
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
pub fn missing_metrics(table: &BTreeMap<String, Family>, guide: &str) -> Vec<String> {
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

