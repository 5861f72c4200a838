//! Checks that keep the Grafana dashboard (`deploy/grafana/agentmill.json`) honest: every metric
//! name a panel's PromQL references is one the service exports, with the labels it is selected
//! and grouped by. Used by `tests/tests/deploy_files.rs` (coordinator, worker) and
//! `learner/tests/dashboard_metrics.rs`.

use std::collections::{BTreeMap, BTreeSet};
use serde_json::Value;

use crate::{read, workspace};

/// Every string in a JSON value.
pub fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Whether `c` may stand in a metric or label name.
pub fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The metric names with `prefix` in a PromQL expression, each with the label names of the
/// selector that follows it (`name{a="x", b=~"y"}`).
pub fn referenced(expr: &str, prefix: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find(prefix) {
        let preceded = rest[..i].chars().next_back().is_some_and(ident_char);
        let tail = &rest[i..];
        let end = tail.find(|c: char| !ident_char(c)).unwrap_or(tail.len());
        let name = &tail[..end];
        let mut labels = Vec::new();
        if let Some(sel) = tail[end..].strip_prefix('{') {
            let close = sel.find('}').unwrap_or(sel.len());
            for m in sel[..close].split(',') {
                let label = m.trim().split(['=', '!', '~']).next().unwrap_or_default().trim();
                if !label.is_empty() {
                    labels.push(label.to_string());
                }
            }
        }
        if !preceded {
            out.push((name.to_string(), labels));
        }
        rest = &tail[end..];
    }
    out
}

/// Label names in `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`, `group_left (...)`.
pub fn grouping_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if ident_char(chars[i]) && (i == 0 || !ident_char(chars[i - 1])) {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if matches!(word.as_str(), "by" | "without" | "on" | "ignoring" | "group_left" | "group_right") {
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == '(' {
                    let close = chars[j..].iter().position(|&c| c == ')').map(|p| p + j).unwrap_or(chars.len());
                    let list: String = chars[j + 1..close].iter().collect();
                    out.extend(list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
                }
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Sample name → label names, from a text exposition.
pub fn exposition(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..name_end].to_string()).or_default();
        if line[name_end..].starts_with('{') {
            let close = line.find('}').unwrap_or(line.len());
            for pair in line[name_end + 1..close].split(',') {
                if let Some((k, _)) = pair.split_once('=') {
                    labels.insert(k.trim().to_string());
                }
            }
        }
    }
    out
}

/// Checks every name with `prefix` the dashboard references against `exported` (sample names
/// and their labels); returns the names referenced.
pub fn check_dashboard(prefix: &str, exported: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let text = read(&workspace().join("deploy/grafana/agentmill.json"));
    let dashboard: Value = serde_json::from_str(&text).expect("deploy/grafana/agentmill.json is JSON");
    let mut texts = Vec::new();
    strings(&dashboard, &mut texts);
    let mut seen = BTreeSet::new();
    let mut errors = Vec::new();
    for expr in &texts {
        let refs = referenced(expr, prefix);
        if refs.is_empty() {
            continue;
        }
        let mut labels_here: BTreeSet<String> = ["instance", "job", "le"].into_iter().map(String::from).collect();
        for (name, labels) in &refs {
            seen.insert(name.clone());
            match exported.get(name) {
                None => errors.push(format!("{name} is not exported (in: {expr})")),
                Some(known) => {
                    labels_here.extend(known.iter().cloned());
                    for l in labels {
                        if !known.contains(l) && l != "instance" && l != "job" {
                            errors.push(format!("{name} has no label {l} (in: {expr})"));
                        }
                    }
                }
            }
        }
        for l in grouping_labels(expr) {
            if !labels_here.contains(&l) {
                errors.push(format!("`{l}` is grouped on but no metric of the expression has it (in: {expr})"));
            }
        }
    }
    assert!(errors.is_empty(), "deploy/grafana/agentmill.json references what the services do not export:\n{}", errors.join("\n"));
    assert!(!seen.is_empty(), "the dashboard charts no {prefix}* metric");
    seen
}
