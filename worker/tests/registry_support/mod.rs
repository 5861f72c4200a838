//! A real registry for the pull tests: Debian's `docker-registry` (the CNCF distribution registry)
//! on a free loopback port, serving a folder the test makes, optionally behind htpasswd basic
//! auth (the file written by apache2-utils' `htpasswd`, bcrypt); and a "registry" that hangs (a
//! loopback listener that answers the version check and nothing else). Docker treats
//! `127.0.0.0/8` registries as insecure, so it pulls over plain HTTP. Nothing leaves the host.
//!
//! Without `docker-registry` or `htpasswd` the tests fail naming the package (`deploy/setup.sh`
//! installs both).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A `docker-registry` on a free loopback port; killed, with its folder and the images the test
/// made, when dropped.
pub struct Registry {
    child: Child,
    pub port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
    /// References the test made on the host (removed at the end).
    pub images: Vec<String>,
}

impl Registry {
    /// A registry anyone may pull from and push to.
    pub async fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
        let child = spawn(&dir, port, None);
        let mut registry = Registry { child, port, log: dir.path().join("registry.log"), dir, images: Vec::new() };
        registry.wait_listening().await;
        registry
    }

    /// Restarts this registry, same port and storage, behind basic auth for `user`/`password`
    /// (push first, then lock: pushing to a locked registry would need `docker login`, which
    /// writes the host's Docker config).
    pub async fn lock(&mut self, user: &str, password: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let htpasswd = self.dir.path().join("htpasswd");
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .unwrap_or_else(|e| panic!("this test needs apache2-utils' htpasswd (apt-get install apache2-utils; deploy/setup.sh installs it): {e}"));
        assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(&htpasswd, &out.stdout).expect("write the htpasswd file");
        self.child = spawn(&self.dir, self.port, Some(&htpasswd));
        self.wait_listening().await;
    }

    async fn wait_listening(&mut self) {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        panic!("docker-registry never listened on 127.0.0.1:{}: {}", self.port, self.log_text());
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the registry logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Makes a tiny image as `reference`, pushes it here and removes it from the host.
    pub fn push(&mut self, reference: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("payload"), format!("{reference} {}", fastrand::u64(..))).expect("write the payload");
        let tar = dir.path().join("image.tar");
        run(Command::new("tar").arg("-C").arg(dir.path()).arg("-cf").arg(&tar).arg("payload"));
        run(Command::new("docker").arg("import").arg(&tar).arg(reference));
        self.push_and_remove(reference);
    }

    /// Builds `FROM base` an image carrying a unique label as `reference` (legacy builder,
    /// offline), pushes it here, removes it from the host, and returns its pinned reference
    /// (`repository@sha256:…`) as the registry serves it.
    pub fn push_labelled(&mut self, base: &str, reference: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let label = format!("org.agentmill.test.registry={reference}-{}", fastrand::u64(..));
        std::fs::write(dir.path().join("Dockerfile"), format!("FROM {base}\nLABEL {label}\n")).expect("write the Dockerfile");
        run(Command::new("docker").env("DOCKER_BUILDKIT", "0").args(["build", "-q", "-t", reference]).arg(dir.path()));
        self.images.push(reference.to_string());
        run(Command::new("docker").args(["push", reference]));
        let out = Command::new("docker").args(["image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}", reference]).output().expect("docker image inspect");
        let repository = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
        let pinned = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with(&format!("{repository}@")))
            .unwrap_or_else(|| panic!("{reference} has no registry digest after the push: {}", String::from_utf8_lossy(&out.stdout)))
            .to_string();
        self.images.push(pinned.clone());
        run(Command::new("docker").args(["rmi", reference]));
        pinned
    }

    /// Pushes `reference` (on the host) here and removes it from the host.
    pub fn push_and_remove(&mut self, reference: &str) {
        self.images.push(reference.to_string());
        run(Command::new("docker").args(["push", reference]));
        run(Command::new("docker").args(["rmi", reference]));
    }

    /// Asks the registry for a manifest that names `marker` and waits until its log shows the
    /// request: everything the registry was asked before is in the log by then.
    pub async fn log_through(&self, marker: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.expect("connect to the registry");
        s.write_all(format!("GET /v2/{marker}/manifests/latest HTTP/1.0\r\nHost: {}\r\n\r\n", self.host()).as_bytes()).await.expect("ask");
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.expect("the registry answers");
        for _ in 0..200 {
            let log = self.log_text();
            if log.contains(marker) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the registry's log never showed the request for {marker}: {}", self.log_text());
    }
}

