//! Section 1, the training step against PyTorch eager, and what every step section shares: the
//! bench model and optimisation, timing steps, printing them and their ratios. With
//! `AGENTMILL_BENCH_BREAKDOWN=1`, the Rust step phase by phase instead.

use std::path::Path;
use std::time::Instant;

use agentmill_learner::checkpoint::init_pretrained;
use agentmill_learner::model::{DocumentAttention, Qwen2Config};
use agentmill_learner::pack::PackedRow;
use agentmill_learner::schedule::LrSchedule;
use agentmill_learner::train::{Batch, Precision, TrainConfig, Trainer};
use anyhow::{Context, Result};
use tch::Device;

use crate::data::{random_rows, random_rows_for_python, split_documents};
use crate::python::run_python;

pub(crate) const WARMUP_STEPS: usize = 3;
pub(crate) const ROWS: usize = 4;
pub(crate) const SEQ_LEN: usize = 256;
pub(crate) const LR: f64 = 1e-4;

pub(crate) fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 { f64::NAN } else if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

pub(crate) fn ms(d: f64) -> String {
    format!("{:.2} ms", d * 1e3)
}

/// The bench model: `Qwen2Config::tiny()` widened so a step takes tens of milliseconds.
pub(crate) fn bench_config() -> Qwen2Config {
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
pub(crate) struct StepTimes {
    pub(crate) mean: f64,
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) first_loss: f64,
    pub(crate) last_loss: f64,
}

impl StepTimes {
    pub(crate) fn as_array(&self) -> [f64; 3] {
        [self.mean, self.median, self.min]
    }
}

/// Runs `WARMUP_STEPS` untimed steps, then `steps` timed ones (each ends by reading the loss, so
/// on CUDA the time includes the device's work).
pub(crate) fn time_steps(trainer: &mut Trainer, batch: &Batch, steps: usize) -> Result<StepTimes> {
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

/// `torch_step.py`'s arguments for the same model, batch and optimisation as `config`.
pub(crate) fn torch_step_args(model_dir: &Path, batch_path: &Path, threads: usize, steps: usize, config: &TrainConfig) -> Vec<String> {
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
pub(crate) fn bench_train_config(precision: Precision) -> TrainConfig {
    let mut config = TrainConfig::paper(1000, Device::Cpu);
    config.schedule = LrSchedule { peak_lr: LR, warmup_steps: 0, total_steps: 0, final_lr_ratio: 1.0 };
    config.precision = precision;
    config
}

pub(crate) fn describe(cfg: &Qwen2Config) -> String {
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

pub(crate) fn print_rust(label: &str, t: &StepTimes, steps: usize) {
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
pub(crate) fn print_ratio(label: &str, a: &StepTimes, b: &StepTimes) {
    println!(
        "ratio {label}: mean {:.3}  median {:.3}  min {:.3}",
        a.mean / b.mean,
        a.median / b.median,
        a.min / b.min
    );
}

pub(crate) fn bench_train_step(dir: &Path, threads: usize, steps: usize) -> Result<()> {
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

/// Prints one Python baseline's step times and the ratios of `rust` (mean, median, min) to them.
pub(crate) fn report_python(
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
pub(crate) fn bench_breakdown(threads: usize, steps: usize) -> Result<()> {
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
