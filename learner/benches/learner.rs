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
//! settings are on [`bench_gpu`]. `AGENTMILL_BENCH_BREAKDOWN=1` runs no comparison: it prints
//! the median time of each phase of the Rust step (forward, loss + backward, clipping, AdamW).
//!
//! The machine's other load moves these figures by several percent from run to run: compare
//! medians of several runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agentmill_learner::checkpoint::init_pretrained;
use agentmill_learner::device::{DeviceReport, parse_device};
use agentmill_learner::metrics;
use agentmill_learner::model::{DocumentAttention, Qwen2Config};
use agentmill_learner::pack::{Document, IGNORE_INDEX, LossMask, PackConfig, PackedRow, pack};
use agentmill_learner::render::{Rendered, Template, render};
use agentmill_learner::schedule::LrSchedule;
use agentmill_learner::tokenize::TextTokenizer;
use agentmill_learner::train::{Batch, MemoryPlan, Precision, TrainConfig, Trainer};
use agentmill_proto::{
    ExitReason, FunctionCall, Message, RecordKind, Role, ToolCall, TrajectoryRecord,
};
use anyhow::{Context, Result, bail};
use tch::Device;

const WARMUP_STEPS: usize = 3;
const ROWS: usize = 4;
const SEQ_LEN: usize = 256;
const LR: f64 = 1e-4;
const RECORDS: usize = 200;
const TOKENIZER_VOCAB: usize = 4096;
const PACK_SEQ_LEN: usize = 2048;
const TOKENIZE_ITERS: usize = 5;

/// A small deterministic generator (SplitMix64), so the bench needs no `rand`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    /// A word: a common one, or an identifier made of syllables (so BPE has a real vocabulary to learn).
    fn word(&mut self) -> String {
        if self.below(2) == 0 {
            return self.pick(WORDS).to_string();
        }
        const SYL: &[&str] = &["ba", "ke", "lo", "mi", "nu", "ra", "so", "ti", "vex", "dor", "pan", "qu", "zel", "ith", "um", "gar", "fi", "sh", "ck", "ent"];
        let n = 2 + self.below(3);
        let mut w: String = (0..n).map(|_| self.pick(SYL)).collect();
        if self.below(3) == 0 {
            w.push('_');
            w.push_str(self.pick(WORDS));
        }
        w
    }
}

/// The Python baselines, carried inside the binary so that it runs from any directory (a GPU
/// host can be given the binary alone).
const SCRIPTS: &[(&str, &str)] = &[
    ("torch_step.py", include_str!("../benches/torch_step.py")),
    ("hf_tokenize.py", include_str!("../benches/hf_tokenize.py")),
];

