//! Section 4, memory plans: each plan's training step in a child process of its own (this
//! binary again), its peak resident set above the resting state and its time against the plain
//! step's, and the losses compared.

use std::process::Command;
use std::time::Instant;

use agentmill_learner::model::Qwen2Config;
use agentmill_learner::train::{Batch, MemoryPlan, Precision, Trainer};
use anyhow::{Context, Result, bail};
use tch::Device;

use crate::data::random_rows;
use crate::env_usize;
use crate::step::{bench_config, bench_train_config, describe, median, ms};

/// Set in a child of [`bench_memory`]: the memory plan it measures (`checkpointing,chunk`).
pub(crate) const MEMORY_CHILD: &str = "AGENTMILL_BENCH_MEMORY_CHILD";

/// The memory section's model and batch: the bench model with a 32k vocabulary, 2 x 2048
/// tokens (`AGENTMILL_BENCH_MEMORY_VOCAB`, `_ROWS`, `_SEQ` change them).
pub(crate) fn memory_setup() -> (Qwen2Config, usize, usize) {
    let cfg = Qwen2Config { vocab_size: env_usize("AGENTMILL_BENCH_MEMORY_VOCAB", 32_768), ..bench_config() };
    (cfg, env_usize("AGENTMILL_BENCH_MEMORY_ROWS", 2), env_usize("AGENTMILL_BENCH_MEMORY_SEQ", 2048))
}

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`).
pub(crate) fn proc_status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field} in /proc/self/status"))?;
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).with_context(|| format!("parsing {line:?}"))
}

/// Section 4: each memory plan's step in a child process; peak memory and time against the
/// plain step's.
pub(crate) fn bench_memory(threads: usize, steps: usize) -> Result<()> {
    println!();
    println!("== 4. memory plans: a training step's peak memory above the resting state, and its time ==");
    let (cfg, rows, seq_len) = memory_setup();
    println!("model: {}; batch {rows} x {seq_len}; fp32 CPU; {threads} threads; each plan in its own process", describe(&cfg));
    let chunk = 1024;
    let plans = [
        ("plain", MemoryPlan::default()),
        ("loss_chunk_tokens = 1024", MemoryPlan { activation_checkpointing: false, loss_chunk_tokens: chunk }),
        ("activation_checkpointing", MemoryPlan { activation_checkpointing: true, loss_chunk_tokens: 0 }),
        ("both", MemoryPlan { activation_checkpointing: true, loss_chunk_tokens: chunk }),
    ];
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut base: Option<(f64, f64, Vec<f64>)> = None;
    for (label, plan) in plans {
        let out = Command::new(&exe)
            .env(MEMORY_CHILD, format!("{},{}", plan.activation_checkpointing, plan.loss_chunk_tokens))
            .env("AGENTMILL_BENCH_THREADS", threads.to_string())
            .env("AGENTMILL_BENCH_STEPS", steps.to_string())
            // A fixed mmap threshold: glibc otherwise raises it as large blocks are freed and
            // keeps later ones in its heap, so freed activations would look resident.
            .env("MALLOC_MMAP_THRESHOLD_", "131072")
            .output()
            .with_context(|| format!("running {} for {label}", exe.display()))?;
        if !out.status.success() {
            bail!("the {label} child failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().rev().find(|l| l.starts_with('{')).context("no JSON line from the child")?;
        let v: serde_json::Value = serde_json::from_str(line)?;
        let peak = v["peak_kib"].as_f64().context("peak_kib")? - v["resting_kib"].as_f64().context("resting_kib")?;
        let median_s = v["median_s"].as_f64().context("median_s")?;
        let losses: Vec<f64> = serde_json::from_value(v["losses"].clone())?;
        let (peak_ratio, time_ratio, loss_diff) = match &base {
            Some((p, t, l)) => (
                peak / p,
                median_s / t,
                losses.iter().zip(l).map(|(a, b)| ((a - b) / b).abs()).fold(0.0, f64::max),
            ),
            None => (1.0, 1.0, 0.0),
        };
        println!(
            "{label:>26}: peak +{:.0} MiB (ratio to plain {peak_ratio:.3}), median step {} (ratio {time_ratio:.3}), losses within {loss_diff:.1e} of plain",
            peak / 1024.0,
            ms(median_s)
        );
        base.get_or_insert((peak, median_s, losses));
    }
    Ok(())
}

/// A child of [`bench_memory`]: one warm-up step (the optimizer's moments come into being),
/// then the peak resident set is reset and `steps` steps run; prints one JSON line.
pub(crate) fn memory_child(plan: &str, steps: usize) -> Result<()> {
    let (checkpointing, chunk) = plan.split_once(',').context("plan is checkpointing,chunk")?;
    let plan = MemoryPlan { activation_checkpointing: checkpointing.parse()?, loss_chunk_tokens: chunk.parse()? };
    let (cfg, rows, seq_len) = memory_setup();
    let mut trainer = Trainer::new(&cfg, bench_train_config(Precision::Fp32), Device::Cpu)?;
    trainer.set_memory_plan(plan);
    let (_, packed) = random_rows(&cfg, rows, seq_len)?;
    let batch = Batch::from_rows(&packed, Device::Cpu)?;
    let mut losses = vec![trainer.train_step(std::slice::from_ref(&batch))?.loss];
    // Writing 5 to clear_refs resets VmHWM to the current resident set (Linux 4.0+).
    std::fs::write("/proc/self/clear_refs", "5").context("resetting the peak resident set")?;
    let resting = proc_status_kib("VmRSS:")?;
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t0 = Instant::now();
        losses.push(trainer.train_step(std::slice::from_ref(&batch))?.loss);
        times.push(t0.elapsed().as_secs_f64());
    }
    let peak = proc_status_kib("VmHWM:")?;
    println!(
        "{}",
        serde_json::json!({ "resting_kib": resting, "peak_kib": peak, "median_s": median(&mut times), "losses": losses })
    );
    Ok(())
}
