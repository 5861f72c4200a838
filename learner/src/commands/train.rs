//! `agentmill-learner train`: the service, with flags layered over the configuration.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::config::LearnerConfig;
use crate::service;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// TOML configuration file (see deploy/config/learner.toml).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Redis URL.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Stream key.
    #[arg(long)]
    pub stream: Option<String>,
    /// Consumer group (one per learner job).
    #[arg(long)]
    pub group: Option<String>,
    /// Consumer name (stable across restarts).
    #[arg(long)]
    pub consumer: Option<String>,
    /// Output directory (checkpoints, tokenizer, ledger, summary).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// A Hugging Face tokenizer.json.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// A Hugging Face checkpoint directory to continue training.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A config.json for a fresh model.
    #[arg(long)]
    pub model_config: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// libtorch CPU threads (0: libtorch's default).
    #[arg(long)]
    pub threads: Option<u64>,
    /// Tokens per packed row.
    #[arg(long)]
    pub seq_len: Option<u64>,
    /// Rows per micro-batch.
    #[arg(long)]
    pub micro_batch_rows: Option<u64>,
    /// Micro-batches per optimizer step.
    #[arg(long)]
    pub grad_accum: Option<u64>,
    /// Peak learning rate.
    #[arg(long)]
    pub peak_lr: Option<f64>,
    /// Steps the learning-rate schedule spans.
    #[arg(long)]
    pub schedule_steps: Option<u64>,
    /// A checkpoint every N steps.
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Committed checkpoints kept.
    #[arg(long)]
    pub keep_checkpoints: Option<u64>,
    /// Vocabulary of a tokenizer trained here.
    #[arg(long)]
    pub tokenizer_vocab: Option<u64>,
    /// Prometheus /metrics address.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// A progress line every N steps.
    #[arg(long)]
    pub log_every: Option<u64>,
    /// Stop after N optimizer steps in all (with a checkpoint).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Stop once the stream has been empty this long (seconds, or 30s / 2m), after a final checkpoint.
    #[arg(long, value_name = "SECS")]
    pub until_idle: Option<String>,
}

/// Runs the service until it stops (a stop condition, SIGTERM or Ctrl-C) and prints its summary.
pub async fn run(args: TrainArgs) -> Result<()> {
    let mut overrides = figment::value::Dict::new();
    let mut set = |k: &str, v: Option<figment::value::Value>| {
        if let Some(v) = v {
            overrides.insert(k.into(), v);
        }
    };
    let path = |p: Option<PathBuf>| p.map(|p| p.display().to_string().into());
    set("redis_url", args.redis_url.map(Into::into));
    set("stream", args.stream.map(Into::into));
    set("group", args.group.map(Into::into));
    set("consumer", args.consumer.map(Into::into));
    set("output_dir", path(args.output_dir));
    set("tokenizer", path(args.tokenizer));
    set("model", path(args.model));
    set("model_config", path(args.model_config));
    set("device", args.device.map(Into::into));
    set("threads", args.threads.map(Into::into));
    set("seq_len", args.seq_len.map(Into::into));
    set("micro_batch_rows", args.micro_batch_rows.map(Into::into));
    set("grad_accum", args.grad_accum.map(Into::into));
    set("peak_lr", args.peak_lr.map(Into::into));
    set("schedule_steps", args.schedule_steps.map(Into::into));
    set("checkpoint_every", args.checkpoint_every.map(Into::into));
    set("keep_checkpoints", args.keep_checkpoints.map(Into::into));
    set("tokenizer_vocab", args.tokenizer_vocab.map(Into::into));
    set("metrics_listen", args.metrics_listen.map(Into::into));
    set("log_every", args.log_every.map(Into::into));
    set("max_steps", args.max_steps.map(Into::into));
    // A bare number is seconds, as `--until-idle SECS` promises.
    let until_idle = args.until_idle.map(|s| if s.chars().all(|c| c.is_ascii_digit()) { format!("{s}s") } else { s });
    set("until_idle", until_idle.map(Into::into));
    let cfg = LearnerConfig::load(args.config.as_deref(), &overrides)?;
    let output = cfg.output_dir.clone();
    let shutdown = async {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::warn!("cannot watch SIGTERM: {e}");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    };
    let summary = service::run(cfg, shutdown).await?;
    println!(
        "stopped ({:?}) at step {}: {} tokens trained, loss {} -> {}, {:.0} tokens/s; summary in {}",
        summary.stop_reason,
        summary.steps,
        summary.tokens_trained,
        summary.loss_first.map(|l| format!("{l:.3}")).unwrap_or_else(|| "-".into()),
        summary.loss_last.map(|l| format!("{l:.3}")).unwrap_or_else(|| "-".into()),
        summary.tokens_per_second,
        output.join(service::SUMMARY_FILE).display()
    );
    Ok(())
}