/// `AGENTMILL_BENCH_PYTHON`, else the workspace's `.venv` (deploy/setup.sh's) where the binary
/// was built, else `python3` on PATH.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("AGENTMILL_BENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs a Python baseline (written into `dir` from [`SCRIPTS`]) and parses the last line of its
/// stdout as JSON.
fn run_python(dir: &Path, name: &str, args: &[String], threads: usize) -> Result<serde_json::Value> {
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

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 { f64::NAN } else if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

fn ms(d: f64) -> String {
    format!("{:.2} ms", d * 1e3)
}

/// The bench model: `Qwen2Config::tiny()` widened so a step takes tens of milliseconds.
fn bench_config() -> Qwen2Config {
    Qwen2Config {
        vocab_size: 4096,
        hidden_size: 256,
        intermediate_size: 704,
        num_hidden_layers: 4,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        head_dim: 32,
        ..Qwen2Config::tiny()
    }
}

/// Median, mean and minimum of one side's step times, with the losses of its first and last step.
struct StepTimes {
    mean: f64,
    median: f64,
    min: f64,
    first_loss: f64,
    last_loss: f64,
}

impl StepTimes {
    fn as_array(&self) -> [f64; 3] {
        [self.mean, self.median, self.min]
    }
}

/// Runs `WARMUP_STEPS` untimed steps, then `steps` timed ones (each ends by reading the loss, so
/// on CUDA the time includes the device's work).
fn time_steps(trainer: &mut Trainer, batch: &Batch, steps: usize) -> Result<StepTimes> {
    let mut first_loss = f64::NAN;
    for i in 0..WARMUP_STEPS {
        let s = trainer.train_step(std::slice::from_ref(batch))?;
        if i == 0 {
            first_loss = s.loss;
        }
    }
    let mut times = Vec::with_capacity(steps);
    let mut last_loss = f64::NAN;
    for _ in 0..steps {
        let t0 = Instant::now();
        let s = trainer.train_step(std::slice::from_ref(batch))?;
        times.push(t0.elapsed().as_secs_f64());
        last_loss = s.loss;
    }
    Ok(StepTimes {
        mean: times.iter().sum::<f64>() / times.len() as f64,
        min: times.iter().copied().fold(f64::INFINITY, f64::min),
        median: median(&mut times),
        first_loss,
        last_loss,
    })
}

/// `rows` random documents of `seq_len` tokens, packed one per row (so plain causal attention
/// is what both sides run).
fn random_rows(cfg: &Qwen2Config, rows: usize, seq_len: usize) -> Result<(Vec<Document>, Vec<PackedRow>)> {
    let mut rng = Rng(42);
    let docs: Vec<Document> =
        (0..rows).map(|_| Document::new((0..seq_len).map(|_| rng.below(cfg.vocab_size) as u32).collect())).collect();
    let packed = pack(&docs, PackConfig { seq_len, pad_id: 0, loss_mask: LossMask::None })?;
    if packed.rows.len() != rows {
        bail!("expected {rows} rows, packed {}", packed.rows.len());
    }
    Ok((docs, packed.rows))
}

/// [`random_rows`], with the documents also written as `batch.json` for the Python side.
fn random_rows_for_python(
    cfg: &Qwen2Config,
    rows: usize,
    seq_len: usize,
    dir: &Path,
) -> Result<(Vec<PackedRow>, PathBuf)> {
    let (docs, rows) = random_rows(cfg, rows, seq_len)?;
    let ids: Vec<&Vec<u32>> = docs.iter().map(|d| &d.tokens).collect();
    let batch_path = dir.join("batch.json");
    std::fs::write(&batch_path, serde_json::to_string(&serde_json::json!({ "input_ids": ids }))?)?;
    Ok((rows, batch_path))
}

/// `torch_step.py`'s arguments for the same model, batch and optimisation as `config`.
fn torch_step_args(model_dir: &Path, batch_path: &Path, threads: usize, steps: usize, config: &TrainConfig) -> Vec<String> {
    let adamw = config.adamw;
    [
        ("--model-dir", model_dir.display().to_string()),
        ("--batch", batch_path.display().to_string()),
        ("--threads", threads.to_string()),
        ("--warmup", WARMUP_STEPS.to_string()),
        ("--steps", steps.to_string()),
        ("--lr", LR.to_string()),
        ("--beta1", adamw.beta1.to_string()),
        ("--beta2", adamw.beta2.to_string()),
        ("--eps", adamw.eps.to_string()),
        ("--weight-decay", adamw.weight_decay.to_string()),
        ("--max-grad-norm", config.max_grad_norm.to_string()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect()
}

/// The paper's optimisation at a constant learning rate (the Python side's), in `precision`.
fn bench_train_config(precision: Precision) -> TrainConfig {
    let mut config = TrainConfig::paper(1000, Device::Cpu);
    config.schedule = LrSchedule { peak_lr: LR, warmup_steps: 0, total_steps: 0, final_lr_ratio: 1.0 };
    config.precision = precision;
    config
}

fn describe(cfg: &Qwen2Config) -> String {
    format!(
        "vocab {} hidden {} inter {} layers {} heads {}/{} ({:.2} M params)",
        cfg.vocab_size,
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.num_hidden_layers,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.num_parameters() as f64 / 1e6,
    )
}

fn print_rust(label: &str, t: &StepTimes, steps: usize) {
    println!(
        "{label} mean {} (median {}, min {}) over {steps} steps after {WARMUP_STEPS} warm-up; loss first {:.4} last {:.4}",
        ms(t.mean),
        ms(t.median),
        ms(t.min),
        t.first_loss,
        t.last_loss
    );
}

/// `ratio LABEL: mean … median … min …` of two sides' step times.
fn print_ratio(label: &str, a: &StepTimes, b: &StepTimes) {
    println!(
        "ratio {label}: mean {:.3}  median {:.3}  min {:.3}",
        a.mean / b.mean,
        a.median / b.median,
        a.min / b.min
    );
}

fn bench_train_step(dir: &Path, threads: usize, steps: usize) -> Result<()> {
    println!("== 1. training step: agentmill (tch) vs PyTorch eager + transformers (sdpa) ==");
    let device = Device::Cpu;
    let cfg = bench_config();
    let config = bench_train_config(Precision::Fp32);
    let model_dir = dir.join("model");
    init_pretrained(&model_dir, &cfg, config.seed)?;
    let mut trainer = Trainer::from_pretrained(&model_dir, config, device)?;
    let (rows, batch_path) = random_rows_for_python(&cfg, ROWS, SEQ_LEN, dir)?;
    let batch = Batch::from_rows(&rows, device)?;
    println!("model: {}; batch {ROWS} x {SEQ_LEN}; fp32 CPU; {threads} threads", describe(&cfg));
    let rust = time_steps(&mut trainer, &batch, steps)?;
    // The service's step also bins each token's loss by its document's source (loss by source):
    // the same rows, each document in one of the three groups.
    let groups: Vec<Vec<usize>> = (0..rows.len()).map(|i| vec![i % 3]).collect();
    let grouped_batch = Batch::from_rows_grouped(&rows, &groups, device)?;
    let grouped = time_steps(&mut trainer, &grouped_batch, steps)?;
    // Training rows hold several documents: the same tokens as 4 documents per row, kept apart
    // by attention over each document's span (the default) and by the block-diagonal mask.
    let split: Vec<PackedRow> = rows.iter().map(|r| split_documents(r, 4)).collect();
    let packed_batch = Batch::from_rows(&split, device)?;
    let spans = time_steps(&mut trainer, &packed_batch, steps)?;
    trainer.set_document_attention(DocumentAttention::Mask);
    let masked = time_steps(&mut trainer, &packed_batch, steps)?;
    trainer.set_document_attention(DocumentAttention::Spans);
    let mut args = torch_step_args(&model_dir, &batch_path, threads, steps, &config);
    let py = run_python(dir, "torch_step.py", &args, threads)?;
    print_rust("agentmill ", &rust, steps);
    print_rust("grouped   ", &grouped, steps);
    print_ratio("grouped/plain (the cost of loss by source)", &grouped, &rust);
    print_rust("4 docs/row, spans", &spans, steps);
    print_rust("4 docs/row, mask ", &masked, steps);
    print_ratio("spans/mask (packed rows, document attention)", &spans, &masked);
    report_python("pytorch   ", "ratio rust/pytorch:", "(goal <= 1.0)", &py, steps, rust.as_array())?;
    // PyTorch's fastest CPU optimizer, for comparison: the same script with AdamW(fused=True).
    args.push("--fused".into());
    match run_python(dir, "torch_step.py", &args, threads) {
        Ok(py) => report_python("pt fused  ", "ratio rust/pytorch(fused AdamW):", "", &py, steps, rust.as_array())?,
        Err(e) => println!("pytorch with AdamW(fused=True) did not run: {e:#}"),
    }
    Ok(())
}

/// Section 3, on a GPU: a ~0.5B Qwen2 in bf16 mixed precision, tokens/s and MFU, next to
/// PyTorch eager with bf16 autocast on the same device.
///
/// Skipped (saying so) where libtorch sees no CUDA device. `AGENTMILL_BENCH_GPU_DEVICE` forces a
/// device (`cpu` runs the same code on the CPU, with `AGENTMILL_BENCH_GPU_MODEL=bench` to keep it
/// small), `AGENTMILL_BENCH_GPU_ROWS` / `AGENTMILL_BENCH_GPU_SEQ` set the batch (4 x 2048),
/// `AGENTMILL_BENCH_PEAK_TFLOPS` the GPU's dense bf16 peak for MFU (989, an H100 SXM).
fn bench_gpu(dir: &Path, threads: usize, steps: usize) -> Result<()> {
    println!("== 3. GPU: a ~0.5B Qwen2 in bf16 mixed precision, tokens/s and MFU ==");
    let report = DeviceReport::probe();
    println!(
        "libtorch: tch::Cuda::is_available() = {}, {} CUDA device(s), cudnn {}, CUDA backend {}",
        report.cuda_available,
        report.cuda_devices,
        report.cudnn_available,
        report.cuda_backend()
    );
    let device = match std::env::var("AGENTMILL_BENCH_GPU_DEVICE") {
        Ok(name) => parse_device(&name).map_err(anyhow::Error::msg)?,
        Err(_) if report.cuda_available => Device::Cuda(0),
        Err(_) => {
            println!("skipped: libtorch sees no CUDA device here (AGENTMILL_BENCH_GPU_DEVICE=cpu runs it on the CPU)");
            return Ok(());
        }
    };
    let cfg = match std::env::var("AGENTMILL_BENCH_GPU_MODEL").as_deref() {
        Err(_) | Ok("0.5b") => Qwen2Config::qwen2_5_0_5b(),
        Ok("bench") => bench_config(),
        Ok(other) => bail!("AGENTMILL_BENCH_GPU_MODEL={other:?}: use 0.5b (the default) or bench"),
    };
    let rows = env_usize("AGENTMILL_BENCH_GPU_ROWS", 4);
    let seq_len = env_usize("AGENTMILL_BENCH_GPU_SEQ", 2048);
    let peak_tflops = std::env::var("AGENTMILL_BENCH_PEAK_TFLOPS").ok().and_then(|v| v.parse().ok()).unwrap_or(989.0);
    let config = bench_train_config(Precision::Bf16Mixed);
    println!("model: {}; batch {rows} x {seq_len}; bf16 mixed on {device:?}", describe(&cfg));

    let model_dir = dir.join("model-gpu");
    init_pretrained(&model_dir, &cfg, config.seed)?;
    let (packed_rows, batch_path) = random_rows_for_python(&cfg, rows, seq_len, dir)?;
    let (rust, rust_packed, planned) = {
        // In a scope: the trainer's memory goes back before PyTorch needs the device.
        let mut trainer = Trainer::from_pretrained(&model_dir, config, device)?;
        let batch = Batch::from_rows(&packed_rows, device)?;
        let rust = time_steps(&mut trainer, &batch, steps)?;
        // Training rows hold several documents: the same tokens as 4 documents per row, so
        // attention runs over each document's span (the Python side has no equivalent).
        let docs_per_row = 4;
        let split: Vec<PackedRow> = packed_rows.iter().map(|r| split_documents(r, docs_per_row)).collect();
        let packed = Batch::from_rows(&split, device)?;
        let rust_packed = time_steps(&mut trainer, &packed, steps)?;
        // The same packed step under each memory plan: what a long-row run pays in time.
        let mut planned = Vec::new();
        for (label, plan) in gpu_memory_plans(seq_len) {
            trainer.set_memory_plan(plan);
            planned.push((label, time_steps(&mut trainer, &packed, steps)?));
        }
        (rust, rust_packed, planned)
    };
    let tokens = (rows * seq_len) as f64;
    let parameters = cfg.num_parameters() as u64;
    let attention = metrics::attention_flops_per_token(&cfg, seq_len);
    let line = |label: &str, t: &StepTimes| {
        print_rust(label, t, steps);
        let tps = tokens / t.median;
        let mfu = if device.is_cuda() {
            format!(
                "; MFU {:.1}% (6N), {:.1}% with attention (6N + 12·L·H·T), of {peak_tflops} TFLOP/s",
                100.0 * metrics::mfu(parameters, tps, peak_tflops),
                100.0 * metrics::mfu_with(parameters, attention, tps, peak_tflops)
            )
        } else {
            String::new()
        };
        println!("{:>10} {tps:.0} tokens/s at the median step{mfu}", "");
    };
    line("agentmill ", &rust);
    line("  packed  ", &rust_packed);
    for (label, t) in &planned {
        line(label, t);
        print_ratio(&format!("{}/packed", label.trim()), t, &rust_packed);
    }
    let mut args = torch_step_args(&model_dir, &batch_path, threads, steps, &config);
    let device_arg = match device {
        Device::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".to_string(),
    };
    args.extend(["--device".to_string(), device_arg, "--bf16".to_string()]);
    match run_python(dir, "torch_step.py", &args, threads) {
        Ok(py) => {
            report_python("pytorch   ", "ratio rust/pytorch (step time):", "(goal <= 1.0)", &py, steps, rust.as_array())?;
            let py_median = py["median_step_s"].as_f64().unwrap_or(f64::NAN);
            println!("{:>10} {:.0} tokens/s at the median step", "", tokens / py_median);
        }
        Err(e) => println!("the PyTorch baseline did not run (set AGENTMILL_BENCH_PYTHON to a python with torch + transformers): {e:#}"),
    }
    Ok(())
}

/// The memory plans section 3 times on packed rows: the loss in slices of one row's length,
/// activation checkpointing, and both.
fn gpu_memory_plans(seq_len: usize) -> [(&'static str, MemoryPlan); 3] {
    [
        ("  + chunk ", MemoryPlan { activation_checkpointing: false, loss_chunk_tokens: seq_len }),
        ("  + ckpt  ", MemoryPlan { activation_checkpointing: true, loss_chunk_tokens: 0 }),
        ("  + both  ", MemoryPlan { activation_checkpointing: true, loss_chunk_tokens: seq_len }),
    ]
}

/// `row` (one document) relabelled as `n` documents of equal length, positions restarting in
/// each, the first token of each later document no longer a target of the one before.
fn split_documents(row: &PackedRow, n: usize) -> PackedRow {
    let len = row.input_ids.len();
    let part = len.div_ceil(n).max(1);
    let mut out = row.clone();
    for i in 0..len {
        out.doc_ids[i] = (i / part) as i64;
        out.position_ids[i] = (i % part) as i64;
        if (i + 1) % part == 0 {
            out.labels[i] = IGNORE_INDEX;
        }
    }
    out
}

/// Prints one Python baseline's step times and the ratios of `rust` (mean, median, min) to them.
fn report_python(
    label: &str,
    ratio_label: &str,
    note: &str,
    py: &serde_json::Value,
    steps: usize,
    rust: [f64; 3],
) -> Result<()> {
    let py_mean = py["mean_step_s"].as_f64().context("mean_step_s")?;
    let py_min = py["min_step_s"].as_f64().unwrap_or(f64::NAN);
    let py_median = py["median_step_s"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{label} mean {} (median {}, min {}) over {steps} steps after {WARMUP_STEPS} warm-up; loss first {:.4} last {:.4} (torch {})",
        ms(py_mean),
        ms(py_median),
        ms(py_min),
        py["first_loss"].as_f64().unwrap_or(f64::NAN),
        py["last_loss"].as_f64().unwrap_or(f64::NAN),
        py["torch"].as_str().unwrap_or("?"),
    );
    println!(
        "{ratio_label} mean {:.3}, median {:.3}, min {:.3}  {note}",
        rust[0] / py_mean,
        rust[1] / py_median,
        rust[2] / py_min
    );
    Ok(())
}

/// Per-phase medians of the Rust step (`AGENTMILL_BENCH_BREAKDOWN=1`), for profiling: the phases
/// of `Trainer::train_step`, timed one by one on the bench model and batch.
fn bench_breakdown(threads: usize, steps: usize) -> Result<()> {
    use agentmill_learner::model::Qwen2ForCausalLM;
    use agentmill_learner::optim::AdamW;
    use agentmill_learner::train::token_loss_sum;
    let device = Device::Cpu;
    let cfg = bench_config();
    let config = TrainConfig::paper(1000, device);
    let vs = tch::nn::VarStore::new(device);
    let model = agentmill_learner::seed::with_seed(config.seed, || Qwen2ForCausalLM::new(&vs.root(), &cfg))?;
    let mut opt = AdamW::new(&vs, config.adamw)?;
    let (_, rows) = random_rows(&cfg, ROWS, SEQ_LEN)?;
    let batch = Batch::from_rows(&rows, device)?;
    println!("== training step of agentmill, phase by phase ({ROWS} x {SEQ_LEN}, {threads} threads) ==");
    let names = ["zero_grad", "forward", "loss + backward", "clip_grad_norm", "adamw step"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for i in 0..WARMUP_STEPS + steps {
        let mut marks = vec![Instant::now()];
        opt.zero_grad();
        marks.push(Instant::now());
        let logits = model.forward(&batch.input_ids, &batch.position_ids, Some(&batch.doc_ids))?;
        marks.push(Instant::now());
        let sum = token_loss_sum(&logits, &batch.labels)?;
        sum.f_div_scalar(batch.target_tokens() as f64)?.f_backward()?;
        let _ = sum.f_double_value(&[])?;
        marks.push(Instant::now());
        opt.clip_grad_norm(config.max_grad_norm)?;
        marks.push(Instant::now());
        opt.step(LR)?;
        marks.push(Instant::now());
        if i >= WARMUP_STEPS {
            for (t, w) in times.iter_mut().zip(marks.windows(2)) {
                t.push((w[1] - w[0]).as_secs_f64());
            }
        }
    }
    for (name, mut t) in names.iter().zip(times) {
        println!("{name:>16}: median {} over {steps} steps", ms(median(&mut t)));
    }
    Ok(())
}

/// Set in a child of [`bench_memory`]: the memory plan it measures (`checkpointing,chunk`).
const MEMORY_CHILD: &str = "AGENTMILL_BENCH_MEMORY_CHILD";

/// The memory section's model and batch: the bench model with a 32k vocabulary, 2 x 2048
/// tokens (`AGENTMILL_BENCH_MEMORY_VOCAB`, `_ROWS`, `_SEQ` change them).
fn memory_setup() -> (Qwen2Config, usize, usize) {
    let cfg = Qwen2Config { vocab_size: env_usize("AGENTMILL_BENCH_MEMORY_VOCAB", 32_768), ..bench_config() };
    (cfg, env_usize("AGENTMILL_BENCH_MEMORY_ROWS", 2), env_usize("AGENTMILL_BENCH_MEMORY_SEQ", 2048))
}

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`).
fn proc_status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field} in /proc/self/status"))?;
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).with_context(|| format!("parsing {line:?}"))
}

/// Section 4: each memory plan's step in a child process; peak memory and time against the
/// plain step's.
fn bench_memory(threads: usize, steps: usize) -> Result<()> {
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
fn memory_child(plan: &str, steps: usize) -> Result<()> {
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

const WORDS: &[&str] = &[
    "config", "parser", "value", "self", "return", "None", "import", "def", "class", "line", "split", "strip", "key",
    "error", "raise", "ValueError", "path", "open", "read", "write", "data", "items", "result", "index", "len",
    "section", "option", "default", "test", "assert", "fixture", "module", "init", "setup", "token", "buffer",
];
const FILES: &[&str] =
    &["src/ini.py", "src/parser/core.py", "tests/test_ini.py", "lib/util.rs", "pkg/config/load.go", "src/main.c"];

fn code_lines(rng: &mut Rng, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let indent = "    ".repeat(rng.below(3));
        let words: Vec<String> = (0..3 + rng.below(6)).map(|_| rng.word()).collect();
        s.push_str(&format!("{}{indent}{} = {}({})\n", i + 1, words[0], words[1], words[2..].join(", ")));
    }
    s
}

fn prose(rng: &mut Rng, words: usize) -> String {
    let w: Vec<String> = (0..words).map(|_| rng.word()).collect();
    let mut s = w.join(" ");
    s.push('.');
    s
}

fn call(id: String, name: &str, args: serde_json::Value) -> ToolCall {
    ToolCall { id, kind: "function".into(), function: FunctionCall { name: name.into(), arguments: args.to_string() } }
}

/// A synthetic env record of a few KB: system, task, then turns of reasoning + tool calls and
/// tool outputs.
fn synthetic_record(i: usize, rng: &mut Rng) -> TrajectoryRecord {
    let mut messages = vec![
        Message::text(Role::System, "You are a software engineer working in a repository at /testbed. Use the tools to fix the issue, then submit."),
        Message::text(Role::User, format!("<issue>\n{}\n\n```\n{}```\n</issue>", prose(rng, 60), code_lines(rng, 6))),
    ];
    let turns = 3 + rng.below(4);
    for t in 0..turns {
        let file = rng.pick(FILES);
        let mut a = Message::text(Role::Assistant, prose(rng, 15));
        a.reasoning_content = Some(prose(rng, 40));
        let id = format!("call_{i}_{t}");
        a.tool_calls = vec![if rng.below(2) == 0 {
            call(id.clone(), "bash", serde_json::json!({"command": format!("grep -n {} {file}", rng.pick(WORDS))}))
        } else {
            call(
                id.clone(),
                "str_replace_editor",
                serde_json::json!({"command": "str_replace", "path": format!("/testbed/{file}"),
                    "old_str": code_lines(rng, 3), "new_str": code_lines(rng, 4)}),
            )
        }];
        messages.push(a);
        let n = 10 + rng.below(20);
        let mut out = Message::text(Role::Tool, code_lines(rng, n));
        out.tool_call_id = Some(id);
        messages.push(out);
    }
    let mut submit = Message::text(Role::Assistant, "");
    submit.tool_calls = vec![call(format!("call_{i}_s"), "submit", serde_json::json!({}))];
    messages.push(submit);
    TrajectoryRecord {
        worker: "bench".into(),
        tools: vec![
            serde_json::json!({"type": "function", "function": {"name": "bash", "description": "Run a shell command.", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}}),
            serde_json::json!({"type": "function", "function": {"name": "str_replace_editor", "description": "View and edit files.", "parameters": {"type": "object"}}}),
            serde_json::json!({"type": "function", "function": {"name": "submit", "description": "Submit the patch.", "parameters": {"type": "object"}}}),
        ],
        messages,
        exit_reason: Some(ExitReason::Submitted),
        ..TrajectoryRecord::new(RecordKind::Env, format!("env:bench-{i}:r0:a1"), format!("bench-{i}"))
    }
}

fn bench_tokenize(dir: &Path, threads: usize) -> Result<()> {
    println!();
    println!("== 2. render + tokenize (assistant mask) + pack vs HF tokenizers encode_batch (Python) ==");
    let mut rng = Rng(7);
    let records: Vec<TrajectoryRecord> = (0..RECORDS).map(|i| synthetic_record(i, &mut rng)).collect();
    let rendered: Vec<Rendered> =
        records.iter().map(|r| render(r, Template::ChatMlXmlTools).context("record not trainable")).collect::<Result<_>>()?;
    let bytes: usize = rendered.iter().map(|r| r.text.len()).sum();
    let t0 = Instant::now();
    let tok = TextTokenizer::train(rendered.iter().map(|r| r.text.as_str()), TOKENIZER_VOCAB)?;
    let train_time = t0.elapsed();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path)?;
    let texts_path = dir.join("texts.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&texts_path)?);
    for r in &rendered {
        writeln!(f, "{}", serde_json::json!({ "text": r.text }))?;
    }
    f.flush()?;
    drop(f);
    println!(
        "{RECORDS} records, {:.1} KB rendered on average ({:.2} MB in all); tokenizer vocab {} trained in {:.2} s",
        bytes as f64 / RECORDS as f64 / 1024.0,
        bytes as f64 / 1e6,
        tok.vocab_size(),
        train_time.as_secs_f64()
    );

    let pack_config = PackConfig { seq_len: PACK_SEQ_LEN, pad_id: tok.pad_id, loss_mask: LossMask::Assistant };
    let mut best_all = Duration::MAX;
    let mut best_encode = Duration::MAX;
    let mut tokens = 0usize;
    let mut rows = 0usize;
    let mut efficiency = 0.0;
    for _ in 0..TOKENIZE_ITERS {
        let t0 = Instant::now();
        let rendered: Vec<_> =
            records.iter().map(|r| render(r, Template::ChatMlXmlTools).context("record not trainable")).collect::<anyhow::Result<_>>()?;
        let te = Instant::now();
        let encoded = tok.encode_batch_with_mask(&rendered)?;
        let encode = te.elapsed();
        tokens = encoded.iter().map(|(ids, _)| ids.len() - 1).sum(); // without the appended end-of-text, as HF counts them
        let docs: Vec<Document> = encoded.into_iter().map(|(ids, mask)| Document::with_mask(ids, mask)).collect();
        let packed = pack(&docs, pack_config)?;
        let all = t0.elapsed();
        rows = packed.rows.len();
        efficiency = packed.stats.efficiency();
        best_all = best_all.min(all);
        best_encode = best_encode.min(encode);
    }
    let rust_tps = tokens as f64 / best_all.as_secs_f64();
    let rust_encode_tps = tokens as f64 / best_encode.as_secs_f64();

    let py = run_python(
        dir,
        "hf_tokenize.py",
        &[
            "--tokenizer".into(),
            tok_path.display().to_string(),
            "--texts".into(),
            texts_path.display().to_string(),
            "--iters".into(),
            TOKENIZE_ITERS.to_string(),
        ],
        threads,
    )?;
    let py_tps = py["tokens_per_s"].as_f64().context("tokens_per_s")?;
    let py_tokens = py["tokens"].as_u64().unwrap_or(0);
    println!(
        "agentmill  render+encode_batch_with_mask+pack: {tokens} tokens in {} (best of {TOKENIZE_ITERS}) = {:.0} tokens/s, {threads} threads; {rows} rows of {PACK_SEQ_LEN}, packing efficiency {:.3}",
        ms(best_all.as_secs_f64()),
        rust_tps,
        efficiency
    );
    println!(
        "agentmill  encode_batch_with_mask alone: {} = {:.0} tokens/s",
        ms(best_encode.as_secs_f64()),
        rust_encode_tps
    );
    println!(
        "hf python  encode_batch: {py_tokens} tokens in {} (best of {TOKENIZE_ITERS}) = {:.0} tokens/s, RAYON_NUM_THREADS={threads}",
        ms(py["best_s"].as_f64().unwrap_or(f64::NAN)),
        py_tps
    );
    if py_tokens as usize != tokens {
        println!("note: token counts differ (rust {tokens}, python {py_tokens})");
    }
    println!("ratio rust/python (tokens/s, full pipeline vs encode_batch): {:.3}  (higher is better)", rust_tps / py_tps);
    Ok(())
}

fn main() -> Result<()> {
    let threads = env_usize(
        "AGENTMILL_BENCH_THREADS",
        std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(1),
    );
    let steps = env_usize("AGENTMILL_BENCH_STEPS", 20);
    tch::set_num_threads(threads as i32);
    if std::env::var_os("AGENTMILL_BENCH_BREAKDOWN").is_some() {
        return bench_breakdown(threads, steps);
    }
    if let Ok(plan) = std::env::var(MEMORY_CHILD) {
        return memory_child(&plan, steps);
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
    println!("learner bench: python {}, scratch {}", python().display(), dir.display());
    let run = || -> Result<()> {
        if wanted("step") {
            bench_train_step(&dir, threads, steps)?;
        }
        if wanted("tokenize") {
            bench_tokenize(&dir, threads)?;
        }
        if wanted("gpu") {
            bench_gpu(&dir, threads, steps)?;
        }
        if wanted("memory") {
            bench_memory(threads, steps)?;
        }
        Ok(())
    };
    let result = run();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
