//! Benchmarks of the learner against Python baselines measured in the same run.
//!
//! 1. One training step (forward, loss, backward, clipping, AdamW) of a small Qwen2 in fp32 on
//!    the CPU, against the same step in PyTorch eager + transformers (`learner/benches/torch_step.py`):
//!    same config.json, same initial weights (written by this binary), same batch, same AdamW
//!    hyper-parameters, same thread count. The baseline is `torch.optim.AdamW` as PyTorch runs
//!    it by default (the goal's ratio); a second run of the same script with
//!    `AdamW(fused=True)`, PyTorch's fastest optimizer on the CPU, gives a second ratio. The
//!    same step on a grouped batch (the service's, which bins the loss by source) is timed
//!    beside it, as the ratio grouped/plain, and the step on rows of four documents each, whose
//!    attention runs over each document's span (the default) or under the block-diagonal mask,
//!    as the ratio spans/mask.
//! 2. Render + tokenize (with the assistant mask) + pack of synthetic env records, against HF
//!    `tokenizers`' `encode_batch` in Python (`learner/benches/hf_tokenize.py`) over the same
//!    rendered texts with the same tokenizer.json.
//! 3. Where libtorch sees a CUDA device: one training step of a ~0.5B Qwen2 (Qwen2.5-0.5B's
//!    shape) in bf16 mixed precision, as tokens/s and MFU, against the same step in PyTorch
//!    eager under bf16 autocast on the same GPU (`torch_step.py --device cuda --bf16`). It
//!    prints `tch::Cuda::is_available()` first, and says it skipped where that is false. The
//!    packed step is also timed under each memory plan (loss in slices of one row, activation
//!    checkpointing, both), as ratios to the plain packed step.
//!
//! 4. Memory plans (`activation_checkpointing`, `loss_chunk_tokens`): the peak memory of a
//!    training step above the process's resting state, and its time, for each plan against the
//!    plain step, on rows long enough and a vocabulary large enough that activations and logits
//!    dominate. Each plan runs in a child process of its own (this binary again), whose peak
//!    resident set is reset after a warm-up step; the losses of all plans are compared too.
//!
//! Prints figures only; nothing is asserted about time.
//!
//! ```text
//! cargo bench -p agentmill-learner --bench learner
//! cargo bench -p agentmill-learner --bench learner --no-run   # prints the binary's path, to carry
//! ```
//!
//! Environment: `AGENTMILL_BENCH_PYTHON` (default: the workspace's `.venv/bin/python`, else
//! `python3`; the Python scripts are inside the binary, which runs from any directory),
//! `AGENTMILL_BENCH_THREADS` (default: available parallelism), `AGENTMILL_BENCH_STEPS` (20).
//! `AGENTMILL_BENCH_ONLY=step,tokenize,gpu,memory` picks sections (all by default); section 3's own
//! settings are on `gpu::bench_gpu`. `AGENTMILL_BENCH_BREAKDOWN=1` runs no comparison: it prints
//! the median time of each phase of the Rust step (forward, loss + backward, clipping, AdamW).
//!
//! The machine's other load moves these figures by several percent from run to run: compare
//! medians of several runs.
//!
//! The files: `step.rs` (section 1, the step timing the other sections share, and the
//! breakdown), `tokenize.rs` (2), `gpu.rs` (3), `memory.rs` (4), `data.rs` (the synthetic
//! records and random rows they run on), `python.rs` (the Python baselines and how they run).

mod data;
mod gpu;
mod memory;
mod python;
mod step;
mod tokenize;

use anyhow::{Result, bail};

/// A number from the environment, else `default`.
fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> Result<()> {
    let threads = env_usize(
        "AGENTMILL_BENCH_THREADS",
        std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(1),
    );
    let steps = env_usize("AGENTMILL_BENCH_STEPS", 20);
    tch::set_num_threads(threads as i32);
    if std::env::var_os("AGENTMILL_BENCH_BREAKDOWN").is_some() {
        return step::bench_breakdown(threads, steps);
    }
    if let Ok(plan) = std::env::var(memory::MEMORY_CHILD) {
        return memory::memory_child(&plan, steps);
    }
    let only = std::env::var("AGENTMILL_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o.split(',').any(|w| w.trim() == name));
    if let Some(o) = &only
        && !o.split(',').all(|w| ["step", "tokenize", "gpu", "memory"].contains(&w.trim()))
    {
        bail!("AGENTMILL_BENCH_ONLY={o:?}: name sections from step, tokenize, gpu, memory (comma-separated)");
    }
    let dir = std::env::temp_dir().join(format!("agentmill-learner-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!("learner bench: python {}, scratch {}", python::python().display(), dir.display());
    let run = || -> Result<()> {
        if wanted("step") {
            step::bench_train_step(&dir, threads, steps)?;
        }
        if wanted("tokenize") {
            tokenize::bench_tokenize(&dir, threads)?;
        }
        if wanted("gpu") {
            gpu::bench_gpu(&dir, threads, steps)?;
        }
        if wanted("memory") {
            memory::bench_memory(threads, steps)?;
        }
        Ok(())
    };
    let result = run();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
