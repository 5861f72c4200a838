//! Helpers shared by the learner's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use agentmill_learner::model::Qwen2Config;
use agentmill_learner::pack::Document;
use tch::Tensor;

/// One libtorch thread per test: cargo runs two tests at once on this 2-core machine, and a
/// fixed count keeps floating-point reductions identical between the runs a test compares.
pub fn init() {
    tch::set_num_threads(1);
}

/// The repo's Python with torch and transformers, made by deploy/setup.sh.
pub fn python() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run deploy/setup.sh to create the repo's .venv with torch and transformers",
        path.display()
    );
    path
}

/// Runs learner/tests/parity/make_tiny_qwen2.py with `args`, failing with its output.
pub fn run_reference(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/make_tiny_qwen2.py");
    let output = Command::new(python())
        .arg(&script)
        .args(args)
        // Nothing may be fetched from a hub; keep transformers quiet.
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env("TRANSFORMERS_VERBOSITY", "error")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("start the reference Python");
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\n{}\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Largest absolute element-wise difference, in fp32.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a.to_kind(tch::Kind::Float) - b.to_kind(tch::Kind::Float)).abs().max().double_value(&[])
}

/// A test-sized config: GQA (4 heads over 2), q/k/v biases, tied or not.
pub fn test_config(tied: bool) -> Qwen2Config {
    Qwen2Config { vocab_size: 512, tie_word_embeddings: tied, ..Qwen2Config::tiny() }
}

/// Deterministic documents of pseudo-random tokens in `1..vocab` with lengths in `lens`.
pub fn documents(count: usize, lens: std::ops::Range<usize>, vocab: u32, seed: u64) -> Vec<Document> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    (0..count)
        .map(|_| {
            let len = lens.start + next() as usize % (lens.end - lens.start);
            Document::new((0..len).map(|_| 1 + next() % (vocab - 1)).collect())
        })
        .collect()
}
