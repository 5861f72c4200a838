//! The deployment files speak the learner's language: every `agentmill_learner_*` metric the
//! Grafana dashboard (`deploy/grafana/agentmill.json`) charts is one the learner exports, with the
//! labels it is queried by; every `AGENTMILL_LEARNER_*` variable the compose file, the Kubernetes
//! manifests and the image entrypoint set names a learner key; and the learner's Kubernetes
//! configuration loads. (The coordinator's and the worker's side: `tests/tests/deploy_files.rs`;
//! the dashboard checks themselves: `agentmill_testkit::dashboard_check`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use agentmill_learner::config::LearnerConfig;
use agentmill_learner::metrics::Metrics;
use agentmill_testkit::dashboard_check::{check_dashboard, exposition};
use agentmill_testkit::{read, workspace};

const PREFIX: &str = "agentmill_learner_";

fn deploy(path: &str) -> PathBuf {
    workspace().join("deploy").join(path)
}

/// Sample name → label names of what the learner exports. Vectors render only once a label set
/// is used, and `mfu` only on CUDA: both are made to show.
fn exported() -> BTreeMap<String, BTreeSet<String>> {
    exposition(&Metrics::showing_every_family().render())
}

#[test]
fn dashboard_charts_only_metrics_the_learner_exports() {
    let exported = exported();
    let seen = check_dashboard(PREFIX, &exported);
    // The panels the learner's figures need are there.
    for family in ["tokens_per_second", "loss", "learning_rate", "grad_norm", "mfu", "stream_lag", "records_total", "packing_efficiency", "eval_loss", "recorded_turns_total"] {
        let name = format!("{PREFIX}{family}");
        assert!(seen.contains(&name), "the dashboard charts {name}");
    }
    // And the check bites: a misspelt name is not exported.
    assert!(!exported.contains_key("agentmill_learner_tokens_per_sec"));
}

/// The learner's top-level keys an `AGENTMILL_LEARNER_<KEY>` variable can set (scalars: the recipe
/// comes from the file only).
fn learner_keys() -> BTreeSet<String> {
    let v = serde_json::to_value(LearnerConfig::default()).expect("config serializes");
    v.as_object().expect("a table").iter().filter(|(_, v)| !v.is_object() && !v.is_array()).map(|(k, _)| k.clone()).collect()
}

#[test]
fn deployment_files_set_only_learner_variables_that_exist() {
    let keys = learner_keys();
    let mut files = vec![deploy("compose.yaml"), deploy("images/agentmill-entrypoint")];
    let k8s = deploy("k8s");
    for e in std::fs::read_dir(&k8s).unwrap_or_else(|e| panic!("{}: {e}", k8s.display())) {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "yaml") {
            files.push(p);
        }
    }
    let mut found = 0;
    for f in &files {
        let text = read(f);
        let mut rest = text.as_str();
        while let Some(i) = rest.find("AGENTMILL_LEARNER_") {
            let tail = &rest[i + "AGENTMILL_LEARNER_".len()..];
            let end = tail.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
            let key = tail[..end].to_lowercase();
            // A trailing underscore is prose about the prefix itself ("AGENTMILL_LEARNER_<KEY>").
            if !key.is_empty() && !key.ends_with('_') {
                assert!(keys.contains(&key), "{}: AGENTMILL_LEARNER_{} names no learner key (keys: {keys:?})", f.display(), key.to_uppercase());
                found += 1;
            }
            rest = &tail[end..];
        }
    }
    assert!(found > 0, "the deployment files set learner variables");
}

#[test]
fn the_kubernetes_learner_config_loads() {
    let path = deploy("k8s/config/learner.toml");
    let cfg: LearnerConfig = agentmill_proto::config::load(Some(&path), &[], &Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    cfg.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(cfg.output_dir, Path::new("/var/lib/agentmill/learner"), "the PVC's mount point (k8s/learner.yaml)");
    assert_eq!(cfg.metrics_listen.map(|a| a.port()), Some(9465));
    assert!(cfg.metrics_listen.is_some_and(|a| a.ip().is_unspecified()), "metrics reachable from Prometheus");
    assert_eq!(cfg.redis_url, "redis://agentmill-redis:6379/");
}
