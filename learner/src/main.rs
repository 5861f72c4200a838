//! `agentmill-learner`: the learner service and its tools.

use std::path::PathBuf;

use agentmill_learner::checkpoint;
use agentmill_learner::model::Qwen2Config;
use agentmill_learner::train::{TRAINER_STATE_FILE, TrainerState};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "agentmill-learner",
    version,
    about = "agentmill's learner: mid-trains a causal LM on trajectories from Redis"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what libtorch can use here (CUDA devices, threads) and check a tensor op runs.
    Doctor {
        /// Device to check: auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Write a freshly initialised model in Hugging Face layout (config.json + model.safetensors).
    Init {
        /// Directory to write.
        #[arg(long)]
        out: PathBuf,
        /// A Hugging Face config.json to take the architecture from (default: the embedded tiny model).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Seed of the weight initialisation.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Describe a checkpoint directory: architecture, size and, if present, the training state.
    Inspect {
        /// The checkpoint directory.
        dir: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Doctor { device } => doctor(&device)?,
        Command::Init { out, config, seed } => {
            let config = match config {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                    Qwen2Config::from_json_str(&text).with_context(|| format!("parsing {}", path.display()))?
                }
                None => Qwen2Config::tiny(),
            };
            checkpoint::init_pretrained(&out, &config, seed)?;
            println!("wrote {} ({} parameters)", out.display(), config.num_parameters());
        }
        Command::Inspect { dir } => {
            let config = checkpoint::read_config(&dir)?;
            println!("architecture: Qwen2ForCausalLM");
            println!("parameters: {}", config.num_parameters());
            println!(
                "layers: {}  hidden: {}  intermediate: {}  heads: {} (kv {})  head_dim: {}  vocab: {}",
                config.num_hidden_layers,
                config.hidden_size,
                config.intermediate_size,
                config.num_attention_heads,
                config.num_key_value_heads,
                config.head_dim,
                config.vocab_size
            );
            println!(
                "rope_theta: {}  tied embeddings: {}  dtype: {}",
                config.rope_theta,
                config.tie_word_embeddings,
                config.dtype.as_deref().unwrap_or("unknown")
            );
            let state_path = dir.join(TRAINER_STATE_FILE);
            if state_path.exists() {
                let state: TrainerState = checkpoint::read_json_file(&state_path)?;
                println!(
                    "step: {}  tokens seen: {}  target tokens seen: {}",
                    state.step, state.tokens_seen, state.target_tokens_seen
                );
                println!("learning rate at next step: {:.3e}", state.train.schedule.lr_at(state.step));
                println!("data position: {}", state.data_position);
            } else {
                println!("training state: none (weights only)");
            }
        }
    }
    Ok(())
}

fn doctor(device: &str) -> Result<()> {
    let report = agentmill_learner::device::DeviceReport::probe();
    let device = agentmill_learner::device::parse_device(device).map_err(anyhow::Error::msg)?;
    println!("cuda_available: {}", report.cuda_available);
    println!("cuda_devices: {}", report.cuda_devices);
    println!("cudnn_available: {}", report.cudnn_available);
    println!("cpu_threads: {}", report.cpu_threads);
    let a = tch::Tensor::arange(6, (tch::Kind::Float, device)).reshape([2, 3]);
    let s = a.matmul(&a.transpose(0, 1)).sum(tch::Kind::Float).double_value(&[]);
    println!("device: {device:?}");
    println!("matmul_check: {}", if (s - 83.0).abs() < 1e-6 { "ok" } else { "WRONG" });
    anyhow::ensure!((s - 83.0).abs() < 1e-6, "libtorch computed {s} for a 2x3 matmul check, expected 83");
    Ok(())
}
