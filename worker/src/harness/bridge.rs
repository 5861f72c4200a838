//! The channel between a sandbox and its gateway: no network, no socket, no host path.
//!
//! [`BRIDGE_SCRIPT`] runs in the sandbox (its own `python3`) as a Docker exec whose stdin and
//! stdout the worker holds ([`crate::sandbox::docker::DockerContainer::attach`]). It listens on
//! `127.0.0.1` inside the sandbox — loopback exists under network mode `none` — and turns each
//! HTTP request into a JSON line; [`Bridge::start`] reads those lines, has the [`Gateway`] answer
//! each (concurrently), and writes the answers back. The sandbox keeps network mode `none`, so
//! a harness can reach the gateway and nothing else.
//!
//! Why an exec and not a unix socket bind-mounted into the container: a bind mount names a path
//! on the Docker host, which a worker that runs in a container itself (compose, the Kubernetes
//! DaemonSet) or talks to a remote engine does not have; the exec channel works wherever the
//! worker can run commands in its sandboxes, and nothing is left on the host's disk.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bollard::container::LogOutput;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::gateway::Gateway;
use crate::sandbox::SandboxError;
use crate::sandbox::docker::DockerContainer;

/// The bridge: Python 3, standard library only.
pub const BRIDGE_SCRIPT: &str = include_str!("bridge.py");

/// How long the bridge may take to start listening.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Lines of the bridge's stderr kept for error messages.
const STDERR_LINES: usize = 40;

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Ready { ready: u16 },
    Request { id: u64, method: String, path: String, body: String },
}

/// A running bridge. Dropping it closes the channel, and the bridge exits.
#[derive(Debug)]
pub struct Bridge {
    /// The port the bridge listens on inside the sandbox.
    pub port: u16,
    stderr: Arc<Mutex<VecDeque<String>>>,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl Bridge {
    /// Starts the bridge in `container` and serves its requests with `gateway` until dropped.
    pub async fn start(container: &DockerContainer, gateway: Arc<Gateway>) -> Result<Bridge, SandboxError> {
        let argv = vec!["python3".to_string(), "-u".into(), "-c".into(), BRIDGE_SCRIPT.to_string()];
        let attached = container.attach(argv, &Default::default()).await?;
        let (ready_tx, ready_rx) = oneshot::channel::<u16>();
        let (answers_tx, mut answers_rx) = mpsc::channel::<String>(64);
        let stderr: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let mut input = attached.input;
        let writer = tokio::spawn(async move {
            while let Some(line) = answers_rx.recv().await {
                if input.write_all(line.as_bytes()).await.is_err() || input.flush().await.is_err() {
                    break;
                }
            }
            let _ = input.shutdown().await;
        });
        let mut output = attached.output;
        let err_lines = stderr.clone();
        let reader = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            let mut pending: Vec<u8> = Vec::new();
            let mut err_pending: Vec<u8> = Vec::new();
            while let Some(frame) = output.next().await {
                let (bytes, is_err) = match frame {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => (message, false),
                    Ok(LogOutput::StdErr { message }) => (message, true),
                    Ok(LogOutput::StdIn { .. }) => continue,
                    Err(e) => {
                        warn!("the LLM bridge's channel failed: {e}");
                        break;
                    }
                };
                if is_err {
                    err_pending.extend_from_slice(&bytes);
                    while let Some(at) = err_pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = err_pending.drain(..=at).collect();
                        if let Ok(mut kept) = err_lines.lock() {
                            kept.push_back(String::from_utf8_lossy(&line).trim_end().to_string());
                            while kept.len() > STDERR_LINES {
                                kept.pop_front();
                            }
                        }
                    }
                    continue;
                }
                pending.extend_from_slice(&bytes);
                while let Some(at) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=at).collect();
                    match serde_json::from_slice::<Line>(&line) {
                        Ok(Line::Ready { ready }) => {
                            if let Some(tx) = ready_tx.take() {
                                let _ = tx.send(ready);
                            }
                        }
                        Ok(Line::Request { id, method, path, body }) => {
                            let gateway = gateway.clone();
                            let answers = answers_tx.clone();
                            tokio::spawn(async move {
                                let a = gateway.handle(&method, &path, &body).await;
                                debug!(id, %method, %path, status = a.status, "gateway call");
                                let line = json!({ "id": id, "status": a.status, "content_type": a.content_type, "body": a.body }).to_string() + "\n";
                                let _ = answers.send(line).await;
                            });
                        }
                        Err(e) => warn!("the LLM bridge wrote a line that is not its protocol ({e}): {}", String::from_utf8_lossy(&line)),
                    }
                }
            }
        });
        let port = match tokio::time::timeout(READY_TIMEOUT, ready_rx).await {
            Ok(Ok(port)) => port,
            _ => {
                reader.abort();
                writer.abort();
                let tail = stderr.lock().map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default();
                return Err(SandboxError::Engine(format!(
                    "the LLM bridge did not start in the sandbox within {} s (it needs python3 in the image): {tail}",
                    READY_TIMEOUT.as_secs()
                )));
            }
        };
        Ok(Bridge { port, stderr, reader, writer })
    }

    /// The base URL a harness in the sandbox calls.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// The last lines the bridge wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr.lock().map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default()
    }
}
