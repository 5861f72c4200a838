//! The LLM gateway's overhead per model call, against calling the server directly in the same run.
//!
//!     cargo run --release -p agentmill-tests --bin agentmill-bench-gateway -- [--calls N] [--server URL --model NAME]
//!
//! The same Python client (standard library, in the sandbox image) makes N chat completions
//! twice per round, alternating which goes first: directly to the server (a container on the
//! host's network) and from a sandbox with network mode `none` through the bridge and the
//! worker's gateway. Without `--server` the server is a stand-in started here that answers at
//! once, so the ratio is an upper bound and the difference in milliseconds is the gateway's
//! cost; with a real server (`--server http://127.0.0.1:8000/v1 --model m`) the ratio is what a
//! harness sees. It prints the means, the ratio, and the gateway's own time per call.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use agentmill_tests::{SANDBOX_IMAGE, unique};
use agentmill_worker::agent::policy::OpenAiConfig;
use agentmill_worker::harness::bridge::Bridge;
use agentmill_worker::harness::gateway::Gateway;
use agentmill_worker::sandbox::docker::DockerEngine;
use agentmill_worker::sandbox::{ExecRequest, SandboxSpec};
use serde_json::json;

const CLIENT: &str = r#"import json, sys, time, urllib.request
url, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = json.dumps({"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi."}]}).encode()
out = []
for _ in range(n):
    t = time.perf_counter()
    req = urllib.request.Request(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        r.read()
    out.append(time.perf_counter() - t)
print(json.dumps(out))
"#;

/// A server that answers every completion at once with the same small body.
async fn stand_in() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let body = json!({"id": "c", "object": "chat.completion", "model": "stand-in",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1}})
    .to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                        Ok::<_, Infallible>(hyper::Response::builder().header("content-type", "application/json").body(http_body_util::Full::new(bytes::Bytes::from(body))).expect("response"))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/v1")
}

fn mean_ms(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64 * 1000.0
}

fn times(out: &str) -> Vec<f64> {
    serde_json::from_str(out.trim().lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("the client's output is not its timings ({e}): {out}"))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let calls: usize = arg("--calls").map(|c| c.parse().expect("--calls N")).unwrap_or(50);
    let (server, model) = match arg("--server") {
        Some(url) => (url, arg("--model").unwrap_or_default()),
        None => (stand_in().await, "stand-in".to_string()),
    };
    let engine = DockerEngine::connect().await.expect("a Docker engine");
    let worker = unique("bench-gateway");
    let sandbox = engine.start(&SandboxSpec::new(SANDBOX_IMAGE, "/tmp", &worker, "sandbox")).await.expect("start the sandbox (network none)");
    let gateway = Arc::new(Gateway::new(&OpenAiConfig { base_url: server.clone(), model: model.clone(), api_key_env: String::new(), ..OpenAiConfig::default() }, u32::MAX).expect("gateway"));
    let bridge = Bridge::start(&sandbox, gateway.clone()).await.expect("bridge");
    let direct_name = unique("agentmill-bench-gateway-direct");
    let started = std::process::Command::new("docker")
        .args(["run", "-d", "--rm", "--name", &direct_name, "--network", "host", SANDBOX_IMAGE, "sleep", "infinity"])
        .output()
        .expect("docker run");
    assert!(started.status.success(), "start the direct client's container: {}", String::from_utf8_lossy(&started.stderr));

    let run_direct = || {
        let out = std::process::Command::new("docker")
            .args(["exec", &direct_name, "python3", "-c", CLIENT, &server, &model, &calls.to_string()])
            .output()
            .expect("docker exec");
        times(&String::from_utf8_lossy(&out.stdout))
    };
    let via = format!("python3 -c {} {} {} {calls}", agentmill_worker::shell::quote(CLIENT), bridge.base_url(), agentmill_worker::shell::quote(&model));
    let run_gateway = || async {
        let out = sandbox.exec(&ExecRequest::new(via.clone()).timeout(Duration::from_secs(3600)).max_output(1 << 20)).await.expect("exec");
        times(&out.output)
    };
    // Warm both paths, then alternate which goes first.
    let _ = run_direct();
    let _ = run_gateway().await;
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for round in 0..4 {
        if round % 2 == 0 {
            direct.extend(run_direct());
            through.extend(run_gateway().await);
        } else {
            through.extend(run_gateway().await);
            direct.extend(run_direct());
        }
    }
    let own: Vec<f64> = gateway.exchanges().iter().map(|x| x.overhead.as_secs_f64()).collect();
    let (d, g) = (mean_ms(&direct), mean_ms(&through));
    println!("== LLM gateway overhead per model call ({} calls each way, server {server}) ==", direct.len());
    println!("direct to the server:             {d:.2} ms mean");
    println!("through bridge + gateway:         {g:.2} ms mean");
    println!("ratio gateway / direct:           {:.2}x  (+{:.2} ms per call)", g / d, g - d);
    println!("gateway's own time (excl. server): {:.3} ms mean", mean_ms(&own));
    drop(bridge);
    sandbox.remove().await;
    let _ = std::process::Command::new("docker").args(["rm", "-f", &direct_name]).output();
}
