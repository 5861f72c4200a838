//! A real registry for the pull tests: Debian's `docker-registry` (the CNCF distribution registry)
//! on a free loopback port, serving a folder the test makes, optionally behind htpasswd basic
//! auth (the file written by apache2-utils' `htpasswd`, bcrypt) — [`Registry`]; and a "registry"
//! that hangs (a loopback listener that answers the version check and nothing else) —
//! [`SilentRegistry`]. Docker treats `127.0.0.0/8` registries as insecure, so it pulls over plain
//! HTTP. Nothing leaves the host.
//!
//! Without `docker-registry` or `htpasswd` the tests fail naming the package (`deploy/setup.sh`
//! installs both).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::docker::quiet;
use crate::{free_port, random_u64, run, unique};

/// A `docker-registry` on a free loopback port; killed, with its folder and the images the test
/// made, when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    /// References the test made on the host (removed at the end).
    pub images: Vec<String>,
}

impl Registry {
    /// A registry anyone may pull from and push to; returns once it listens.
    pub fn start() -> Registry {
        let dir = std::env::temp_dir().join(unique("agentmill-test-registry"));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("the registry's folder {}: {e}", dir.display()));
        let port = free_port();
        let child = spawn(&dir, port, None);
        let mut registry = Registry { child, port, dir, images: Vec::new() };
        registry.wait_listening();
        registry
    }

    /// Restarts this registry, same port and storage, behind basic auth for `user`/`password`
    /// (push first, then lock: pushing to a locked registry would need `docker login`, which
    /// writes the host's Docker config).
    pub fn lock(&mut self, user: &str, password: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let htpasswd = self.dir.join("htpasswd");
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .unwrap_or_else(|e| panic!("this test needs apache2-utils' htpasswd (apt-get install apache2-utils; deploy/setup.sh installs it): {e}"));
        assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(&htpasswd, &out.stdout).expect("write the htpasswd file");
        self.child = spawn(&self.dir, self.port, Some(&htpasswd));
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
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
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Makes a tiny image as `reference`, pushes it here and removes it from the host.
    pub fn push(&mut self, reference: &str) {
        let dir = self.scratch("push");
        std::fs::write(dir.join("payload"), format!("{reference} {}", random_u64())).expect("write the payload");
        let tar = dir.join("image.tar");
        run(Command::new("tar").arg("-C").arg(&dir).arg("-cf").arg(&tar).arg("payload"));
        run(Command::new("docker").arg("import").arg(&tar).arg(reference));
        self.push_and_remove(reference);
    }

    /// Builds `FROM base` an image carrying a unique label as `reference` (legacy builder,
    /// offline), pushes it here, removes it from the host, and returns its pinned reference
    /// (`repository@sha256:…`) as the registry serves it.
    pub fn push_labelled(&mut self, base: &str, reference: &str) -> String {
        let dir = self.scratch("build");
        let label = format!("org.agentmill.test.registry={reference}-{}", random_u64());
        std::fs::write(dir.join("Dockerfile"), format!("FROM {base}\nLABEL {label}\n")).expect("write the Dockerfile");
        run(Command::new("docker").env("DOCKER_BUILDKIT", "0").args(["build", "-q", "-t", reference]).arg(&dir));
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
    pub fn log_through(&self, marker: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the registry");
        s.write_all(format!("GET /v2/{marker}/manifests/latest HTTP/1.0\r\nHost: {}\r\n\r\n", self.host()).as_bytes()).expect("ask");
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).expect("the registry answers");
        for _ in 0..200 {
            let log = self.log_text();
            if log.contains(marker) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the registry's log never showed the request for {marker}: {}", self.log_text());
    }

    /// A fresh folder inside the registry's own, for an image's build context.
    fn scratch(&self, what: &str) -> PathBuf {
        let dir = self.dir.join(unique(what));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        dir
    }
}

fn spawn(dir: &Path, port: u16, htpasswd: Option<&Path>) -> Child {
    let config = dir.join("config.yml");
    let auth = htpasswd.map(|p| format!("auth:\n  htpasswd:\n    realm: agentmill-test\n    path: {}\n", p.display())).unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.join("data").display()
        ),
    )
    .expect("write the registry's config");
    let log = dir.join("registry.log");
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
            quiet(&["rmi", "-f", image]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback registry that hangs: it answers the version check (`GET /v2/`) as a registry does,
/// so the engine goes on to ask for the image, and never answers anything else. Stopped, with
/// every connection it held, when dropped.
#[derive(Debug)]
pub struct SilentRegistry {
    /// Its port on 127.0.0.1.
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentRegistry {
    /// Listens on a free loopback port (a thread of its own, so no runtime is needed).
    pub fn start() -> SilentRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
        let port = listener.local_addr().expect("its address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for socket in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut socket) = socket else { continue };
                // The request's head, whole (an answer written over unread bytes would reset the
                // connection), within a bound so dropping never waits long; a client that sends
                // nothing in time is held like any other.
                let _ = socket.set_read_timeout(Some(Duration::from_secs(1)));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
                    match socket.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                if head.starts_with(b"GET /v2/ ") {
                    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\nDocker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n{}";
                    let _ = socket.write_all(ok.as_bytes());
                } else {
                    held.push(socket);
                }
            }
        });
        SilentRegistry { port, stop, thread: Some(thread) }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for SilentRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept; the thread then ends and closes every held connection.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(port: u16, head: &str) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_millis(1500)))?;
        s.write_all(head.as_bytes())?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        Ok(answer)
    }

    #[test]
    fn a_silent_registry_answers_the_version_check_and_holds_the_rest() {
        let silent = SilentRegistry::start();
        let answer = request(silent.port, "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").expect("the version check is answered");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200 OK") && text.contains("registry/2.0"), "{text}");
        let held = request(silent.port, "GET /v2/x/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n").expect_err("a manifest is never answered");
        assert!(matches!(held.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{held}");
        let port = silent.port;
        drop(silent);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens once dropped");
    }
}
