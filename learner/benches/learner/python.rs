//! The Python baselines: the scripts (inside the binary, so a GPU host can be given the binary
//! alone), the interpreter that runs them, and the JSON line each answers with.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The Python baselines, carried inside the binary so that it runs from any directory (a GPU
/// host can be given the binary alone).
pub(crate) const SCRIPTS: &[(&str, &str)] = &[
    ("torch_step.py", include_str!("../torch_step.py")),
    ("hf_tokenize.py", include_str!("../hf_tokenize.py")),
];

/// `AGENTMILL_BENCH_PYTHON`, else the workspace's `.venv` (deploy/setup.sh's) where the binary
/// was built, else `python3` on PATH.
pub(crate) fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("AGENTMILL_BENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}

/// Runs a Python baseline (written into `dir` from [`SCRIPTS`]) and parses the last line of its
/// stdout as JSON.
pub(crate) fn run_python(dir: &Path, name: &str, args: &[String], threads: usize) -> Result<serde_json::Value> {
    let (_, source) = SCRIPTS.iter().find(|(n, _)| *n == name).with_context(|| format!("no script {name}"))?;
    let script = dir.join(name);
    std::fs::write(&script, source).with_context(|| format!("writing {}", script.display()))?;
    let py = python();
    let out = Command::new(&py)
        .arg(&script)
        .args(args)
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("RAYON_NUM_THREADS", threads.to_string())
        .env("TOKENIZERS_PARALLELISM", "true")
        .output()
        .with_context(|| format!("running {} {}", py.display(), script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({}):\n{}", script.display(), out.status, String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).context("no JSON line on stdout")?;
    serde_json::from_str(line).with_context(|| format!("parsing {line:?}"))
}
