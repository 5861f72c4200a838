//! One way to reach a coordinator, for the `agentmill` CLI and the worker's session alike: the
//! address (a bare `host:port` means `http://`), TLS with the system roots plus an optional CA
//! file for `https://`, the bearer token on every call, and 256 MiB message limits.

use std::path::Path;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::v1::coordinator_client::CoordinatorClient;

/// The largest message either side sends (a page of task specs, a batch of rows).
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Adds the bearer token to every call.
#[derive(Debug, Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A connected coordinator client.
pub type Client = CoordinatorClient<InterceptedService<Channel, BearerToken>>;

/// Where and how to connect.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `http://host:port`, `https://host:port` or a bare `host:port`.
    pub addr: &'a str,
    /// A PEM CA certificate trusted beside the system roots (`https://` only).
    pub ca_cert: Option<&'a Path>,
    /// The bearer token.
    pub token: Option<&'a str>,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
}

/// Why no connection was made. The first three are settings to fix; `Unreachable` may pass.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The address does not parse.
    #[error("{addr:?} is not a coordinator address ({why}); give host:port or http(s)://host:port")]
    Address {
        /// The address given.
        addr: String,
        /// The parser's complaint.
        why: String,
    },
    /// The CA file cannot be read.
    #[error("ca_cert {path}: {source}")]
    CaCert {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS settings were refused.
    #[error("TLS settings: {0}")]
    Tls(String),
    /// The token has characters a header cannot carry.
    #[error("the token must be printable ASCII")]
    Token,
    /// Nothing answered.
    #[error("cannot reach the coordinator at {addr}: {why}")]
    Unreachable {
        /// The address.
        addr: String,
        /// The transport's error.
        why: String,
    },
}

impl ConnectError {
    /// True when the settings are wrong (trying again will not help).
    pub fn is_settings(&self) -> bool {
        !matches!(self, ConnectError::Unreachable { .. })
    }
}

/// The address with a scheme: a bare `host:port` is `http://host:port`.
pub fn with_scheme(addr: &str) -> String {
    if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") }
}

/// Connects to the coordinator at `target`.
pub async fn connect(target: Target<'_>) -> Result<Client, ConnectError> {
    let addr = with_scheme(target.addr);
    let mut endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| ConnectError::Address { addr: addr.clone(), why: e.to_string() })?
        .connect_timeout(target.connect_timeout)
        .tcp_nodelay(true);
    if addr.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = target.ca_cert {
            let pem = std::fs::read(ca).map_err(|source| ConnectError::CaCert { path: ca.display().to_string(), source })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| ConnectError::Tls(e.to_string()))?;
    }
    let token = match target.token {
        Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| ConnectError::Token)?),
        None => None,
    };
    let channel = endpoint.connect().await.map_err(|e| ConnectError::Unreachable { addr: addr.clone(), why: e.to_string() })?;
    Ok(CoordinatorClient::with_interceptor(channel, BearerToken(token))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_errors_name_the_setting_and_are_not_retried() {
        let t = Target { addr: "http://[bad", ca_cert: None, token: None, connect_timeout: Duration::from_secs(1) };
        let e = connect(t).await.expect_err("a bad address");
        assert!(e.is_settings() && e.to_string().contains("not a coordinator address"), "{e}");
        let t = Target { addr: "https://127.0.0.1:1", ca_cert: Some(Path::new("/nonexistent/ca.pem")), ..t };
        let e = connect(t).await.expect_err("a missing CA file");
        assert!(e.is_settings() && e.to_string().starts_with("ca_cert /nonexistent/ca.pem"), "{e}");
        let t = Target { addr: "127.0.0.1:1", ca_cert: None, token: Some("bad\ntoken"), ..t };
        let e = connect(t).await.expect_err("a token with a newline");
        assert!(matches!(e, ConnectError::Token), "{e}");
        let t = Target { token: None, ..t };
        let e = connect(t).await.expect_err("nothing listens on port 1");
        assert!(!e.is_settings() && e.to_string().contains("cannot reach the coordinator at http://127.0.0.1:1"), "{e}");
    }
}
