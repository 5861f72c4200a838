//! The CLI's commented example configuration (deploy/config/cli.toml) loads.

use agentmill_cli::client::ClientConfig;
use agentmill_testkit::workspace;

#[test]
fn the_example_cli_config_loads() {
    let path = workspace().join("deploy/config/cli.toml");
    let cfg = ClientConfig::from_file(&path).expect("example loads");
    assert_eq!(cfg.addr.as_deref(), Some("http://127.0.0.1:50051"));
}
