//! The operator guide (`deploy/OPERATIONS.md`) names every setting and every metric of the
//! learner, so it cannot fall behind the code unnoticed. (The coordinator's, the worker's and the
//! CLI's side: `tests/tests/operator_guide.rs`; the checks themselves:
//! `agentmill_testkit::guide_check`.)
//!
//! - **Settings**: `LearnerConfig::default()` serialized and flattened to dotted key paths; the
//!   recipe (`[[stages]]`) contributes `stages` and its elements' keys (`stages.name`,
//!   `stages.sources.env-pass`, ...). Every section that refuses unknown keys is asked for the
//!   fields it declares (a probe key makes serde list them), which catches a field the serialized
//!   defaults leave out — and for `stages.sources`, keyed by an enum, every source.
//! - **Metrics**: the doc table at the top of `learner/src/metrics.rs`, checked against the
//!   registry of `Metrics::new(true)` (MFU included): names, types and label names, and the
//!   count of registered collectors, so a vector family this test does not observe fails it.
//!
//! A key must appear in the guide in backticks; a metric in a table row whose type cell is its
//! type, written `` `name{label,...}` `` with exactly its label names.

use agentmill_learner::config::LearnerConfig;
use agentmill_learner::metrics::Metrics;
use agentmill_testkit::guide_check::*;
use agentmill_testkit::{read, workspace};

#[test]
fn the_guide_lists_every_learner_setting() {
    let defaults = serde_json::to_value(LearnerConfig::default()).expect("the defaults serialize");
    let keys = config_keys("learner", &|v| serde_json::from_value::<LearnerConfig>(v).map(drop), &defaults);
    for k in ["seq_len", "until_idle", "status_interval", "stages", "stages.loss_mask", "stages.sources.env-pass", "stages.sources.ctx"] {
        assert!(keys.contains(k), "{k} is not among the learner's keys: {keys:?}");
    }
    let missing = missing_keys(&keys, &guide());
    assert!(missing.is_empty(), "deploy/OPERATIONS.md does not document these learner settings: {missing:?}");
}

#[test]
fn a_guide_without_a_key_or_a_metric_fails() {
    let defaults = serde_json::to_value(LearnerConfig::default()).expect("the defaults serialize");
    let keys = config_keys("learner", &|v| serde_json::from_value::<LearnerConfig>(v).map(drop), &defaults);
    let guide = guide().replace("`claim_idle`", "claim_idle");
    assert_eq!(missing_keys(&keys, &guide), ["claim_idle"]);
    let table = doc_table(&read(&workspace().join("learner/src/metrics.rs")), "agentmill_learner_");
    let guide = guide.replace("`agentmill_learner_acked_total`", "acked");
    assert_eq!(missing_metrics(&table, &guide), ["agentmill_learner_acked_total (counter)"]);
}

#[test]
fn the_guide_lists_every_learner_metric() {
    // MFU is registered on CUDA only; the vectors render once a label set is used.
    let m = Metrics::showing_every_family();
    let source = read(&workspace().join("learner/src/metrics.rs"));
    let table = documented_and_registered("learner", &source, "agentmill_learner_", &m.render(), &format!("{m:?}"));
    assert!(table.len() >= 17 && table.contains_key("agentmill_learner_mfu"), "{table:?}");
    let missing = missing_metrics(&table, &guide());
    assert!(missing.is_empty(), "deploy/OPERATIONS.md does not document these learner metrics (name, type and labels on one line): {missing:?}");
}
