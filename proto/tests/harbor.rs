//! Harbor task directories and reward files: agentmill reads them as the `harbor` package
//! (0.25.0) does. `tests/reference/harbor_ref.py`, run with `.venv/harbor-0.25.0/bin/python`
//! (deploy/setup.sh makes it; `AGENTMILL_HARBOR_PYTHON` names another interpreter with harbor
//! 0.25.0), reads the same directories and files, and every answer must agree field for field:
//! accepted or refused, the task's name, its instruction, its config as
//! `TaskConfig.model_dump(mode="json")`, the files it uses; the rewards, or the error's class.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentmill_proto::dataset::harbor::{self, HarborErrorKind, RewardRule};
use agentmill_testkit::workspace;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    workspace().join("tests/fixtures/harbor")
}

/// The interpreter with harbor 0.25.0; a missing one fails the test with the fix.
fn harbor_python() -> PathBuf {
    if let Some(p) = std::env::var_os("AGENTMILL_HARBOR_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let p = workspace().join(".venv/harbor-0.25.0/bin/python");
    assert!(
        p.exists(),
        "{} is missing: the Harbor parity tests need the harbor 0.25.0 package (Python 3.12). Run deploy/setup.sh, which makes .venv/harbor-0.25.0, or set AGENTMILL_HARBOR_PYTHON to a python with harbor==0.25.0",
        p.display()
    );
    p
}

fn reference(mode: &str, dirs: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(harbor_python())
        .arg(workspace().join("tests/reference/harbor_ref.py"))
        .arg(mode)
        .args(dirs)
        .output()
        .expect("run tests/reference/harbor_ref.py (see deploy/setup.sh for .venv/harbor-0.25.0)");
    assert!(out.status.success(), "harbor_ref.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Vec<Value> = serde_json::from_slice(&out.stdout).expect("harbor_ref.py writes a JSON list");
    assert_eq!(v.len(), dirs.len());
    v
}

/// agentmill's reading of a task directory, in the reference's shape.
fn ours(dir: &Path) -> Value {
    match harbor::read_task(dir) {
        Ok(t) => json!({
            "ok": true,
            "name": t.name,
            "instruction": t.instruction,
            "config": t.config.to_json(),
            "files": serde_json::to_value(&t.files).expect("files"),
        }),
        Err(e) => json!({"ok": false, "kind": e.kind, "error": e.to_string()}),
    }
}

/// Compares agentmill with the package on every directory; returns agentmill's answers.
fn assert_parity(dirs: &[PathBuf]) -> BTreeMap<String, Value> {
    let refs = reference("tasks", dirs);
    let mut failures = Vec::new();
    let mut out = BTreeMap::new();
    for (dir, r) in dirs.iter().zip(refs) {
        let o = ours(dir);
        let label = dir.file_name().expect("name").to_string_lossy().into_owned();
        if o["ok"] != r["ok"] {
            failures.push(format!("{label}: package ok={} ({}), agentmill ok={} ({})", r["ok"], r["message"], o["ok"], o["error"]));
        } else if r["ok"] == true {
            for field in ["name", "instruction", "config", "files"] {
                if o[field] != r[field] {
                    failures.push(format!("{label}: {field} differs\n  package:   {}\n  agentmill: {}", r[field], o[field]));
                }
            }
        }
        out.insert(label, o);
    }
    assert!(failures.is_empty(), "agentmill and harbor 0.25.0 disagree:\n{}", failures.join("\n"));
    out
}

#[test]
fn the_fixture_tasks_are_read_as_the_package_reads_them() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures()).expect("tests/fixtures/harbor").map(|e| e.expect("entry").path()).collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "fixtures missing: {dirs:?}");
    let ours = assert_parity(&dirs);
    for (name, o) in &ours {
        // The refused fixtures say so in their names; the package agreed above.
        assert_eq!(o["ok"] == true, !name.starts_with("refused-"), "{name}: {o}");
    }
    // What each refusal says: the file or key, and the fix.
    let err = |n: &str| ours[n]["error"].as_str().expect("error").to_string();
    assert!(err("refused-no-test").contains("tests/test.sh: is missing"), "{}", err("refused-no-test"));
    assert!(err("refused-escape").contains("tests/shared: resolves to") && err("refused-escape").contains("stay within the task"), "{}", err("refused-escape"));
    assert_eq!(ours["refused-escape"]["kind"], "escape");
    assert_eq!(ours["refused-bad-toml"]["kind"], "toml");
    assert_eq!(ours["refused-toml-1.1"]["kind"], "toml", "TOML 1.1 syntax is refused as tomllib refuses it");
    assert!(err("refused-hosts").contains("environment.allowed_hosts"), "{}", err("refused-hosts"));
    assert!(err("refused-no-instruction").contains("instruction.md: is missing"));
    // What the accepted ones hold.
    let legacy = &ours["canary-legacy"];
    assert_eq!(legacy["name"], "canary-legacy", "no [task]: the directory names the task");
    assert_eq!(legacy["config"]["schema_version"], "1.0");
    assert_eq!(legacy["config"]["environment"]["memory_mb"], 2048);
    assert_eq!(legacy["config"]["environment"]["storage_mb"], 512);
    assert_eq!(legacy["config"]["environment"]["network_mode"], "no-network");
    assert_eq!(legacy["config"]["environment"]["cpus"], 2);
    assert!(legacy["instruction"].as_str().expect("text").starts_with("Print the numbers 1 to 5"), "{}", legacy["instruction"]);
    assert_eq!(ours["network"]["config"]["environment"]["allowed_hosts"], json!(["pypi.org", "*.pythonhosted.org", "10.0.0.0/8", "2001:db8::1"]));
    assert_eq!(ours["windows"]["files"]["test_script"], "tests/test.bat");
}

