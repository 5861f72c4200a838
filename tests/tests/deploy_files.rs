//! The deployment files under `deploy/` stay deployable: the compose file is valid to the compose
//! tool and has the four services, every Kubernetes manifest validates against the Kubernetes
//! schemas offline (and `kubectl kustomize` renders them), the Grafana dashboard charts only
//! metrics the coordinator and the worker export (the learner's are checked in
//! `learner/tests/dashboard_metrics.rs`), and every image the compose file and the manifests name
//! is a target of `deploy/images/Dockerfile`. Both deployments give each party its own token and
//! role: the coordinator's configuration names a `worker` and a `client` credential, each reading
//! its own variable, the operator's is the coordinator's `AGENTMILL_TOKEN`, and the worker holds
//! the worker token; the coordinator's own loader resolves them.
//!
//! Tools: `docker compose` or `docker-compose` (a missing one fails with the fix unless
//! `AGENTMILL_NO_DOCKER=1`), `.venv/bin/kubernetes-validate` (installed by `deploy/setup.sh`;
//! missing fails), `kubectl` (optional: its checks announce that they skip).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use agentmill_coordinator::auth::{Auth, Identity, Role};
use agentmill_coordinator::config::CoordinatorConfig;
use agentmill_coordinator::metrics::Metrics;
use agentmill_testkit::dashboard_check::{check_dashboard, exposition, referenced};
use agentmill_testkit::{read, workspace};
use agentmill_worker::config::WorkerConfig;
use agentmill_worker::metrics::WorkerMetrics;
use serde_json::Value;

/// The Kubernetes release the manifests are validated against.
const K8S_VERSION: &str = "1.33";

/// The four services, by compose service name, Dockerfile target and image.
const SERVICES: [&str; 4] = ["redis", "coordinator", "worker", "learner"];

