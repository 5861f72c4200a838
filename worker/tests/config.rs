//! The commented example deploy/config/worker.toml loads and documents the defaults.

use std::path::Path;

use agentmill_worker::config::WorkerConfig;

#[test]
fn the_example_worker_config_loads_and_equals_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/worker.toml");
    let cfg = WorkerConfig::load(Some(&path), &Default::default()).expect("the example loads");
    assert_eq!(cfg, WorkerConfig::default(), "the example documents the defaults");
}

#[test]
fn a_misspelt_key_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.toml");
    std::fs::write(&path, "[capacity]\nepisodez = 3\n").expect("write");
    let err = WorkerConfig::load(Some(&path), &Default::default()).expect_err("refused").to_string();
    assert!(err.contains("episodez"), "{err}");
}

#[test]
fn a_misspelt_key_in_any_synth_section_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.toml");
    for (section, key) in [("synth", "templte"), ("synth.filter", "max_tokenz"), ("synth.edits", "growth"), ("synth.render", "colour"), ("synth.enhance", "enabeld")] {
        std::fs::write(&path, format!("[{section}]\n{key} = 1\n")).expect("write");
        let err = WorkerConfig::load(Some(&path), &Default::default()).expect_err(section).to_string();
        assert!(err.contains(key), "[{section}] {key}: {err}");
    }
}
