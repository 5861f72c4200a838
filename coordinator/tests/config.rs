//! The commented examples in deploy/config/ load, and layering works as documented.

use std::time::Duration;

use agentmill_coordinator::config::CoordinatorConfig;
use agentmill_testkit::workspace;

fn example(name: &str) -> std::path::PathBuf {
    workspace().join("deploy/config").join(name)
}

#[test]
fn the_example_coordinator_config_loads_and_equals_the_defaults() {
    let cfg = CoordinatorConfig::load(Some(&example("coordinator.toml")), &Default::default()).expect("example loads");
    assert_eq!(cfg, CoordinatorConfig::default(), "the example documents the defaults");
}

#[test]
fn flags_override_the_file_and_bad_values_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "lease_ttl = \"45s\"\nmax_attempts = 5\n").expect("write");
    let mut flags = figment::value::Dict::new();
    flags.insert("max_attempts".into(), 7.into());
    let cfg = CoordinatorConfig::load(Some(&file), &flags).expect("loads");
    assert_eq!(cfg.lease_ttl, Duration::from_secs(45));
    assert_eq!(cfg.max_attempts, 7);

    std::fs::write(&file, "lease_tll = \"45s\"\n").expect("write");
    let err = CoordinatorConfig::load(Some(&file), &Default::default()).expect_err("typo refused").to_string();
    assert!(err.contains("lease_tll"), "{err}");
    std::fs::write(&file, "lease_ttl = \"1s\"\nheartbeat_interval = \"5s\"\n").expect("write");
    let err = CoordinatorConfig::load(Some(&file), &Default::default()).expect_err("refused").to_string();
    assert!(err.contains("lease_ttl") && err.contains("heartbeat_interval"), "{err}");
}
