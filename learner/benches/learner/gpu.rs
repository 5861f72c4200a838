//! Section 3, on a GPU: a ~0.5B Qwen2 in bf16 mixed precision (tokens/s and MFU, each memory
//! plan's time) next to PyTorch eager under bf16 autocast on the same device.

use std::path::Path;

use agentmill_learner::checkpoint::init_pretrained;
use agentmill_learner::device::{DeviceReport, parse_device};
use agentmill_learner::metrics;
use agentmill_learner::model::Qwen2Config;
use agentmill_learner::pack::PackedRow;
use agentmill_learner::train::{Batch, MemoryPlan, Precision, Trainer};
use anyhow::{Result, bail};
use tch::Device;

use crate::data::{random_rows_for_python, split_documents};
use crate::env_usize;
use crate::python::run_python;
use crate::step::{StepTimes, bench_config, bench_train_config, describe, print_ratio, print_rust, report_python, time_steps, torch_step_args};

/// Section 3, on a GPU: a ~0.5B Qwen2 in bf16 mixed precision, tokens/s and MFU, next to
/// PyTorch eager with bf16 autocast on the same device.
///
/// Skipped (saying so) where libtorch sees no CUDA device. `AGENTMILL_BENCH_GPU_DEVICE` forces a
/// device (`cpu` runs the same code on the CPU, with `AGENTMILL_BENCH_GPU_MODEL=bench` to keep it
/// small), `AGENTMILL_BENCH_GPU_ROWS` / `AGENTMILL_BENCH_GPU_SEQ` set the batch (4 x 2048),
/// `AGENTMILL_BENCH_PEAK_TFLOPS` the GPU's dense bf16 peak for MFU (989, an H100 SXM).
pub(crate) fn bench_gpu(dir: &Path, threads: usize, steps: usize) -> Result<()> {
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
pub(crate) fn gpu_memory_plans(seq_len: usize) -> [(&'static str, MemoryPlan); 3] {
    [
        ("  + chunk ", MemoryPlan { activation_checkpointing: false, loss_chunk_tokens: seq_len }),
        ("  + ckpt  ", MemoryPlan { activation_checkpointing: true, loss_chunk_tokens: 0 }),
        ("  + both  ", MemoryPlan { activation_checkpointing: true, loss_chunk_tokens: seq_len }),
    ]
}
