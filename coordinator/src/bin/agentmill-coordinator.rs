//! `agentmill-coordinator`: serves `agentmill.v1.Coordinator`.

use std::net::SocketAddr;
use std::path::PathBuf;

use agentmill_coordinator::config::CoordinatorConfig;
use clap::Parser;

/// agentmill's coordinator: dispatches repository tasks to workers and tracks them to their result.
///
/// Settings come from defaults, then --config FILE, then AGENTMILL_* environment variables, then
/// these flags.
#[derive(Debug, Parser)]
#[command(name = "agentmill-coordinator", version)]
struct Cli {
    /// TOML configuration file (see deploy/config/coordinator.toml).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// gRPC address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Prometheus /metrics address.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Redis URL.
    #[arg(long)]
    redis_url: Option<String>,
    /// Redis key namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Lease lifetime without a heartbeat (e.g. 30s).
    #[arg(long)]
    lease_ttl: Option<String>,
    /// Heartbeat interval asked of workers (e.g. 5s).
    #[arg(long)]
    heartbeat_interval: Option<String>,
    /// Attempts per rollout before it fails.
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Bearer token every RPC must carry.
    #[arg(long)]
    token: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let mut overrides = figment::value::Dict::new();
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            overrides.insert(k.into(), v.into());
        }
    };
    set("listen", cli.listen.map(|a| a.to_string()));
    set("metrics_listen", cli.metrics_listen.map(|a| a.to_string()));
    set("redis_url", cli.redis_url);
    set("namespace", cli.namespace);
    set("lease_ttl", cli.lease_ttl);
    set("heartbeat_interval", cli.heartbeat_interval);
    set("token", cli.token);
    if let Some(n) = cli.max_attempts {
        overrides.insert("max_attempts".into(), n.into());
    }
    let cfg = CoordinatorConfig::load(cli.config.as_deref(), &overrides)?;
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    };
    let running = agentmill_coordinator::server::start(cfg, shutdown).await?;
    running.handle.await??;
    Ok(())
}
