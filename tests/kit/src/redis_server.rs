//! [`TestRedis`]: the Redis server a test stands on.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, unique};

/// A Redis server for a test: the suite's private one (`AGENTMILL_TEST_REDIS_URL`, started by
/// `deploy/test.sh`), or else a `redis-server` this process starts on a free port and stops when
/// the handle drops. Tests sharing a server keep apart by prefixing their keys with
/// [`unique`](crate::unique) names.
#[derive(Debug)]
pub struct TestRedis {
    /// `redis://host:port/`.
    pub url: String,
    own: Option<OwnServer>,
}

/// A `redis-server` this handle started, with its data folder.
#[derive(Debug)]
struct OwnServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl TestRedis {
    /// Connects to (or starts) the test Redis. Panics with the fix when redis-server is missing.
    pub fn start() -> TestRedis {
        if let Ok(url) = std::env::var("AGENTMILL_TEST_REDIS_URL") {
            return TestRedis { url, own: None };
        }
        TestRedis::private()
    }

    /// A `redis-server` of this handle's own on a free port, whatever the environment says: for
    /// a test that pauses, stops or loses it, which must touch no other test.
    pub fn private() -> TestRedis {
        let port = free_port();
        let dir = std::env::temp_dir().join(unique("agentmill-test-redis"));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("temp dir for redis {}: {e}", dir.display()));
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}); run deploy/setup.sh or deploy/test.sh"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&dir);
                panic!("redis-server did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        TestRedis { url: format!("redis://127.0.0.1:{port}/"), own: Some(OwnServer { child, port, dir }) }
    }

    /// The port of the server this handle started; `None` for the suite's shared one.
    pub fn port(&self) -> Option<u16> {
        self.own.as_ref().map(|s| s.port)
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the server this handle started, with `kill`.
    /// Panics for the suite's shared server, which other tests use.
    pub fn signal(&self, signal: &str) {
        let own = self.own.as_ref().expect("only a TestRedis::private() server may be signalled");
        let status = Command::new("kill").arg(format!("-{signal}")).arg(own.child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -{signal} redis-server");
    }

    /// Kills the server this handle started, for good (nothing for the shared one).
    pub fn stop(&mut self) {
        if let Some(own) = &mut self.own {
            // SIGKILL ends a stopped (SIGSTOP) server too.
            let _ = own.child.kill();
            let _ = own.child.wait();
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
        if let Some(own) = &self.own {
            let _ = std::fs::remove_dir_all(&own.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(port: u16) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s.write_all(b"PING\r\n").expect("send");
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).expect("read");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn a_private_server_answers_and_goes_with_its_handle() {
        let mut redis = TestRedis::private();
        let port = redis.port().expect("its own server");
        assert_eq!(redis.url, format!("redis://127.0.0.1:{port}/"));
        assert_eq!(ping(port), "+PONG\r\n");
        let dir = redis.own.as_ref().map(|s| s.dir.clone()).expect("a data folder");
        assert!(dir.is_dir());
        redis.stop();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "stopped");
        drop(redis);
        assert!(!dir.exists(), "its folder is removed");
    }
}
