//! Starting the coordinator: Redis, the core, the gRPC server (with health, reflection, the
//! bearer check, TLS and size limits) and the metrics endpoint.

use std::net::SocketAddr;
use std::sync::Arc;

use agentmill_proto::v1::coordinator_server::CoordinatorServer;
use anyhow::Context;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tracing::info;

use crate::auth::BearerAuth;
use crate::config::CoordinatorConfig;
use crate::core::{self, CoreConfig, CoreHandle};
use crate::metrics::Metrics;
use crate::service::CoordinatorService;

/// A started coordinator.
#[derive(Debug)]
pub struct Running {
    /// The gRPC address it listens on.
    pub addr: SocketAddr,
    /// The metrics address, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// The core, for in-process callers (tests, benches).
    pub core: CoreHandle,
    /// Ends when the server stops.
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Connects to Redis, loads the task store and serves until `shutdown` resolves.
pub async fn start(cfg: CoordinatorConfig, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<Running> {
    let client = redis::Client::open(cfg.redis_url.as_str()).with_context(|| format!("redis_url {:?} is not a Redis URL", cfg.redis_url))?;
    let redis = redis::aio::ConnectionManager::new(client)
        .await
        .with_context(|| format!("cannot reach Redis at {} (start redis-server or set redis_url / AGENTMILL_REDIS_URL)", cfg.redis_url))?;
    let metrics = Arc::new(Metrics::new());
    let core = core::start(
        CoreConfig {
            lease_ttl: cfg.lease_ttl,
            heartbeat_interval: cfg.heartbeat_interval,
            max_attempts: cfg.max_attempts,
            namespace: cfg.namespace.clone(),
            watch_buffer: cfg.watch_buffer,
        },
        redis,
        metrics.clone(),
    )
    .await
    .context("loading the task store from Redis")?;

    let metrics_addr = match cfg.metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await.with_context(|| format!("metrics_listen {addr} is not free"))?;
            let local = listener.local_addr()?;
            let m = metrics.clone();
            let app = axum::Router::new().route("/metrics", axum::routing::get(move || async move { m.render() }));
            tokio::spawn(async move { axum::serve(listener, app).await });
            info!("metrics on http://{local}/metrics");
            Some(local)
        }
        None => None,
    };

    let service = CoordinatorService::new(core.clone(), cfg.max_batch);
    let auth = BearerAuth::new(cfg.token.clone());
    let grpc = CoordinatorServer::new(service)
        .max_decoding_message_size(cfg.max_message_bytes)
        .max_encoding_message_size(cfg.max_message_bytes);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(agentmill_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<CoordinatorServer<CoordinatorService>>().await;

    let listener = TcpListener::bind(cfg.listen).await.with_context(|| format!("listen {} is not free", cfg.listen))?;
    let addr = listener.local_addr()?;
    let mut builder = Server::builder();
    if let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) {
        let cert = std::fs::read(cert).with_context(|| format!("tls_cert {}", cert.display()))?;
        let key = std::fs::read(key).with_context(|| format!("tls_key {}", key.display()))?;
        builder = builder.tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key))).context("tls_cert / tls_key")?;
    }
    // Health stays open so load balancers and Kubernetes probes need no token.
    let router = builder
        .add_service(health)
        .add_service(InterceptedService::new(reflection, auth.clone()))
        .add_service(InterceptedService::new(grpc, auth));
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let tls = cfg.tls_cert.is_some();
    info!("coordinator serving agentmill.v1 on {addr}{}", if tls { " (TLS)" } else { "" });
    let handle = tokio::spawn(async move {
        router.serve_with_incoming_shutdown(incoming, shutdown).await.context("gRPC server")?;
        Ok(())
    });
    Ok(Running { addr, metrics_addr, core, handle })
}
