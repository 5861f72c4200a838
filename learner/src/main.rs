//! `agentmill-learner`: the learner service and its tools.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "agentmill-learner", version, about = "agentmill's learner: mid-trains a causal LM on trajectories from Redis")]
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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Doctor { device } => {
            let report = agentmill_learner::device::DeviceReport::probe();
            let device = agentmill_learner::device::parse_device(&device).map_err(anyhow::Error::msg)?;
            println!("cuda_available: {}", report.cuda_available);
            println!("cuda_devices: {}", report.cuda_devices);
            println!("cudnn_available: {}", report.cudnn_available);
            println!("cpu_threads: {}", report.cpu_threads);
            let a = tch::Tensor::arange(6, (tch::Kind::Float, device)).reshape([2, 3]);
            let s = a.matmul(&a.transpose(0, 1)).sum(tch::Kind::Float).double_value(&[]);
            println!("device: {device:?}");
            println!("matmul_check: {}", if (s - 83.0).abs() < 1e-6 { "ok" } else { "WRONG" });
            anyhow::ensure!((s - 83.0).abs() < 1e-6, "libtorch computed {s} for a 2x3 matmul check, expected 83");
        }
    }
    Ok(())
}