fn spawn(dir: &tempfile::TempDir, port: u16, htpasswd: Option<&std::path::Path>) -> Child {
    let config = dir.path().join("config.yml");
    let auth = htpasswd.map(|p| format!("auth:\n  htpasswd:\n    realm: agentmill-test\n    path: {}\n", p.display())).unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        ),
    )
    .expect("write the registry's config");
    let log = dir.path().join("registry.log");
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("the registry's log");
    Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(out.try_clone().expect("clone the log"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("these tests need Debian's docker-registry (apt-get install docker-registry; deploy/setup.sh installs it): {e}"))
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for image in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", image]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// Runs `cmd`, failing the test with its output when it fails.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Whether Docker has `reference` on this host.
pub fn on_host(reference: &str) -> bool {
    Command::new("docker").args(["image", "inspect", reference]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// A loopback registry that hangs: it answers the version check (`GET /v2/`) as a registry does,
/// so the engine goes on to ask for the image, and never answers anything else. Stopped when
/// dropped.
pub struct SilentRegistry {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl SilentRegistry {
    pub async fn start() -> SilentRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback listener");
        let port = listener.local_addr().expect("its address").port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut head = [0u8; 16];
                let mut n = 0;
                while n < head.len() {
                    match socket.read(&mut head[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                }
                if head.starts_with(b"GET /v2/ ") {
                    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\nDocker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n{}";
                    let _ = socket.write_all(ok.as_bytes()).await;
                } else {
                    held.push(socket);
                }
            }
        });
        SilentRegistry { port, task }
    }
}

impl Drop for SilentRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A registry that lies: it serves one real manifest (fetched from a real registry) for every
/// manifest asked of it, by tag or by digest, with a `Docker-Content-Digest` header echoing what
/// was asked, and redirects blob requests to the real registry. A pull by a digest other than
/// the served manifest's must be refused by whoever checks digests. Stopped when dropped.
pub struct LyingRegistry {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl LyingRegistry {
    /// Serves `repository:tag` of the registry at `real` (`127.0.0.1:PORT`) for every manifest.
    pub async fn start(real: &str, repository: &str, tag: &str) -> LyingRegistry {
        let accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
        let response = reqwest::Client::new()
            .get(format!("http://{real}/v2/{repository}/manifests/{tag}"))
            .header("accept", accept)
            .send()
            .await
            .expect("the real registry answers");
        assert!(response.status().is_success(), "the real registry has {repository}:{tag}: {}", response.status());
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("application/vnd.docker.distribution.manifest.v2+json").to_string();
        let manifest = response.bytes().await.expect("the manifest's bytes");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback listener");
        let port = listener.local_addr().expect("its address").port();
        let real = real.to_string();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (real, content_type, manifest) = (real.clone(), content_type.clone(), manifest.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let path = req.uri().path().to_string();
                        let builder = hyper::Response::builder().header("Docker-Distribution-API-Version", "registry/2.0");
                        let response = if path == "/v2/" {
                            builder.status(200).header("content-type", "application/json").body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
                        } else if let Some((_, reference)) = path.split_once("/manifests/") {
                            builder
                                .status(200)
                                .header("content-type", content_type.as_str())
                                .header("Docker-Content-Digest", reference)
                                .body(http_body_util::Full::new(manifest.clone()))
                        } else if path.contains("/blobs/") {
                            builder.status(307).header("location", format!("http://{real}{path}")).body(http_body_util::Full::new(bytes::Bytes::new()))
                        } else {
                            builder.status(404).body(http_body_util::Full::new(bytes::Bytes::new()))
                        };
                        async move { response.map_err(|e| e.to_string()) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                });
            }
        });
        LyingRegistry { port, task }
    }
}

impl Drop for LyingRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}
