//! The registry figure: pull time through the worker against a plain `docker pull` of the same
//! image from Debian's `docker-registry` on loopback (`agentmill_testkit::registry`).
//!
//! `cargo bench -p agentmill-worker --bench registry_pull` (needs Docker and `docker-registry`,
//! which deploy/setup.sh installs).

use std::process::Command;
use std::time::Instant;

use agentmill_testkit::registry::Registry;
use agentmill_testkit::{run, unique};
use agentmill_worker::config::ImagesConfig;
use agentmill_worker::episode::init::ensure_image;
use agentmill_worker::metrics::PullMetrics;
use agentmill_worker::sandbox::docker::DockerEngine;
use agentmill_worker::sandbox::images::PullPolicy;

/// The figure: seconds to pull one image (a 64 MiB random layer) from the loopback registry
/// through the worker (`ensure_image`) against a plain `docker pull` of the same image, measured
/// alternately (each goes first in half the rounds) in the same run, removed from the host
/// before each. Prints the medians and their ratio; asserts nothing about speed.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !agentmill_testkit::docker::available("registry_pull") {
        return;
    }
    let engine = DockerEngine::connect().await.unwrap_or_else(|e| panic!("the worker's Docker client: {e}"));
    let mut registry = Registry::start();
    let image = format!("{}/agentmill-test/figure:{}", registry.host(), unique("t"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut payload = vec![0u8; 64 << 20];
    payload.iter_mut().for_each(|b| *b = fastrand::u8(..));
    std::fs::write(dir.path().join("payload"), payload).expect("write the payload");
    let tar = dir.path().join("image.tar");
    run(Command::new("tar").arg("-C").arg(dir.path()).arg("-cf").arg(&tar).arg("payload"));
    run(Command::new("docker").arg("import").arg(&tar).arg(&image));
    registry.push_and_remove(&image);
    let policy = PullPolicy::from_config(&ImagesConfig { pull: vec!["127.0.0.1:*".into()], ..Default::default() }).unwrap_or_else(|e| panic!("the pull policy: {e}"));
    let engine = engine.with_pull_policy(policy).with_pull_metrics(PullMetrics::default());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..6 {
        // Alternate which goes first, so neither always follows the other's removal.
        for worker_pull in if round % 2 == 0 { [true, false] } else { [false, true] } {
            let t = Instant::now();
            if worker_pull {
                ensure_image(&engine, &image, None).await.unwrap_or_else(|e| panic!("the worker pulls: {e}"));
                ours.push(t.elapsed().as_secs_f64());
            } else {
                run(Command::new("docker").args(["pull", "-q", &image]));
                theirs.push(t.elapsed().as_secs_f64());
            }
            run(Command::new("docker").args(["rmi", &image]));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut ours), median(&mut theirs));
    println!("pull of a 64 MiB image from the loopback registry, median of 6: worker {a:.3} s, docker pull {b:.3} s, ratio worker/docker {:.2}", a / b);
}
