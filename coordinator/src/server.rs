//! Starting the coordinator: Redis, the core, the observer, the gRPC server (with health,
//! reflection, the credential check, TLS and size limits) and the HTTP server on `metrics_listen`:
//!
//! | path | answer |
//! |---|---|
//! | `GET /` | the status page (one self-contained HTML file, no external resources) |
//! | `GET /api/stats` | `ClusterStats` as canonical proto3 JSON (what `agentmill stats --json` prints) |
//! | `GET /api/history[?since=T]` | `{interval_ms, capacity, samples}`: the sampled figures, oldest first (those after Unix ms `T`) |
//! | `GET /metrics` | Prometheus text format ([`crate::metrics`]) |
//!
//! The HTTP server has no bearer check: like `/metrics`, bind it where only operators reach it.

use std::net::SocketAddr;
use std::sync::Arc;

use agentmill_proto::v1::coordinator_server::CoordinatorServer;
use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tracing::info;

use crate::auth::Auth;
use crate::config::CoordinatorConfig;
use crate::core::{self, CoreConfig, CoreHandle};
use crate::metrics::Metrics;
use crate::observe::{self, ClusterView, ObserveConfig};
use crate::service::CoordinatorService;

/// The status page served at `/`.
pub const STATUS_PAGE: &str = include_str!("status_page.html");

/// A started coordinator.
#[derive(Debug)]
pub struct Running {
    /// The gRPC address it listens on.
    pub addr: SocketAddr,
    /// The metrics address, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// The core, for in-process callers (tests, benches).
    pub core: CoreHandle,
    /// The live view the observer keeps (stream, learner, history).
    pub view: ClusterView,
    /// Ends when the server stops.
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Connects to Redis, loads the task store and serves until `shutdown` resolves.
pub async fn start(cfg: CoordinatorConfig, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<Running> {
    let client = redis::Client::open(cfg.redis_url.as_str()).with_context(|| format!("redis_url {:?} is not a Redis URL", cfg.redis_url))?;
    let redis = redis::aio::ConnectionManager::new(client.clone())
        .await
        .with_context(|| format!("cannot reach Redis at {} (start redis-server or set redis_url / AGENTMILL_REDIS_URL)", cfg.redis_url))?;
    let stream_con = redis.clone();
    let metrics = Arc::new(Metrics::new());
    let core = core::start(
        CoreConfig {
            lease_ttl: cfg.lease_ttl,
            heartbeat_interval: cfg.heartbeat_interval,
            max_attempts: cfg.max_attempts,
            max_handbacks: cfg.max_handbacks,
            namespace: cfg.namespace.clone(),
            watch_buffer: cfg.watch_buffer,
            session_buffer: cfg.session_buffer,
        },
        redis,
        metrics.clone(),
    )
    .await
    .context("loading the task store from Redis")?;

    let view = ClusterView::new(cfg.history_interval, cfg.history_len);
    observe::spawn(
        ObserveConfig {
            stream: cfg.stream.clone(),
            learner_group: cfg.learner_group.clone(),
            interval: cfg.history_interval,
            trim_acknowledged: cfg.trim_acknowledged,
            retain_acknowledged: cfg.retain_acknowledged,
        },
        client,
        core.clone(),
        view.clone(),
    );

    let metrics_addr = match cfg.metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await.with_context(|| format!("metrics_listen {addr} is not free"))?;
            let local = listener.local_addr()?;
            let app = http_app(HttpState { core: core.clone(), view: view.clone(), metrics: metrics.clone() });
            tokio::spawn(async move { axum::serve(listener, app).await });
            info!("status page on http://{local}/ (metrics at /metrics)");
            Some(local)
        }
        None => None,
    };

    let content = crate::content::ContentStore::new(stream_con.clone(), &cfg.namespace, cfg.max_content_bytes);
    let service = CoordinatorService::new(core.clone(), cfg.max_batch).with_row_limits(cfg.row_limits.clone()).with_view(view.clone()).with_stream(stream_con, cfg.stream.clone()).with_content(content);
    let auth = Auth::from_config(cfg.token.as_deref(), &cfg.credentials).map_err(anyhow::Error::msg)?;
    if !auth.is_open() {
        info!(credentials = cfg.credentials.len() + usize::from(cfg.token.is_some()), "every call needs a credential; roles decide what it may call");
    }
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
    Ok(Running { addr, metrics_addr, core, view, handle })
}

/// What the HTTP handlers read.
#[derive(Debug, Clone)]
struct HttpState {
    core: CoreHandle,
    view: ClusterView,
    metrics: Arc<Metrics>,
}

/// The HTTP server's routes (see the module doc).
fn http_app(state: HttpState) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/", get(|| async { Html(STATUS_PAGE) }))
        .route("/api/stats", get(api_stats))
        .route("/api/history", get(api_history))
        .route("/metrics", get(|State(s): State<HttpState>| async move { s.metrics.render() }))
        .with_state(state)
}

/// A JSON body the browser must not cache (the page polls it).
fn json_body(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

async fn api_stats(State(s): State<HttpState>) -> Response {
    let stats = match observe::cluster_stats(&s.core, &s.view).await {
        Ok(stats) => stats,
        Err(status) => return (StatusCode::SERVICE_UNAVAILABLE, status.message().to_string()).into_response(),
    };
    match agentmill_proto::json::to_json(&stats) {
        Ok(json) => json_body(json.to_string()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("ClusterStats as JSON: {e:#}")).into_response(),
    }
}

/// `/api/history`'s query.
#[derive(Debug, serde::Deserialize)]
struct HistoryQuery {
    /// Only samples taken after this Unix ms.
    since: Option<i64>,
}

async fn api_history(State(s): State<HttpState>, Query(q): Query<HistoryQuery>) -> Response {
    match s.view.history_json(q.since) {
        Ok(body) => json_body(body),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("history as JSON: {e}")).into_response(),
    }
}