fn deploy(path: &str) -> PathBuf {
    workspace().join("deploy").join(path)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Every YAML document of a file or a command's output, as JSON values (empty documents dropped).
fn yaml_docs(text: &str, what: &str) -> Vec<Value> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().expect("a document");
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.iter()
        .map(|doc| serde_norway::from_str::<Value>(doc).unwrap_or_else(|e| panic!("{what} is not YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect()).unwrap_or_default()
}

// ---- compose ------------------------------------------------------------------------------

/// `docker compose` (v2 plugin) when it answers, else `docker-compose` (v1); `None` only under
/// `AGENTMILL_NO_DOCKER=1`.
fn compose_tool() -> Option<Vec<&'static str>> {
    let answers = |argv: &[&str]| Command::new(argv[0]).args(&argv[1..]).arg("version").output().is_ok_and(|o| o.status.success());
    if answers(&["docker", "compose"]) {
        return Some(vec!["docker", "compose"]);
    }
    if answers(&["docker-compose"]) {
        return Some(vec!["docker-compose"]);
    }
    if agentmill_testkit::docker::declared_absent() {
        eprintln!("SKIPPED compose checks: AGENTMILL_NO_DOCKER=1 and no compose tool (docker compose / docker-compose)");
        return None;
    }
    panic!(
        "checking deploy/compose.yaml needs a compose tool and neither `docker compose` nor `docker-compose` answers: \
         install one (Debian: apt-get install docker-compose; or Docker's compose plugin), or set AGENTMILL_NO_DOCKER=1 \
         to declare a run without Docker"
    );
}

/// The Redis password the compose checks give (`AGENTMILL_REDIS_PASSWORD` is required).
const COMPOSE_REDIS_PASSWORD: &str = "0123abcdtestpassword";

/// The tokens the compose checks give, one per party (each variable is required).
const OPERATOR_TOKEN: &str = "operator0123abcd";
const WORKER_TOKEN: &str = "worker0123abcd";
const CLIENT_TOKEN: &str = "client0123abcd";

/// Every variable the compose file requires, with the value the checks give it.
const COMPOSE_REQUIRED: [(&str, &str); 4] = [
    ("AGENTMILL_REDIS_PASSWORD", COMPOSE_REDIS_PASSWORD),
    ("AGENTMILL_TOKEN", OPERATOR_TOKEN),
    ("AGENTMILL_WORKER_TOKEN", WORKER_TOKEN),
    ("AGENTMILL_CLIENT_TOKEN", CLIENT_TOKEN),
];

/// `<compose> -f deploy/compose.yaml config` with every variable unset but `set`.
fn compose_command(tool: &[&str], set: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(tool[0]);
    cmd.args(&tool[1..]).arg("-f").arg(deploy("compose.yaml")).arg("config").current_dir(workspace());
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTMILL_") || k == "DOCKER_SOCKET" || k == "COMPOSE_FILE" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in set {
        cmd.env(k, v);
    }
    cmd
}

/// `<compose> -f deploy/compose.yaml config`: the normalized file, every variable at its default
/// but the required ones ([`COMPOSE_REQUIRED`]).
fn compose_config() -> Option<Value> {
    let tool = compose_tool()?;
    let out = run(&mut compose_command(&tool, &COMPOSE_REQUIRED));
    assert!(
        out.status.success(),
        "{} -f deploy/compose.yaml config failed:\n{}{}",
        tool.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut docs = yaml_docs(&text, "compose config output");
    assert_eq!(docs.len(), 1, "one document from compose config:\n{text}");
    docs.pop()
}

#[test]
fn compose_file_is_valid_and_has_the_four_services() {
    let Some(cfg) = compose_config() else { return };
    let services = cfg["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, SERVICES.into_iter().collect(), "compose services");

    for (name, svc) in services {
        let image = svc["image"].as_str().unwrap_or_default();
        assert_eq!(image, format!("agentmill/{name}:latest"), "{name}: the image build.sh tags");
        assert_eq!(svc["pull_policy"], "never", "{name}: images are built offline, never pulled");
    }

    // Redis: AOF on, data on a named volume.
    let redis = &services["redis"];
    let cmd = strs(&redis["command"]);
    let aof = cmd.windows(2).any(|w| w[0] == "--appendonly" && w[1] == "yes");
    assert!(aof, "redis runs with --appendonly yes: {cmd:?}");
    assert!(redis["volumes"].to_string().contains("/data"), "redis keeps /data on a volume: {}", redis["volumes"]);
    assert!(cfg["volumes"].get("redis-data").is_some(), "the redis-data volume is declared");

    // The worker: the Docker socket, the coordinator and Redis by service name, a stable id.
    let worker = &services["worker"];
    assert!(worker["volumes"].to_string().contains("/var/run/docker.sock"), "worker mounts the Docker socket: {}", worker["volumes"]);
    let env = &worker["environment"];
    assert_eq!(env["AGENTMILL_COORDINATOR"], "http://coordinator:50051");
    assert_eq!(env["AGENTMILL_REDIS_URL"], format!("redis://:{COMPOSE_REDIS_PASSWORD}@redis:6379/"));
    assert!(env["AGENTMILL_WORKER_ID"].as_str().is_some_and(|s| !s.is_empty()), "a stable worker id");

    // The learner keeps its checkpoints on a volume.
    let learner = &services["learner"];
    assert!(learner["volumes"].to_string().contains("/var/lib/agentmill/learner"), "learner output on a volume");

    // Metrics and gRPC are published.
    let published = serde_json::to_string(&services.values().map(|s| s["ports"].clone()).collect::<Vec<_>>()).expect("json");
    for port in ["50051", "9464", "9465", "9466", "6379"] {
        assert!(published.contains(port), "port {port} is published: {published}");
    }

    // Every AGENTMILL_* variable given to the coordinator and the worker is one of its top-level
    // (scalar) keys, or for the coordinator a variable a credential of its mounted file reads: a
    // misspelt name would be ignored silently.
    let mut coordinator_keys = env_keys(serde_json::to_value(CoordinatorConfig::default()).expect("config serializes"));
    for c in &load_file(&compose_coordinator_file(&services["coordinator"])).credentials {
        if let Some(var) = &c.token_env {
            coordinator_keys.insert(var.strip_prefix("AGENTMILL_").unwrap_or(var).to_lowercase());
        }
    }
    for (svc, keys) in [("coordinator", coordinator_keys), ("worker", env_keys(serde_json::to_value(WorkerConfig::default()).expect("config serializes")))] {
        for var in services[svc]["environment"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            let key = var.strip_prefix("AGENTMILL_").unwrap_or_else(|| panic!("{svc}: {var} is not an AGENTMILL_ variable")).to_lowercase();
            assert!(keys.contains(&key), "{svc}: {var} names no configuration key (keys: {keys:?})");
        }
    }
}

#[test]
fn compose_redis_requires_a_password_that_every_service_gives() {
    let Some(cfg) = compose_config() else { return };
    let services = cfg["services"].as_object().expect("services");
    let redis = &services["redis"];
    let cmd = strs(&redis["command"]);
    assert!(cmd.windows(2).any(|w| w[0] == "--requirepass" && w[1] == COMPOSE_REDIS_PASSWORD), "redis runs with --requirepass <AGENTMILL_REDIS_PASSWORD>: {cmd:?}");
    assert_eq!(redis["environment"]["REDISCLI_AUTH"], COMPOSE_REDIS_PASSWORD, "the health check's redis-cli authenticates");
    let health = redis["healthcheck"]["test"].to_string();
    assert!(health.contains("PONG"), "the health check looks for PONG (redis-cli exits 0 on NOAUTH too): {health}");
    let want = format!("redis://:{COMPOSE_REDIS_PASSWORD}@redis:6379/");
    for name in ["coordinator", "worker", "learner"] {
        assert_eq!(services[name]["environment"]["AGENTMILL_REDIS_URL"], want, "{name}'s Redis URL carries the password");
    }
    // No password (or no token), no stack: compose refuses, naming the variable.
    let tool = compose_tool().expect("a compose tool");
    for (missing, _) in COMPOSE_REQUIRED {
        let set: Vec<(&str, &str)> = COMPOSE_REQUIRED.into_iter().filter(|(k, _)| *k != missing).collect();
        let out = run(&mut compose_command(&tool, &set));
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "compose config without {missing} is refused:\n{said}");
        assert!(said.contains(missing), "the refusal names {missing}:\n{said}");
    }
}

/// The configuration file the compose coordinator mounts at /etc/agentmill/coordinator.toml
/// (where the image's entrypoint reads it), on this side: it must be the one in deploy/config.
fn compose_coordinator_file(coordinator: &Value) -> PathBuf {
    const TARGET: &str = "/etc/agentmill/coordinator.toml";
    let source = coordinator["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|v| match v.as_str() {
            // v1 writes SOURCE:TARGET[:MODE], v2 the long form.
            Some(short) => {
                let parts: Vec<&str> = short.split(':').collect();
                (parts.get(1) == Some(&TARGET)).then(|| parts[0].to_string())
            }
            None => (v["target"] == TARGET).then(|| v["source"].as_str().unwrap_or_default().to_string()),
        })
        .unwrap_or_else(|| panic!("the compose coordinator mounts a configuration file at {TARGET}: {}", coordinator["volumes"]));
    let want = deploy("config/compose-coordinator.toml");
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(canon(Path::new(&source)), canon(&want), "the compose coordinator's configuration is deploy/config/compose-coordinator.toml");
    want
}

/// A coordinator configuration file alone (no variables), validated.
fn load_file(file: &Path) -> CoordinatorConfig {
    let cfg: CoordinatorConfig =
        agentmill_proto::config::load(Some(file), &[], &Default::default()).unwrap_or_else(|e| panic!("{} loads: {e}", file.display()));
    cfg.validate().unwrap_or_else(|e| panic!("{} validates: {e}", file.display()));
    cfg
}

/// The file's credentials are one `worker` credential that may attach as `worker_id` and one
/// `client` credential, each reading its token from a variable (never written in the file), and
/// `token_of(variable)` gives the party's own token; the legacy token is not in the file either.
fn assert_party_credentials(cfg: &CoordinatorConfig, worker_id: &str, token_of: impl Fn(&str) -> Option<String>, want: [(Role, &str); 2], what: &str) {
    assert_eq!(cfg.token, None, "{what}: the operator's token comes from AGENTMILL_TOKEN, not the file");
    assert_eq!(cfg.credentials.len(), 2, "{what}: a worker and a client credential: {:?}", cfg.credentials);
    for (role, token) in want {
        let found: Vec<_> = cfg.credentials.iter().filter(|c| c.role == Some(role)).collect();
        assert_eq!(found.len(), 1, "{what}: one {role} credential: {:?}", cfg.credentials);
        let c = found[0];
        assert!(c.token.is_none() && c.token_file.is_none(), "{what}: the {role} credential reads its token from a variable: {c:?}");
        let var = c.token_env.as_deref().unwrap_or_else(|| panic!("{what}: the {role} credential has token_env: {c:?}"));
        assert_eq!(token_of(var).as_deref(), Some(token), "{what}: the {role} credential's variable {var} holds the {role} token");
        let identity = Identity { name: "x".into(), role, worker_ids: c.worker_ids.clone() };
        assert_eq!(identity.may_attach_as(worker_id), role == Role::Worker, "{what}: only the worker credential attaches as {worker_id}: {c:?}");
    }
}

#[test]
fn compose_gives_each_party_its_own_token() {
    let Some(cfg) = compose_config() else { return };
    let services = cfg["services"].as_object().expect("services");
    let coordinator = &services["coordinator"];
    let env = &coordinator["environment"];
    assert_eq!(env["AGENTMILL_TOKEN"], OPERATOR_TOKEN, "the coordinator's legacy token (the operator's; its CLI and health check use it) is AGENTMILL_TOKEN");
    let file = compose_coordinator_file(coordinator);
    let worker = &services["worker"];
    let worker_id = worker["environment"]["AGENTMILL_WORKER_ID"].as_str().expect("the worker's id");
    let token_of = |var: &str| env[var].as_str().map(str::to_string);
    assert_party_credentials(&load_file(&file), worker_id, token_of, [(Role::Worker, WORKER_TOKEN), (Role::Client, CLIENT_TOKEN)], "compose");
    assert_eq!(worker["environment"]["AGENTMILL_TOKEN"], WORKER_TOKEN, "the worker holds the worker token, not the operator's");
    // Content travels through the coordinator: the worker mounts no task folder.
    assert!(!worker["volumes"].to_string().contains("/srv/agentmill/tasks"), "the worker needs no tasks mount: {}", worker["volumes"]);
}

/// The scalar top-level keys of a configuration (the ones an `AGENTMILL_<KEY>` variable can set).
fn env_keys(v: Value) -> BTreeSet<String> {
    v.as_object().expect("a table").iter().filter(|(_, v)| !v.is_object()).map(|(k, _)| k.clone()).collect()
}

// ---- Kubernetes -----------------------------------------------------------------------------

fn kubernetes_validate() -> PathBuf {
    let tool = workspace().join(".venv/bin/kubernetes-validate");
    assert!(
        tool.is_file(),
        "{} is missing: run deploy/setup.sh (it installs kubernetes-validate from deploy/requirements.txt into .venv)",
        tool.display()
    );
    tool
}

fn validate_manifests(files: &[PathBuf]) {
    let out = run(Command::new(kubernetes_validate()).args(["-k", K8S_VERSION, "--strict", "--quiet"]).args(files));
    assert!(
        out.status.success(),
        "kubernetes-validate -k {K8S_VERSION} --strict refused a manifest:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The manifests in deploy/k8s (every *.yaml but the kustomization).
fn manifest_files() -> Vec<PathBuf> {
    let dir = deploy("k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/k8s");
    files
}

fn objects(files: &[PathBuf]) -> Vec<Value> {
    files.iter().flat_map(|f| yaml_docs(&read(f), &f.display().to_string())).collect()
}

fn kinds(objs: &[Value]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for o in objs {
        *kinds.entry(o["kind"].as_str().unwrap_or("?").to_string()).or_default() += 1;
    }
    kinds
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/k8s"))
}

fn container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn k8s_manifests_validate_and_hold_the_workloads() {
    let files = manifest_files();
    validate_manifests(&files);
    let objs = objects(&files);
    let kinds = kinds(&objs);
    for (kind, at_least) in [("Namespace", 1), ("StatefulSet", 1), ("Deployment", 2), ("DaemonSet", 1), ("Service", 3), ("PersistentVolumeClaim", 1)] {
        assert!(kinds.get(kind).copied().unwrap_or(0) >= at_least, "deploy/k8s has at least {at_least} {kind}: {kinds:?}");
    }

    // Redis: AOF and a claim per replica.
    let redis = find(&objs, "StatefulSet", "agentmill-redis");
    let cmd = strs(&container(redis)["args"]);
    assert!(cmd.windows(2).any(|w| w[0] == "--appendonly" && w[1] == "yes"), "redis runs with AOF: {cmd:?}");
    assert!(redis["spec"]["volumeClaimTemplates"].as_array().is_some_and(|v| !v.is_empty()), "redis data on a PVC");

    // The coordinator: ready when its gRPC health service says so.
    let coord = find(&objs, "Deployment", "agentmill-coordinator");
    assert_eq!(container(coord)["readinessProbe"]["grpc"]["port"], 50051, "coordinator readiness is a gRPC probe");
    let svc = find(&objs, "Service", "agentmill-coordinator");
    let ports: Vec<i64> = svc["spec"]["ports"].as_array().expect("ports").iter().filter_map(|p| p["port"].as_i64()).collect();
    assert!(ports.contains(&50051) && ports.contains(&9464), "coordinator Service ports: {ports:?}");

    // Workers: on Docker hosts, the node's socket, the node's name as the worker id.
    let ds = find(&objs, "DaemonSet", "agentmill-worker");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["agentmill.dev/docker-host"], "true");
    assert!(
        pod["volumes"].as_array().expect("volumes").iter().any(|v| v["hostPath"]["path"] == "/var/run/docker.sock"),
        "the worker mounts the node's Docker socket"
    );
    let (node_at, node) = env_entry(container(ds), "NODE_NAME", "the worker");
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    let (id_at, id) = env_entry(container(ds), "AGENTMILL_WORKER_ID", "the worker");
    assert_eq!(id["value"], K8S_WORKER_ID, "the worker id is the node's name, prefixed");
    assert!(node_at < id_at, "NODE_NAME is set before AGENTMILL_WORKER_ID uses it");

    // The learner: one GPU, a claim for its runs.
    let learner = find(&objs, "Deployment", "agentmill-learner");
    assert_eq!(container(learner)["resources"]["limits"]["nvidia.com/gpu"], 1, "the learner asks for one GPU");
    let claims: Vec<&Value> = learner["spec"]["template"]["spec"]["volumes"].as_array().expect("volumes").iter().filter(|v| v.get("persistentVolumeClaim").is_some()).collect();
    assert_eq!(claims.len(), 1, "the learner's output on a PVC");
}

/// The container's env entry `name`, and its index.
fn env_entry<'a>(c: &'a Value, name: &str, what: &str) -> (usize, &'a Value) {
    c["env"].as_array().into_iter().flatten().enumerate().find(|(_, e)| e["name"] == name).unwrap_or_else(|| panic!("{what} sets no {name}: {}", c["env"]))
}

/// The DaemonSet's worker id (`$(NODE_NAME)` is the node's name, from the downward API).
const K8S_WORKER_ID: &str = "agentmill-worker-$(NODE_NAME)";

/// The key of the Secret agentmill-tokens the container's variable `name` comes from (required).
fn token_key(c: &Value, name: &str, what: &str) -> Option<String> {
    let e = c["env"].as_array().into_iter().flatten().find(|e| e["name"] == name)?;
    let r = &e["valueFrom"]["secretKeyRef"];
    assert_eq!(r["name"], "agentmill-tokens", "{what}: {name} comes from the Secret agentmill-tokens: {e}");
    assert!(r.get("optional").is_none_or(|o| o == false), "{what}: the token is required: {e}");
    r["key"].as_str().map(str::to_string)
}

#[test]
fn k8s_gives_each_party_its_own_token() {
    let objs = objects(&manifest_files());
    let coordinator = container(find(&objs, "Deployment", "agentmill-coordinator"));
    assert_eq!(token_key(coordinator, "AGENTMILL_TOKEN", "coordinator").as_deref(), Some("operator"), "the coordinator's legacy token is the operator's");
    let cfg = load_file(&deploy("k8s/config/coordinator.toml"));
    let worker_id = K8S_WORKER_ID.replace("$(NODE_NAME)", "node-a");
    // The variables hold the Secret's keys' names: each credential must read its own key.
    let token_of = |var: &str| token_key(coordinator, var, "coordinator");
    assert_party_credentials(&cfg, &worker_id, token_of, [(Role::Worker, "worker"), (Role::Client, "client")], "k8s");
    let worker = container(find(&objs, "DaemonSet", "agentmill-worker"));
    assert_eq!(token_key(worker, "AGENTMILL_TOKEN", "worker").as_deref(), Some("worker"), "the workers hold the worker token, not the operator's");
    let kustomization = read(&deploy("k8s/kustomization.yaml"));
    for key in ["operator", "worker", "client"] {
        assert!(
            kustomization.contains(&format!("--from-literal={key}=")),
            "kustomization.yaml's comments show how to create the Secret agentmill-tokens with the key {key}"
        );
    }
    assert!(kustomization.contains("create secret generic agentmill-tokens"), "kustomization.yaml names the Secret agentmill-tokens");
}

/// `REDIS_PASSWORD` comes from the Secret agentmill-redis (key password), and it is required.
fn assert_password_from_secret(c: &Value, what: &str) -> usize {
    let (at, e) = env_entry(c, "REDIS_PASSWORD", what);
    let r = &e["valueFrom"]["secretKeyRef"];
    assert_eq!((r["name"].as_str(), r["key"].as_str()), (Some("agentmill-redis"), Some("password")), "{what}: REDIS_PASSWORD from the Secret agentmill-redis: {e}");
    assert!(r.get("optional").is_none_or(|o| o == false), "{what}: the Redis password is required: {e}");
    at
}

#[test]
fn k8s_redis_requires_a_password_that_every_service_gives() {
    let objs = objects(&manifest_files());
    let redis = container(find(&objs, "StatefulSet", "agentmill-redis"));
    assert_password_from_secret(redis, "redis");
    let args = strs(&redis["args"]);
    assert!(args.windows(2).any(|w| w[0] == "--requirepass" && w[1] == "$(REDIS_PASSWORD)"), "redis runs with --requirepass $(REDIS_PASSWORD): {args:?}");
    let probe = redis["readinessProbe"]["exec"]["command"].to_string();
    assert!(probe.contains("PONG"), "the readiness probe looks for PONG (redis-cli exits 0 on NOAUTH too): {probe}");
    assert_eq!(env_entry(redis, "REDISCLI_AUTH", "redis").1["valueFrom"]["secretKeyRef"]["name"], "agentmill-redis", "the probe's redis-cli authenticates");
    for (kind, name) in [("Deployment", "agentmill-coordinator"), ("DaemonSet", "agentmill-worker"), ("Deployment", "agentmill-learner")] {
        let c = container(find(&objs, kind, name));
        let password_at = assert_password_from_secret(c, name);
        let (url_at, url) = env_entry(c, "AGENTMILL_REDIS_URL", name);
        assert_eq!(url["value"], "redis://:$(REDIS_PASSWORD)@agentmill-redis:6379/", "{name}'s Redis URL carries the password");
        assert!(password_at < url_at, "{name}: REDIS_PASSWORD is set before AGENTMILL_REDIS_URL uses it (Kubernetes expands only earlier variables)");
    }
}

#[test]
fn kustomize_renders_a_valid_set_with_the_workspace_version() {
    let kubectl = Command::new("kubectl").args(["version", "--client"]).output();
    if !kubectl.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED kustomize render: kubectl is not installed (optional; the manifests were validated one by one)");
        return;
    }
    let out = run(Command::new("kubectl").arg("kustomize").arg(deploy("k8s")));
    assert!(out.status.success(), "kubectl kustomize deploy/k8s failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let objs = yaml_docs(&text, "kubectl kustomize output");
    let dir = tempfile::tempdir().expect("tempdir");
    let rendered = dir.path().join("rendered.yaml");
    std::fs::write(&rendered, &text).expect("write the render");
    validate_manifests(&[rendered]);

    for o in &objs {
        if o["kind"] != "Namespace" {
            assert_eq!(o["metadata"]["namespace"], "agentmill", "{} {} is in the agentmill namespace", o["kind"], o["metadata"]["name"]);
        }
    }
    let cm = objs.iter().find(|o| o["kind"] == "ConfigMap").expect("the generated ConfigMap");
    let cm_name = cm["metadata"]["name"].as_str().expect("name");
    for key in ["coordinator.toml", "worker.toml", "learner.toml"] {
        assert!(cm["data"].get(key).is_some(), "the ConfigMap holds {key}");
    }
    let version = env!("CARGO_PKG_VERSION");
    let mut images = BTreeSet::new();
    for o in &objs {
        let spec = &o["spec"]["template"]["spec"];
        for c in spec["containers"].as_array().into_iter().flatten() {
            let image = c["image"].as_str().expect("image");
            assert!(image.ends_with(&format!(":{version}")), "{image} is tagged with the workspace version {version}");
            images.insert(image.to_string());
        }
        for v in spec["volumes"].as_array().into_iter().flatten() {
            if let Some(name) = v["configMap"]["name"].as_str() {
                assert_eq!(name, cm_name, "volumes name the generated ConfigMap");
            }
        }
    }
    assert_eq!(images.len(), 4, "four images: {images:?}");
}

#[test]
fn k8s_configs_load_and_name_the_services() {
    let dir = deploy("k8s/config");
    let coord: CoordinatorConfig =
        agentmill_proto::config::load(Some(&dir.join("coordinator.toml")), &[], &Default::default()).expect("config/coordinator.toml loads");
    coord.validate().expect("config/coordinator.toml validates");
    let worker: WorkerConfig = agentmill_proto::config::load(Some(&dir.join("worker.toml")), &[], &Default::default()).expect("config/worker.toml loads");
    worker.validate().expect("config/worker.toml validates");

    let objs = objects(&manifest_files());
    let service_port = |name: &str, port: u16| {
        let svc = find(&objs, "Service", name);
        assert!(
            svc["spec"]["ports"].as_array().expect("ports").iter().any(|p| p["port"] == port),
            "Service {name} serves port {port}"
        );
    };
    assert_eq!(coord.listen.port(), 50051);
    assert!(coord.listen.ip().is_unspecified(), "the coordinator listens on every interface in a pod");
    assert!(coord.metrics_listen.is_some_and(|a| a.ip().is_unspecified() && a.port() == 9464));
    assert_eq!(worker.coordinator, "http://agentmill-coordinator:50051");
    service_port("agentmill-coordinator", 50051);
    for url in [&coord.redis_url, &worker.redis_url] {
        assert_eq!(url, "redis://agentmill-redis:6379/");
    }
    service_port("agentmill-redis", 6379);
    assert_eq!(coord.stream, worker.stream);
    assert_eq!(coord.learner_group, worker.learner_group);
    assert!(worker.metrics_listen.is_some_and(|a| a.ip().is_unspecified()), "the worker's metrics are reachable from Prometheus");
}

/// Set in the copy of this test binary that [`deploy_coordinator_configs_resolve_their_tokens`]
/// starts with the token variables set (a test may not set variables in its own process).
const CHILD: &str = "DEPLOY_FILES_CREDENTIALS_CHILD";

/// The coordinator files of compose and Kubernetes, loaded by the coordinator's own loader with
/// the variables set as the deployments set them, give a credential table in which each party's
/// token has its role: a misspelt `token_env` or key fails here, not at a deployment's start.
#[test]
fn deploy_coordinator_configs_resolve_their_tokens() {
    let files = [deploy("config/compose-coordinator.toml"), deploy("k8s/config/coordinator.toml")];
    let worker_ids = ["compose-worker-1", "agentmill-worker-node-a"];
    if std::env::var_os(CHILD).is_some() {
        for (file, worker_id) in files.iter().zip(worker_ids) {
            let what = file.display();
            let cfg = CoordinatorConfig::load(Some(file), &Default::default()).unwrap_or_else(|e| panic!("{what} loads: {e}"));
            assert_eq!(cfg.token.as_deref(), Some(OPERATOR_TOKEN), "{what}: AGENTMILL_TOKEN is the operator's token");
            let auth = match Auth::from_config(cfg.token.as_deref(), &cfg.credentials) {
                Ok(auth) => auth,
                Err(e) => panic!("{what}: the coordinator would refuse to start: {e}"),
            };
            for (token, role) in [(OPERATOR_TOKEN, Role::Operator), (WORKER_TOKEN, Role::Worker), (CLIENT_TOKEN, Role::Client)] {
                let mut req = tonic::Request::new(());
                req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
                let req = auth.check(req).unwrap_or_else(|s| panic!("{what}: the {role} token is refused: {s:?}"));
                let identity = req.extensions().get::<std::sync::Arc<Identity>>().expect("an identity").clone();
                assert_eq!(identity.role, role, "{what}: the {role} token has the {role} role");
                assert_eq!(identity.may_attach_as(worker_id), role != Role::Client, "{what}: the {role} token attaching as {worker_id}");
            }
        }
        return;
    }
    let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
    cmd.args(["deploy_coordinator_configs_resolve_their_tokens", "--exact", "--nocapture", "--test-threads=1"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTMILL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env(CHILD, "1")
        .env("AGENTMILL_TOKEN", OPERATOR_TOKEN)
        .env("AGENTMILL_WORKER_TOKEN", WORKER_TOKEN)
        .env("AGENTMILL_CLIENT_TOKEN", CLIENT_TOKEN);
    let out = run(&mut cmd);
    assert!(out.status.success(), "the coordinator files with the token variables set:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The check bites: without the client's variable, the coordinator would not start.
    let out = run(cmd.env_remove("AGENTMILL_CLIENT_TOKEN"));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && said.contains("AGENTMILL_CLIENT_TOKEN"), "without AGENTMILL_CLIENT_TOKEN the credentials do not resolve:\n{said}");
}

// ---- images -------------------------------------------------------------------------------

/// `FROM ... AS <name>` targets of deploy/images/Dockerfile.
fn dockerfile_targets() -> BTreeSet<String> {
    read(&deploy("images/Dockerfile"))
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [from, _, as_, name] if from.eq_ignore_ascii_case("FROM") && as_.eq_ignore_ascii_case("AS") => Some(name.to_lowercase()),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn every_image_named_is_a_dockerfile_target_build_sh_builds() {
    let targets = dockerfile_targets();
    let build = read(&deploy("images/build.sh"));
    let default_list = build.lines().find(|l| l.contains("services=(redis")).expect("build.sh's default image list");
    for s in SERVICES {
        assert!(targets.contains(s), "deploy/images/Dockerfile has a `{s}` target: {targets:?}");
        assert!(default_list.contains(s), "build.sh builds {s} by default: {default_list}");
    }

    // The compose file's images (its text: this test needs no compose tool).
    let compose = yaml_docs(&read(&deploy("compose.yaml")), "deploy/compose.yaml").pop().expect("compose document");
    let mut named = BTreeSet::new();
    for (svc, def) in compose["services"].as_object().expect("services") {
        let image = def["image"].as_str().unwrap_or_else(|| panic!("compose service {svc} names an image"));
        let repo = image.split(':').next().unwrap_or_default();
        named.insert((format!("compose service {svc}"), repo.to_string()));
    }
    // The manifests' images and the kustomization's tags.
    for o in objects(&manifest_files()) {
        for c in o["spec"]["template"]["spec"]["containers"].as_array().into_iter().flatten() {
            let image = c["image"].as_str().expect("image");
            named.insert((format!("{} {}", o["kind"], o["metadata"]["name"]), image.split(':').next().unwrap_or_default().to_string()));
        }
    }
    assert!(named.len() >= 8, "compose and k8s images: {named:?}");
    for (who, repo) in &named {
        let target = repo.strip_prefix("agentmill/").unwrap_or_else(|| panic!("{who}: {repo} is not an agentmill/* image build.sh makes"));
        assert!(targets.contains(target), "{who}: {repo} has no `{target}` target in deploy/images/Dockerfile ({targets:?})");
    }

    let kustomization = yaml_docs(&read(&deploy("k8s/kustomization.yaml")), "kustomization.yaml").pop().expect("kustomization");
    let tagged: BTreeMap<String, String> = kustomization["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| (i["name"].as_str().unwrap_or_default().to_string(), i["newTag"].as_str().unwrap_or_default().to_string()))
        .collect();
    for s in SERVICES {
        assert_eq!(
            tagged.get(&format!("agentmill/{s}")).map(String::as_str),
            Some(env!("CARGO_PKG_VERSION")),
            "kustomization.yaml tags agentmill/{s} with the workspace version (build.sh's tag)"
        );
    }
}

// ---- the dashboard and the scrape configuration ------------------------------------------------

/// Families without samples (vectors no label set was used on yet) do not render: give every
/// vector one label set so each family, and its labels, show.
fn coordinator_exposition() -> BTreeMap<String, BTreeSet<String>> {
    let m = Metrics::new();
    m.tasks.with_label_values(&["queued"]).set(0);
    m.results.with_label_values(&["RESOLVED", "submitted"]).inc();
    exposition(&m.render())
}

fn worker_exposition() -> BTreeMap<String, BTreeSet<String>> {
    let m = WorkerMetrics::new();
    m.ended.with_label_values(&["submitted"]).inc();
    m.stage_seconds.with_label_values(&["init"]).observe(1.0);
    exposition(&m.render())
}

#[test]
fn dashboard_charts_only_metrics_the_coordinator_and_the_worker_export() {
    let coordinator = coordinator_exposition();
    let worker = worker_exposition();
    let seen_c = check_dashboard("agentmill_coordinator_", &coordinator);
    let seen_w = check_dashboard("agentmill_worker_", &worker);
    // The check itself must bite: a name that is not exported is reported.
    assert!(referenced("rate(agentmill_worker_episodes_totl[5m])", "agentmill_worker_").iter().all(|(n, _)| !worker.contains_key(n)));

    // Families the dashboard leaves out are worth a look, not a failure (a new metric may wait
    // for its panel).
    for (family_prefix, exported, seen) in [("agentmill_coordinator_", &coordinator, &seen_c), ("agentmill_worker_", &worker, &seen_w)] {
        let base = |n: &str| n.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count").to_string();
        let seen_bases: BTreeSet<String> = seen.iter().map(|n| base(n)).collect();
        let missing: BTreeSet<String> = exported.keys().map(|n| base(n)).filter(|n| n.starts_with(family_prefix) && !seen_bases.contains(n)).collect();
        if !missing.is_empty() {
            eprintln!("note: the dashboard has no panel for {missing:?}");
        }
    }
}

#[test]
fn dashboard_is_a_grafana_dashboard_with_a_prometheus_datasource_variable() {
    let d: Value = serde_json::from_str(&read(&deploy("grafana/agentmill.json"))).expect("JSON");
    assert!(d["schemaVersion"].as_i64().is_some_and(|v| v >= 36), "schemaVersion: {}", d["schemaVersion"]);
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let ds = vars.iter().find(|v| v["type"] == "datasource").expect("a datasource variable");
    assert_eq!(ds["query"], "prometheus");
    let var = format!("${{{}}}", ds["name"].as_str().expect("name"));
    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut targets = 0;
    for p in panels {
        assert!(ids.insert(p["id"].as_i64().expect("panel id")), "panel ids are unique: {}", p["id"]);
        let g = &p["gridPos"];
        assert!(g["x"].as_i64().unwrap_or(99) + g["w"].as_i64().unwrap_or(99) <= 24, "{} fits the 24-column grid", p["title"]);
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"].as_str(), Some(var.as_str()), "{} uses the datasource variable", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "{} has a query", p["title"]);
            targets += 1;
        }
    }
    assert!(targets >= 30, "the dashboard charts the three services ({targets} queries)");
}

#[test]
fn prometheus_scrapes_the_ports_the_services_listen_on() {
    let prom = yaml_docs(&read(&deploy("grafana/prometheus.yml")), "deploy/grafana/prometheus.yml").pop().expect("document");
    let jobs: BTreeMap<String, String> = prom["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .map(|j| (j["job_name"].as_str().unwrap_or_default().to_string(), j["static_configs"].to_string()))
        .collect();
    // The services' default metrics ports (deploy/config/*.toml) are the ones compose publishes.
    let coordinator = CoordinatorConfig::default().metrics_listen.expect("coordinator metrics").port();
    let worker = WorkerConfig::default().metrics_listen.expect("worker metrics").port();
    for (job, port) in [("agentmill-coordinator", coordinator), ("agentmill-worker", worker), ("agentmill-learner", 9465)] {
        let targets = jobs.get(job).unwrap_or_else(|| panic!("job {job} in prometheus.yml: {jobs:?}"));
        assert!(targets.contains(&format!(":{port}")), "{job} scrapes port {port}: {targets}");
    }
}
