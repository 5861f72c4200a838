//! The CLI's commented example configuration (deploy/config/cli.toml) loads.

use std::path::Path;

use agentmill_cli::client::ClientConfig;

#[test]
fn the_example_cli_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/cli.toml");
    let cfg = ClientConfig::from_file(&path).expect("example loads");
    assert_eq!(cfg.addr.as_deref(), Some("http://127.0.0.1:50051"));
}
