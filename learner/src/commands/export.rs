//! `agentmill-learner export`: token shards (Megatron .bin/.idx, Parquet) for a distributed trainer.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::RecordInput;
use crate::config::LearnerConfig;
use crate::export::{ExportConfig, Exporter, Layout};
use crate::render::AssistantTokens;
use crate::tokenize::TextTokenizer;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub input: RecordInput,
    /// The tokenizer.json (the run's: output_dir/tokenizer.json).
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// File name prefix of the shards.
    #[arg(long, default_value = "agentmill")]
    pub prefix: String,
    /// packed (rows of --seq-len, as the learner trains) or documents (one sequence each).
    #[arg(long, default_value = "packed")]
    pub layout: Layout,
    /// Formats to write.
    #[arg(long, value_delimiter = ',', default_value = "megatron,parquet")]
    pub format: Vec<Format>,
    /// Tokens per packed row (default: the config's seq_len).
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// A shard closes after this many tokens.
    #[arg(long, default_value_t = 1 << 30)]
    pub shard_tokens: u64,
    /// A learner config whose recipe, template, seq_len, max_open_rows and eval_fraction apply.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// train: the records the run trains on (without those its eval_fraction holds out);
    /// held-out: only those, as a validation set.
    #[arg(long, value_enum, default_value = "train")]
    pub split: crate::export::Split,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Megatron,
    Parquet,
}

/// Writes the shards and prints what went in.
pub async fn run(args: ExportArgs) -> Result<()> {
    let cfg = LearnerConfig::load(args.config.as_deref(), &figment::value::Dict::new())?;
    let tokenizer = TextTokenizer::from_file(&args.tokenizer)?;
    let export = ExportConfig {
        out_dir: args.out.clone(),
        prefix: args.prefix.clone(),
        layout: args.layout,
        seq_len: args.seq_len.unwrap_or(cfg.seq_len),
        max_open_rows: cfg.max_open_rows,
        recipe: cfg.stages.clone(),
        template: cfg.template,
        assistant_tokens: cfg.assistant_tokens,
        megatron: args.format.contains(&Format::Megatron),
        parquet: args.format.contains(&Format::Parquet),
        shard_tokens: args.shard_tokens,
        eval_fraction: cfg.eval_fraction,
        split: args.split,
        // The learner's shuffle buffer, in tokens of this export's rows.
        shuffle_tokens: cfg.shuffle_tokens(args.seq_len.unwrap_or(cfg.seq_len)),
        seed: cfg.seed,
    };
    anyhow::ensure!(
        args.split == crate::export::Split::Train || cfg.eval_fraction > 0.0,
        "--split held-out: the configuration holds nothing out; pass the run's --config (its eval_fraction)"
    );
    let mut exporter = Exporter::new(export, tokenizer)?;
    exporter.push_source(&args.input.source(), args.input.limit.unwrap_or(usize::MAX)).await?;
    let report = exporter.finish()?;
    println!(
        "exported {} of {} records: {} documents, {} tokens, {} shard(s), packing {:.1}%; {}",
        report.records_exported,
        report.records_read,
        report.documents,
        report.tokens,
        report.shards.len(),
        report.packing_efficiency * 100.0,
        args.out.join(format!("{}.json", args.prefix)).display()
    );
    let turns = &report.recorded_turns;
    if turns.total() > 0 {
        println!(
            "assistant turns with the policy's tokens: {}; exported as {}",
            turns.describe(),
            match cfg.assistant_tokens {
                AssistantTokens::Recorded => "the policy's ids where usable",
                AssistantTokens::Rendered => "the rendered tokens",
            }
        );
    }
    Ok(())
}