/// Crafted directories, made in a temporary folder: the package's coercions, migrations and
/// refusals one by one.
#[test]
fn crafted_configs_and_instructions_are_read_as_the_package_reads_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let configs: &[(&str, &str)] = &[
        ("cpus-bool", "[environment]\ncpus = true\n"),
        ("cpus-string", "[environment]\ncpus = \"2.5\"\n"),
        ("cpus-nan", "[environment]\ncpus = nan\n"),
        ("memory-float", "[environment]\nmemory_mb = 2048.0\n"),
        ("memory-fraction", "[environment]\nmemory_mb = 2048.5\n"),
        ("memory-string", "[environment]\nmemory_mb = \"2048\"\n"),
        ("legacy-memory-int", "[environment]\nmemory = 2048\n"),
        ("legacy-memory-agrees", "[environment]\nmemory = \"1.5g\"\nmemory_mb = 1536\n"),
        ("legacy-memory-conflict", "[environment]\nmemory = \"1G\"\nmemory_mb = 2048\n"),
        ("legacy-memory-k", "[environment]\nmemory = \" 4096k \"\n"),
        ("legacy-memory-unicode-digits", "[environment]\nmemory = \"\u{661}.5g\"\n"),
        ("legacy-storage-bad", "[environment]\nstorage = \"10\"\n"),
        ("user-float", "[agent]\nuser = 1000.0\n"),
        ("user-bool", "[verifier]\nuser = true\n"),
        ("agent-hosts-no-mode", "[agent]\nallowed_hosts = []\n"),
        ("agent-allowlist", "[agent]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"Example.com\"]\n"),
        ("allow-internet-yields", "[environment]\nnetwork_mode = \"public\"\nallow_internet = false\n"),
        ("allow-internet-yes", "[environment]\nallow_internet = \"no\"\n"),
        ("allow-internet-bad", "[environment]\nallow_internet = \"maybe\"\n"),
        ("verifier-shared-env", "[verifier]\nenvironment_mode = \"shared\"\n[verifier.environment]\ncpus = 1\n"),
        ("verifier-separate-default", "[verifier]\nenvironment_mode = \"separate\"\n"),
        ("verifier-env-allow-internet", "[verifier.environment]\nallow_internet = false\ndocker_image = \"v:1\"\n"),
        ("image-int", "[environment]\ndocker_image = 5\n"),
        ("env-int", "[environment]\nenv = { A = 1 }\n"),
        ("name-newline", "[task]\nname = \"org/x\\n\"\n"),
        ("name-dotdot", "[task]\nname = \"org/a..b\"\n"),
        ("name-missing", "[task]\ndescription = \"x\"\n"),
        ("version-empty", "[task]\nname = \"a/b\"\nversion = \"\"\n"),
        ("authors", "[task]\nname = \"a/b\"\nversion = \"2.0\"\nauthors = [{ name = \"n\", email = \"e@x\" }, { name = \"m\" }]\n"),
        ("unknown-keys", "unknown = 1\n[environment]\nfoo = \"bar\"\n[whatever]\nx = 1\n"),
        ("metadata", "[metadata]\nnested = { a = [1, 2.5, \"x\", true] }\nwhen = 2024-01-02\n"),
        ("metadata-datetimes", "[metadata]\na = 1979-05-27T07:32:00Z\nb = 1979-05-27T07:32:00.5-07:00\nc = 1979-05-27T07:32:00.123456789\nd = 07:32:00\ne = 00:32:00.999999\nf = 1979-05-27 07:32:00+00:00\ng = 1979-05-27T07:32:00.0000001+05:30\n"),
        ("metadata-floats", "[metadata]\nf = 1e300\ng = -0.0\nh = inf\ni = 5e-324\nj = 9_223_372_036_854_775_807\n"),
        ("metadata-not-table", "metadata = 5\n"),
        ("tpu", "[environment]\ntpu = { type = \"v6e\", topology = \" 2x4 \" }\ngpus = 2\ngpu_types = [\"H100\"]\n"),
        ("tpu-bad", "[environment]\ntpu = { type = \"v6e\", topology = \"2\" }\n"),
        ("healthcheck", "[environment]\nhealthcheck = { command = \"true\", retries = \"5\", interval_sec = 1 }\n"),
        ("collect", "[[verifier.collect]]\ncommand = \"dump\"\nservice = \" db \"\ntimeout_sec = 5\n"),
        ("collect-bad-service", "[[verifier.collect]]\ncommand = \"dump\"\nservice = \"-db\"\n"),
        ("mcp-http", "[[environment.mcp_servers]]\nname = \"m\"\ntransport = \"http\"\nurl = \"http://x\"\n"),
        ("mcp-headers-ok", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { Authorization = \"Bearer ${T}\", \"X-Trace\" = \"on\", Cookie = \"${A}:${B}\" }\n"),
        ("mcp-headers-literal-credential", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { Authorization = \"Bearer abc\" }\n"),
        ("mcp-headers-default-credential", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { Authorization = \"Bearer ${T:-abc}\" }\n"),
        ("mcp-headers-sensitive-var-default", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { \"X-Id\" = \"${API_KEY:-k}\" }\n"),
        ("mcp-headers-tokens-var-default", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { \"X-Id\" = \"${MAX_TOKENS:-5}\", \"X-Tokens\" = \"many\" }\n"),
        ("mcp-headers-token-name", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { \"X-Token\" = \"plain\" }\n"),
        ("mcp-headers-bad-name", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { \"X Id\" = \"v\" }\n"),
        ("mcp-headers-newline", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { \"X-Id\" = \"a\\nb\" }\n"),
        ("mcp-headers-bad-template", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { \"X-Id\" = \"${1A}\" }\n"),
        ("mcp-headers-nested-template", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { \"X-Id\" = \"${A:-${B}\" }\n"),
        ("mcp-headers-stdio", "[[environment.mcp_servers]]\nname = \"m\"\ntransport = \"stdio\"\ncommand = \"c\"\nheaders = { \"X-Id\" = \"v\" }\n"),
        ("mcp-headers-empty-stdio", "[[environment.mcp_servers]]\nname = \"m\"\ntransport = \"stdio\"\ncommand = \"c\"\nheaders = {}\n"),
        ("mcp-headers-blank-credential", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { \"Set-Cookie\" = \"  \" }\n"),
        ("mcp-headers-scheme-separators", "[[environment.mcp_servers]]\nname = \"m\"\nurl = \"http://x\"\nheaders = { \"X-Auth\" = \" Token ${ID}:-${S:-} \" }\n"),
        ("mcp-stdio-no-command", "[[environment.mcp_servers]]\nname = \"m\"\ntransport = \"stdio\"\n"),
        ("mcp-stdio", "[[environment.mcp_servers]]\nname = \"m\"\ntransport = \"stdio\"\ncommand = \"srv\"\nargs = [\"-v\"]\n"),
        ("steps-empty", "steps = []\nmulti_step_reward_strategy = \"final\"\nsource = \"fixture\"\n"),
        ("strategy-bad", "multi_step_reward_strategy = \"max\"\n"),
        ("schema-and-version", "schema_version = \"1.1\"\nversion = \"9\"\n"),
        ("version-float", "version = 1.0\n"),
        ("os-bad", "[environment]\nos = \"macos\"\n"),
        ("timeouts-strings", "[verifier]\ntimeout_sec = \"90\"\n[agent]\ntimeout_sec = 30\n[environment]\nbuild_timeout_sec = 1e3\n"),
        ("timeout-bad", "[verifier]\ntimeout_sec = \"soon\"\n"),
        ("hosts-mixed", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"*.Example.com\", \"192.168.0.0/16\", \"::1\", \" host-1.internal. \"]\n"),
        ("hosts-ip-forms", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"::ffff:1.2.3.4\", \"::1.2.3.4\", \"1:0:0:1:0:0:0:1\", \"0:0:1::\", \"10.0.0.0/255.0.0.0\", \"10.0.0.0/0.255.255.255\", \"10.0.0.0/0008\", \"0.0.0.0/0.0.0.0\", \"::ffff:1.2.3.4/128\", \"::/0\", \"2001:db8::/32\"]\n"),
        ("hosts-mask-holes", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"10.0.0.0/255.0.255.0\"]\n"),
        ("hosts-prefix-sign", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"10.0.0.0/+8\"]\n"),
        ("hosts-prefix-long", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"10.0.0.0/33\"]\n"),
        ("hosts-v6-host-bits", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"2001:db8::1/32\"]\n"),
        ("hosts-scope", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"fe80::1%eth0\"]\n"),
        ("hosts-url", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"http://x\"]\n"),
        ("hosts-host-bits", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"10.0.0.1/8\"]\n"),
        ("hosts-star", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"*\"]\n"),
        ("hosts-mid-star", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"a*.b\"]\n"),
        ("hosts-star-ip", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"*.1.2.3.4\"]\n"),
        ("hosts-underscore", "[environment]\nnetwork_mode = \"allowlist\"\nallowed_hosts = [\"a_b.com\"]\n"),
        ("hosts-public-empty", "[environment]\nallowed_hosts = []\n"),
        ("section-not-table", "environment = \"x\"\n"),
        ("artifacts", "artifacts = [\"/app/out\", { source = \"/logs/x\", destination = \"logs/\", exclude = [\"*.tmp\"] }, { source = \"/db\", service = \" db \" }, { source = \"rel\", destination = \"\" }]\n"),
        ("artifacts-dotdot", "artifacts = [\"/app/../etc\"]\n"),
        ("artifacts-abs-destination", "artifacts = [{ source = \"/a\", destination = \"/b\" }]\n"),
        ("artifacts-manifest", "artifacts = [{ source = \"/a\", destination = \"manifest.json/\" }]\n"),
        ("artifacts-dot-destination", "artifacts = [{ source = \"/a\", destination = \"./.\" }]\n"),
        ("artifacts-backslash", "artifacts = [{ source = \"/a\", destination = \"a\\\\b\" }]\n"),
        ("artifacts-sidecar-relative", "artifacts = [{ source = \"rel\", service = \"db\" }]\n"),
        ("artifacts-sidecar-drive", "artifacts = [{ source = \"C:\\\\logs\", service = \"db\" }]\n"),
        ("artifacts-int", "artifacts = [1]\n"),
        ("int-strings", "[environment]\nmemory_mb = \" 2_048.00 \"\nstorage_mb = \"+5\"\ngpus = \"-0\"\n"),
        ("int-string-fraction", "[environment]\nmemory_mb = \"2048.5\"\n"),
        ("int-string-exponent", "[environment]\nmemory_mb = \"1e3\"\n"),
        ("int-string-hex", "[environment]\nmemory_mb = \"0x10\"\n"),
        ("int-float-huge", "[environment]\nmemory_mb = 1e20\n"),
        ("float-strings", "[verifier]\ntimeout_sec = \" 1000 \"\n[agent]\ntimeout_sec = \".5\"\n[environment]\ncpus = \"1e1\"\nbuild_timeout_sec = \"inf\"\n"),
        ("float-string-spaced-underscore", "[verifier]\ntimeout_sec = \" 1_000\"\n"),
        ("float-string-underscores", "[verifier]\ntimeout_sec = \"1_.5\"\n[agent]\ntimeout_sec = \"1e1_0\"\n[environment]\nbuild_timeout_sec = \"-Infinity\"\n"),
        ("float-string-double-underscore", "[verifier]\ntimeout_sec = \"1__0\"\n"),
        ("int-string-underscore-dot", "[environment]\nmemory_mb = \"1_.0\"\n"),
        ("float-string-hex", "[verifier]\ntimeout_sec = \"0x10\"\n"),
        ("bool-strings", "[environment]\nallow_internet = \"On\"\n"),
        ("bool-string-spaced", "[environment]\nallow_internet = \" yes\"\n"),
        ("bool-int-2", "[environment]\nallow_internet = 2\n"),
        ("user-string-digits", "[agent]\nuser = \"1000\"\n"),
        ("user-fraction", "[agent]\nuser = 1.5\n"),
        ("toml-bom", "\u{feff}[metadata]\na = 1\n"),
        ("toml-del-in-comment", "# a \u{7f} b\n[metadata]\na = 1\n"),
        ("toml-lone-cr", "[metadata]\ra = 1\r"),
        ("toml-tab-in-string", "[metadata]\na = \"x\ty\"\n"),
        ("toml-control-in-string", "[metadata]\na = \"x\u{1}y\"\n"),
        ("toml-unicode-bare-key", "[metadata]\nké = 1\n"),
        ("toml-escape-e", "[metadata]\na = \"\\e\"\n"),
        ("toml-escape-x", "[metadata]\na = \"\\x41\"\n"),
        ("toml-time-no-seconds", "[metadata]\na = 07:32\n"),
        ("toml-table-twice", "[metadata]\na = 1\n[metadata]\nb = 2\n"),
        ("toml-inline-extended", "[metadata]\na = { x = 1 }\n[metadata.a.y]\nz = 1\n"),
        ("toml-integers", "[metadata]\na = 0o17\nb = 0b11\nc = 0xDEAD_BEEF\nd = +0\ne = -0\nf = 1e06\ng = +inf\nh = -nan\n"),
        ("toml-double-underscore", "[metadata]\na = 1__2\n"),
        ("toml-leading-zero", "[metadata]\na = 01\n"),
        ("toml-dot-float", "[metadata]\na = .5\n"),
        ("toml-mixed-array", "[metadata]\na = [1, \"x\", [2], { b = 3 }]\n"),
        ("toml-multiline", "[metadata]\na = \"\"\"\\\n  one \\\n  two\"\"\"\nb = '''\nraw\\n'''\n"),
        ("toml-empty", ""),
        ("toml-hour-24", "[metadata]\na = 24:00:00\n"),
        ("toml-leap-second-datetime", "[metadata]\na = [1979-05-27T23:59:60Z]\n"),
        ("toml-feb-30", "[metadata]\na = 1979-02-30\n"),
        ("toml-leap-second", "[metadata]\na = 23:59:60\n"),
        ("toml-lowercase-tz", "[metadata]\na = 1979-05-27t07:32:00z\n"),
        ("toml-dotted-keys", "metadata.a.b = 1\nenvironment.cpus = 2\n"),
        ("toml-dotted-after-table", "[environment]\nx.y = 1\n[environment.x]\nz = 2\n"),
        ("toml-array-of-tables-conflict", "[metadata]\na = [1]\n[[metadata.a]]\nb = 1\n"),
        ("toml-trailing-comma-array", "[metadata]\na = [1, 2, ]\n"),
        ("toml-trailing-comma-inline", "[metadata]\na = { b = 1, }\n"),
        ("toml-quoted-keys", "[metadata]\n\"a b\" = 1\n'c.d' = 2\n\"\" = 3\n"),
        ("toml-surrogate-escape", "[metadata]\na = \"\\uD800\"\n"),
        ("toml-big-unicode-escape", "[metadata]\na = \"\\U0001F600\"\n"),
        ("crlf", "[task]\r\nname = \"a/crlf\"\r\n[environment]\r\nworkdir = \"/w\"\r\n"),
    ];
    let instructions: &[(&str, &str)] = &[
        ("canary-only", "# canary\n"),
        ("canary-crlf", "<!-- Canary -->\r\n\r\nText\r\nmore\r\n"),
        ("canary-indented", "   # CANARY x   \n  \t\nText"),
        ("comment-not-canary", "<!-- a note -->\nText"),
        ("canary-then-comment", "# canary\n<!-- not one -->\nText"),
        ("canary-unclosed", "<!-- canary\nText"),
        ("canary-separator-spaces", "\u{1c}# canary\u{1f}\n\u{a0}\nText"),
        ("empty", ""),
        ("blank-only", "\n\n"),
        ("lone-cr", "# canary\rText"),
        ("unicode", "# cañary\nÉtape: faire ça.\n"),
    ];
    let mut dirs = Vec::new();
    let write = |name: &str, toml: &str, instruction: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(d.join("tests")).expect("mkdir");
        std::fs::write(d.join("task.toml"), toml).expect("write");
        std::fs::write(d.join("instruction.md"), instruction).expect("write");
        std::fs::write(d.join("tests/test.sh"), "#!/bin/sh\necho 1 > /logs/verifier/reward.txt\n").expect("write");
        d
    };
    for (name, toml) in configs {
        dirs.push(write(&format!("config-{name}"), toml, "Do it.\n"));
    }
    for (name, text) in instructions {
        dirs.push(write(&format!("instruction-{name}"), "", text));
    }
    // Paths: a tests/ link inside the task is fine, a dangling link out of it is not, nor a loop,
    // nor a solution/ file linking out; instruction.md may be a link (the package reads through it).
    let d = write("paths-inner-link", "", "x");
    std::fs::create_dir_all(d.join("data")).expect("mkdir");
    std::os::unix::fs::symlink("../data", d.join("tests/data")).expect("link");
    dirs.push(d);
    let d = write("paths-dangling-out", "", "x");
    std::os::unix::fs::symlink("/nonexistent/agentmill", d.join("tests/gone")).expect("link");
    dirs.push(d);
    let d = write("paths-loop", "", "x");
    std::os::unix::fs::symlink("..", d.join("tests/up")).expect("link");
    dirs.push(d);
    let d = write("paths-solution-out", "", "x");
    std::fs::create_dir_all(d.join("solution")).expect("mkdir");
    std::os::unix::fs::symlink("/etc/hostname", d.join("solution/solve.sh")).expect("link");
    dirs.push(d);
    let d = write("paths-test-dir", "", "x");
    std::fs::remove_file(d.join("tests/test.sh")).expect("rm");
    std::fs::create_dir_all(d.join("tests/test.sh")).expect("a directory named test.sh");
    dirs.push(d);
    let d = write("paths-no-toml", "", "x");
    std::fs::remove_file(d.join("task.toml")).expect("rm");
    dirs.push(d);
    let d = write("paths-not-utf8", "", "x");
    std::fs::write(d.join("instruction.md"), b"\xff\xfe").expect("write");
    dirs.push(d);
    let out = assert_parity(&dirs);
    // A few answers spelled out, so a change in both readers does not pass unseen.
    assert_eq!(out["config-cpus-bool"]["config"]["environment"]["cpus"], 1);
    assert_eq!(out["config-legacy-memory-int"]["config"]["environment"]["memory_mb"], Value::Null);
    assert_eq!(out["config-hosts-mixed"]["config"]["environment"]["allowed_hosts"], json!(["*.example.com", "192.168.0.0/16", "::1", "host-1.internal"]));
    assert_eq!(out["instruction-canary-crlf"]["instruction"], "Text\nmore\n");
    assert_eq!(out["paths-loop"]["kind"], "escape");
    let accepted = out.values().filter(|o| o["ok"] == true).count();
    assert!(accepted > 20 && accepted < out.len() - 15, "a mix of accepted and refused cases: {accepted} of {}", out.len());
}

/// Multi-step tasks: read by the package, refused by agentmill (which runs one step a task).
#[test]
fn multi_step_tasks_are_refused_naming_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("steps");
    std::fs::create_dir_all(d.join("steps/one")).expect("mkdir");
    std::fs::write(d.join("task.toml"), "[[steps]]\nname = \"one\"\n").expect("write");
    std::fs::write(d.join("steps/one/instruction.md"), "x").expect("write");
    std::fs::create_dir_all(d.join("tests")).expect("mkdir");
    std::fs::write(d.join("tests/test.sh"), "x").expect("write");
    assert_eq!(reference("tasks", std::slice::from_ref(&d))[0]["ok"], true, "the package reads it");
    let e = harbor::read_task(&d).expect_err("refused");
    assert_eq!(e.kind, HarborErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("multi-step") && e.to_string().contains("not supported by agentmill"), "{e}");
}

/// `.harborignore` files under `tests/` and `solution/`: what they exclude is not checked (a link
/// out of the task may be excluded), what the run needs must not be excluded, and a bad pattern
/// or an ignore file linking out refuses the task — as the package decides, case by case.
#[test]
fn harborignore_files_are_read_as_the_package_reads_them() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dirs = Vec::new();
    let mut case = |name: &str, files: &[(&str, &str)], links: &[(&str, &str)]| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(d.join("tests")).expect("mkdir");
        std::fs::write(d.join("task.toml"), "").expect("write");
        std::fs::write(d.join("instruction.md"), "x").expect("write");
        std::fs::write(d.join("tests/test.sh"), "x").expect("write");
        for (path, text) in files {
            let p = d.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        for (path, target) in links {
            let p = d.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            symlink(target, p).expect("link");
        }
        dirs.push(d);
    };
    case("excluded-link-out", &[("tests/.harborignore", "*.bak\n")], &[("tests/x.bak", "/etc/hostname")]);
    case("not-excluded-link-out", &[("tests/.harborignore", "*.bak\n")], &[("tests/x.txt", "/etc/hostname")]);
    case("test-excluded", &[("tests/.harborignore", "test.sh\n")], &[]);
    case("test-reincluded-then-excluded", &[("tests/.harborignore", "!test.sh\n*\n")], &[]);
    case("all-but-test", &[("tests/.harborignore", "*\n!test.sh\n")], &[("tests/out", "/etc")]);
    case("nested-ignore", &[("tests/sub/.harborignore", "link\n")], &[("tests/sub/link", "/etc/hostname")]);
    case("dir-pattern", &[("tests/.harborignore", "sub/\n")], &[("tests/sub/link", "/etc/hostname")]);
    case("dir-pattern-file", &[("tests/.harborignore", "sub/\n")], &[("tests/sub", "/etc/hostname")]);
    case("anchored-dir-negated-inside", &[("tests/.harborignore", "/data/**\n!/data/keep\n")], &[("tests/data/keep", "/etc/hostname")]);
    case("double-star", &[("tests/.harborignore", "**/deep\n")], &[("tests/a/b/deep", "/etc/hostname")]);
    case("class-and-question", &[("tests/.harborignore", "[ab].lnk\n?.out\n")], &[("tests/b.lnk", "/etc/hostname"), ("tests/c.out", "/etc/hostname")]);
    case("class-negated", &[("tests/.harborignore", "[!a].lnk\n")], &[("tests/a.lnk", "/etc/hostname")]);
    case("unclosed-class-discarded", &[("tests/.harborignore", "[ab.lnk\n*.lnk\n")], &[("tests/a.lnk", "/etc/hostname")]);
    case("trailing-backslash", &[("tests/.harborignore", "a\\\n")], &[]);
    case("escaped-space", &[("tests/.harborignore", "a\\ \n")], &[("tests/a ", "/etc/hostname")]);
    case("comment-and-blank", &[("tests/.harborignore", "# *.lnk\n\n   \n")], &[("tests/a.lnk", "/etc/hostname")]);
    case("ignore-file-links-out", &[], &[("tests/.harborignore", "/etc/hostname")]);
    case("ignore-file-is-a-dir", &[("tests/.harborignore/x", "y")], &[]);
    case("solution-ignored", &[("solution/.harborignore", "*\n")], &[("solution/out", "/etc")]);
    case("root-ignore-not-read", &[(".harborignore", "tests/out\n")], &[("tests/out", "/etc")]);
    case("link-to-excluded-file", &[("tests/.harborignore", "secret\n"), ("tests/secret", "s")], &[("tests/alias", "secret")]);
    case("crlf-lines", &[("tests/.harborignore", "*.bak\r\n*.lnk\r\n")], &[("tests/a.lnk", "/etc/hostname")]);
    case("bang-only", &[("tests/.harborignore", "!\n")], &[]);
    case("slash-only", &[("tests/.harborignore", "/\n")], &[("tests/a", "/etc")]);
    case("star-star-only", &[("tests/.harborignore", "**\n!test.sh\n")], &[("tests/a", "/etc")]);
    let out = assert_parity(&dirs);
    assert_eq!(out["excluded-link-out"]["ok"], true, "an excluded link out of the task is not checked");
    assert_eq!(out["not-excluded-link-out"]["kind"], "escape");
    assert!(out["test-excluded"]["error"].as_str().expect("error").contains("excluded by .harborignore"), "{}", out["test-excluded"]);
    let accepted = out.values().filter(|o| o["ok"] == true).count();
    assert!((10..out.len() - 8).contains(&accepted), "a mix of accepted and refused cases: {accepted} of {}", out.len());
}

/// A case name, `reward.json`'s bytes and `reward.txt`'s (`None`: no such file).
type RewardCase = (&'static str, Option<&'static [u8]>, Option<&'static [u8]>);

/// `[environment].env` templates resolved as the package resolves them from the host's
/// environment (the worker's, at run time).
#[test]
fn env_templates_resolve_as_the_package_resolves_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let environ = json!({"HOME_DIR": "/h", "EMPTY": "", "A": "a"});
    let cases = [
        json!({"PLAIN": "x", "T": "${HOME_DIR}", "D": "${MISSING:-dflt}", "SET": "${A:-dflt}", "E": "${EMPTY:-d}"}),
        json!({"M": "${MISSING}"}),
        json!({"PART": "pre-${A}", "EMB": "${A}${A}", "COLON": "${A:B}", "NL": "${MISSING:-a
b}", "DASH": "${MISSING:-}"}),
        json!({"SPACE": "${ A }", "NAME-DASH": "${A-B:-x}", "BRACE": "${MISSING:-}}"}),
    ];
    let mut files = Vec::new();
    for (i, env) in cases.iter().enumerate() {
        let f = tmp.path().join(format!("env-{i}.json"));
        std::fs::write(&f, json!({"env": env, "environ": environ}).to_string()).expect("write");
        files.push(f);
    }
    let refs = reference("env", &files);
    let lookup = |k: &str| environ.get(k).and_then(Value::as_str).map(str::to_string);
    for (env, r) in cases.iter().zip(refs) {
        let env: BTreeMap<String, String> = serde_json::from_value(env.clone()).expect("map");
        let ours = match harbor::resolve_env(&env, lookup) {
            Ok(m) => json!({"ok": true, "env": m}),
            Err(e) => {
                assert!(e.contains("is not set on the worker"), "{e}");
                json!({"ok": false})
            }
        };
        assert_eq!(ours, r, "{env:?}");
    }
}

/// The one known difference: Python reads integers of any size, TOML (and agentmill) 64 bits.
#[test]
fn integers_past_64_bits_are_the_known_difference() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("big-int");
    std::fs::create_dir_all(d.join("tests")).expect("mkdir");
    std::fs::write(d.join("task.toml"), "[metadata]\na = 9223372036854775808\n").expect("write");
    std::fs::write(d.join("instruction.md"), "x").expect("write");
    std::fs::write(d.join("tests/test.sh"), "x").expect("write");
    assert_eq!(reference("tasks", std::slice::from_ref(&d))[0]["ok"], true, "the package reads it");
    let e = harbor::read_task(&d).expect_err("agentmill refuses it");
    assert!(e.kind == HarborErrorKind::Toml && e.to_string().contains("number too large"), "{e}");
}

/// Reward files, crafted: the package's verifier and [`harbor::read_rewards`] agree on each.
#[test]
fn reward_files_are_read_as_the_verifier_reads_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases: &[RewardCase] = &[
        ("json-one", Some(br#"{"reward": 1}"#), None),
        ("json-several", Some(br#"{"correct": 1, "style": 0.75, "lines": 4}"#), None),
        ("json-empty-object", Some(b"{}"), None),
        ("json-preferred", Some(br#"{"reward": 0.5}"#), Some(b"1")),
        ("json-empty-file", Some(b""), Some(b"1")),
        ("json-bare-number", Some(b"5"), None),
        ("json-bare-true", Some(b"true"), None),
        ("json-list", Some(b"[1]"), None),
        ("json-null", Some(b"null"), None),
        ("json-string", Some(br#""1""#), None),
        ("json-string-value", Some(br#"{"a": "1"}"#), None),
        ("json-nan", Some(br#"{"a": NaN}"#), None),
        ("json-infinity", Some(br#"{"a": -Infinity}"#), None),
        ("json-overflow", Some(br#"{"a": 1e400}"#), None),
        ("json-bool-value", Some(br#"{"a": true, "b": false}"#), None),
        ("json-null-value", Some(br#"{"a": null}"#), None),
        ("json-nested", Some(br#"{"a": {"b": 1}}"#), None),
        ("json-duplicate", Some(br#"{"a": 1, "a": 2}"#), None),
        ("json-broken", Some(b"{bad"), None),
        ("json-bom", Some(b"\xef\xbb\xbf{\"a\": 1}"), None),
        ("json-whitespace", Some(b" \n{\"a\": -0.0}\n\n"), None),
        ("json-big-int", Some(br#"{"a": 123456789012345678901234567890}"#), None),
        ("json-not-utf8", Some(b"{\"a\": 1, \"\xff\": 2}"), None),
        ("txt-one", None, Some(b"1")),
        ("txt-spaced", None, Some(b" 0.5 \n")),
        ("txt-underscore", None, Some(b"1_000")),
        ("txt-double-underscore", None, Some(b"1__0")),
        ("txt-nan", None, Some(b"nan")),
        ("txt-inf", None, Some(b"inf")),
        ("txt-neg-infinity", None, Some(b"-Infinity")),
        ("txt-overflow", None, Some(b"1e309")),
        ("txt-empty", None, Some(b"")),
        ("txt-newline", None, Some(b"\n")),
        ("txt-word", None, Some(b"abc")),
        ("txt-hex", None, Some(b"0x1")),
        ("txt-two-dots", None, Some(b"1.5.2")),
        ("txt-plus-dot", None, Some(b"+.5")),
        ("txt-trailing-dot", None, Some(b"5.")),
        ("txt-exponent", None, Some(b"2.5E-1")),
        ("txt-separators", None, Some(b"\x1c1\x1f")),
        ("txt-two-numbers", None, Some(b"1\n2\n")),
        ("txt-not-utf8", None, Some(b"\xff")),
        ("txt-arabic-indic", None, Some("\u{661}\u{662}.\u{665}".as_bytes())),
        ("txt-fullwidth-mixed", None, Some("1\u{ff10}_\u{ff15}\u{3000}".as_bytes())),
        ("txt-math-digits", None, Some("\u{1d7ce}.\u{1d7d3}".as_bytes())),
        ("txt-superscript", None, Some("\u{b2}".as_bytes())),
        ("txt-nbsp", None, Some("\u{a0}0.5\u{2028}".as_bytes())),
        ("none", None, None),
    ];
    let mut dirs = Vec::new();
    for (name, j, t) in cases {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        if let Some(j) = j {
            std::fs::write(d.join("reward.json"), j).expect("write");
        }
        if let Some(t) = t {
            std::fs::write(d.join("reward.txt"), t).expect("write");
        }
        dirs.push(d);
    }
    let refs = reference("rewards", &dirs);
    let mut failures = Vec::new();
    for ((name, j, t), r) in cases.iter().zip(refs) {
        let o = match harbor::read_rewards(*j, *t) {
            Ok(m) => json!({"ok": true, "rewards": m}),
            Err(e) => json!({"ok": false, "error": e.class()}),
        };
        if o != r {
            failures.push(format!("{name}: package {r}, agentmill {o}"));
        }
    }
    assert!(failures.is_empty(), "agentmill and harbor 0.25.0's verifier disagree:\n{}", failures.join("\n"));
}

#[test]
fn the_reward_rule_gates_every_named_reward() {
    let rewards = |pairs: &[(&str, f64)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>();
    let default = RewardRule::default();
    assert!(default.resolved(&rewards(&[("reward", 1.0)])));
    assert!(!default.resolved(&rewards(&[("reward", 0.99)])));
    assert!(!default.resolved(&rewards(&[("correct", 1.0)])), "a missing reward counts as -inf");
    let task = harbor::read_task(&fixtures().join("multi-reward")).expect("fixture");
    let rule = RewardRule::from_metadata(&task.config.metadata).expect("rule");
    assert!(rule.resolved(&rewards(&[("correct", 1.0), ("style", 0.5), ("lines", 9.0)])));
    assert!(!rule.resolved(&rewards(&[("correct", 1.0), ("style", 0.25)])));
    assert!(!rule.resolved(&rewards(&[("style", 1.0)])));
    let one = serde_json::from_value(json!({"min_reward": 0.5})).expect("map");
    assert!(RewardRule::from_metadata(&one).expect("rule").resolved(&rewards(&[("reward", 0.5)])));
    // The record's scalar and resolution, from what the verifier wrote.
    let g = default.grade(harbor::read_rewards(None, Some(b"0.5\n")).expect("txt"));
    assert!(!g.resolved && g.reward == 0.5, "{g:?}");
    let g = default.grade(harbor::read_rewards(Some(br#"{"reward": 1, "tests": 0.25}"#), Some(b"0")).expect("json"));
    assert!(g.resolved && g.reward == 1.0 && g.rewards["tests"] == 0.25, "{g:?}");
    let g = rule.grade(harbor::read_rewards(Some(br#"{"correct": 1, "style": 0.75, "lines": 4}"#), None).expect("json"));
    assert!(g.resolved && g.reward == 1.0, "several rewards without `reward`: 1.0 when resolved ({g:?})");
    let g = rule.grade(harbor::read_rewards(Some(br#"{"correct": 0, "style": 1}"#), None).expect("json"));
    assert!(!g.resolved && g.reward == 0.0, "{g:?}");
    let bad = serde_json::from_value(json!({"min_reward": "high"})).expect("map");
    assert!(RewardRule::from_metadata(&bad).expect_err("refused").contains("[metadata].min_reward"));
}

fn row_of(fixture: &str) -> Result<agentmill_proto::Task, String> {
    let task = harbor::read_task(&fixtures().join(fixture)).map_err(|e| e.to_string())?;
    let row = harbor::task_row(&task).map_err(|e| e.to_string())?;
    agentmill_proto::Task::from_json_object(row).map_err(|e| format!("{e:?}"))
}

#[test]
fn a_harbor_task_becomes_an_agentmill_row_of_family_harbor() {
    use agentmill_proto::dataset::Family;
    let t = row_of("pass-oracle").expect("pass-oracle maps");
    assert_eq!(t.family, Family::Harbor);
    assert_eq!(t.instance_id, "agentmill/pass-oracle");
    assert_eq!(t.problem_statement, "Write the sum of 19 and 23, as a decimal number, to `/app/answer.txt`.\n");
    assert_eq!(t.image, "", "a Dockerfile task's image is built, not named");
    assert_eq!(t.workdir, "/app");
    assert_eq!(t.limits.cpus, Some(1.0));
    assert_eq!(t.limits.memory, Some(1024 * 1024 * 1024));
    assert_eq!(t.limits.disk, Some(2048 * 1024 * 1024));
    assert_eq!(t.limits.episode_timeout_s, Some(300));
    assert_eq!(t.limits.test_timeout_s, Some(120));
    assert!(!t.allow_network, "network_mode = no-network");
    assert!(t.fail_to_pass.is_empty() && t.pass_to_pass.is_empty());
    let h = t.harbor.as_ref().expect("harbor spec");
    assert_eq!(h.dockerfile.as_deref(), Some("environment/Dockerfile"));
    assert_eq!(h.docker_image, None);
    assert_eq!(h.build_timeout_s, 300.0);
    assert_eq!(h.test_script, "tests/test.sh");
    assert_eq!(h.solve_script.as_deref(), Some("solution/solve.sh"));
    assert_eq!(h.min_reward, BTreeMap::from([("reward".to_string(), 1.0)]));
    assert_eq!(h.network_mode, "no-network");

    // Several rewards, a prebuilt image, users, env templates kept for the worker to resolve.
    let t = row_of("multi-reward").expect("multi-reward maps");
    let h = t.harbor.as_ref().expect("harbor spec");
    assert_eq!(t.image, "agentmill/sandbox-python:bookworm");
    assert_eq!(h.docker_image.as_deref(), Some("agentmill/sandbox-python:bookworm"));
    assert_eq!(h.dockerfile, None);
    assert_eq!(h.min_reward, BTreeMap::from([("correct".to_string(), 1.0), ("style".to_string(), 0.5)]));
    assert_eq!(h.agent_user.as_deref(), Some("1000"));
    assert_eq!(h.verifier_user.as_deref(), Some("root"));
    assert_eq!(h.env.get("GREETING").map(String::as_str), Some("${GREETING:-hello}"));
    assert_eq!(h.verifier_env.get("STRICT").map(String::as_str), Some("1"));
    assert_eq!(h.solution_env.get("ORACLE").map(String::as_str), Some("1"));
    assert_eq!(t.limits.cpus, Some(0.5));
    assert_eq!(t.limits.test_timeout_s, Some(600), "the package's default verifier timeout");
    assert_eq!(t.limits.episode_timeout_s, None, "no agent timeout: the worker's default");
    assert_eq!(h.workdir, None);
    assert_eq!(t.workdir, "/", "no workdir: the image's WORKDIR (harbor.workdir is None)");

    // Network: carried as a request (the worker decides), with the normalised allowlist.
    let t = row_of("network").expect("network maps");
    assert!(t.allow_network);
    let h = t.harbor.as_ref().expect("harbor spec");
    assert_eq!(h.network_mode, "allowlist");
    assert_eq!(h.allowed_hosts, ["pypi.org", "*.pythonhosted.org", "10.0.0.0/8", "2001:db8::1"]);
    assert_eq!(h.solve_script, None);

    // Legacy keys migrated; the directory names a task without [task].
    let t = row_of("canary-legacy").expect("canary-legacy maps");
    assert_eq!(t.instance_id, "canary-legacy");
    assert_eq!(t.limits.memory, Some(2048 * 1024 * 1024));
    assert_eq!(t.limits.disk, Some(512 * 1024 * 1024));
    assert_eq!(t.limits.cpus, Some(2.0));
    assert!(!t.allow_network, "allow_internet = false");
    assert_eq!(t.harbor.as_ref().expect("spec").build_timeout_s, 900.0);
    assert!(t.problem_statement.starts_with("Print the numbers 1 to 5"));

    // Read by the package, refused by agentmill naming why.
    let e = row_of("windows").expect_err("windows refused");
    assert!(e.contains("environment.os") && e.contains("Windows tasks are not supported"), "{e}");
    let e = row_of("separate-verifier").expect_err("separate verifier refused");
    assert!(e.contains("separate verifier container is not supported"), "{e}");
}

#[test]
fn a_harbor_row_round_trips_through_json_and_the_typed_spec() {
    use agentmill_proto::{Task, v1};
    for fixture in ["pass-oracle", "fail-oracle", "multi-reward", "network", "canary-legacy"] {
        let t = row_of(fixture).expect("maps");
        let json = serde_json::to_string(&t).expect("json");
        assert_eq!(Task::from_json_row(&json).expect("json row parses"), t, "{fixture}: JSON");
        let spec = v1::TaskSpec::from(&t);
        assert_eq!(spec.family, "harbor");
        assert!(spec.harbor.is_some());
        assert_eq!(Task::try_from(&spec).expect("spec parses"), t, "{fixture}: TaskSpec");
    }
}

#[test]
fn a_harbor_row_without_its_spec_is_refused_and_no_log_grading_is_planned() {
    use agentmill_proto::Task;
    use agentmill_proto::dataset::{ScriptOptions, eval_plan};
    let errs = Task::from_json_object(json!({"instance_id": "a/b", "family": "harbor"}).as_object().cloned().expect("object")).expect_err("refused");
    assert!(errs.iter().any(|e| e.field == "harbor" && e.reason.contains("agentmill submit --harbor")), "{errs:?}");
    let mut row = serde_json::to_value(row_of("pass-oracle").expect("maps")).expect("json");
    row["harbor"]["dockerfile"] = Value::Null;
    let errs = Task::from_json_object(row.as_object().cloned().expect("object")).expect_err("refused");
    assert!(errs.iter().any(|e| e.field == "harbor" && e.reason.contains("neither docker_image nor dockerfile")), "{errs:?}");
    let t = row_of("pass-oracle").expect("maps");
    let e = eval_plan(&t, &ScriptOptions::default()).expect_err("no log grading for Harbor");
    assert!(e.contains("Harbor task") && e.contains("reward file"), "{e}");
}

/// `harbor run --path`: a task directory, or a folder of them (invalid ones skipped by Harbor,
/// reported by agentmill).
#[test]
fn task_folders_are_picked_as_harbor_run_picks_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A task with neither an image nor environment/: Harbor does not take it.
    let bare = tmp.path().join("no-environment");
    std::fs::create_dir_all(bare.join("tests")).expect("mkdir");
    std::fs::write(bare.join("task.toml"), "").expect("write");
    std::fs::write(bare.join("instruction.md"), "x").expect("write");
    std::fs::write(bare.join("tests/test.sh"), "x").expect("write");
    std::fs::write(tmp.path().join("notes.txt"), "not a task").expect("write");
    let paths = vec![fixtures(), fixtures().join("pass-oracle"), fixtures().join("refused-no-test"), tmp.path().to_path_buf(), bare.clone()];
    let refs = reference("dirs", &paths);
    for (p, r) in paths.iter().zip(refs) {
        let ours: Vec<String> = match harbor::task_dirs(p) {
            Ok((dirs, _)) => dirs.iter().map(|d| if d == p { ".".to_string() } else { d.file_name().expect("name").to_string_lossy().into_owned() }).collect(),
            Err(_) => Vec::new(),
        };
        assert_eq!(json!(ours), r, "{}", p.display());
    }
    let (dirs, skipped) = harbor::task_dirs(&fixtures()).expect("folder");
    assert!(dirs.iter().all(|d| !d.file_name().expect("name").to_string_lossy().starts_with("refused-")));
    assert_eq!(skipped.len(), 8, "every refused fixture is reported: {skipped:?}");
    let (_, skipped) = harbor::task_dirs(tmp.path()).expect("folder");
    assert!(skipped.len() == 1 && skipped[0].at == "environment/", "{skipped:?}");
}
