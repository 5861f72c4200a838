//! `agentmill-learner`: the learner service and its tools. Flags and dispatch only; each command
//! with a body is a file of `agentmill_learner::commands`, the work is in the library.

use std::path::PathBuf;

use agentmill_learner::commands;
use agentmill_learner::inspect::{self, Marking};
use agentmill_learner::model::Qwen2Config;
use agentmill_learner::pack::LossMask;
use agentmill_learner::records::JsonlRecords;
use agentmill_learner::render::Template;
use agentmill_learner::tokenize::TextTokenizer;
use agentmill_learner::checkpoint;
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
    /// Train on the trajectory stream (the service). Settings: defaults < --config FILE <
    /// AGENTMILL_REDIS_URL / AGENTMILL_STREAM < AGENTMILL_LEARNER_* < these flags.
    Train(Box<commands::train::TrainArgs>),
    /// Train a byte-level BPE tokenizer on records.
    Tokenizer {
        #[command(subcommand)]
        command: TokenizerCommand,
    },
    /// Write token shards (Megatron .bin/.idx and/or Parquet) for a distributed trainer.
    Export(commands::export::ExportArgs),
    /// Write a checkpoint as one GGUF file for llama.cpp's server (qwen2 architecture, its
    /// tokenizer and the learner's chat template).
    ExportGguf {
        /// The checkpoint directory (config.json, model.safetensors, tokenizer.json).
        checkpoint: PathBuf,
        /// The .gguf file to write.
        out: PathBuf,
        /// A tokenizer.json (default: the checkpoint's own).
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// Store the weight matrices as F16 (default F32).
        #[arg(long)]
        f16: bool,
    },
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
    /// Measure a checkpoint's next-token loss on records, by source (env-pass, env-fail, ctx).
    Eval(commands::eval::EvalArgs),
    /// Show a record as the model sees it, with the tokens it is trained on marked.
    InspectRecord {
        /// A JSONL file of records.
        file: PathBuf,
        /// Which record (0-based line among the records).
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// A tokenizer.json: mark exactly the target tokens (else: by characters).
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// none (mid-training: every token) or assistant (SFT: the model's turns).
        #[arg(long, default_value = "none")]
        loss_mask: LossMask,
        /// Mark trained text with [[ ]] instead of colour.
        #[arg(long)]
        plain: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenizerCommand {
    /// Train a byte-level BPE on the rendered text of trainable records.
    Train {
        #[command(flatten)]
        input: commands::RecordInput,
        /// Vocabulary size.
        #[arg(long, default_value_t = 8192)]
        vocab: usize,
        /// Where to write tokenizer.json.
        #[arg(long)]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Train(args) => commands::train::run(*args).await?,
        Command::Tokenizer { command: TokenizerCommand::Train { input, vocab, out } } => {
            let records = input.source().collect(input.limit.unwrap_or(usize::MAX)).await?;
            let n = records.len();
            let tokenizer = tokio::task::spawn_blocking(move || {
                TextTokenizer::train_on_records(records.iter(), Template::default(), vocab)
            })
            .await??;
            tokenizer.save(&out)?;
            println!("wrote {} ({} tokens, learned from {n} records)", out.display(), tokenizer.vocab_size());
        }
        Command::Export(args) => commands::export::run(args).await?,
        Command::ExportGguf { checkpoint, out, tokenizer, f16 } => {
            let options = agentmill_learner::export::gguf::GgufOptions { tokenizer, f16 };
            let s = agentmill_learner::export::gguf::export_gguf(&checkpoint, &out, &options)?;
            println!(
                "wrote {} ({} tensors, {} metadata keys, vocabulary {} with llama.cpp pre-tokenizer {}, {} bytes)",
                out.display(),
                s.tensors,
                s.metadata,
                s.vocab,
                s.pre_tokenizer,
                s.bytes
            );
        }
        Command::Eval(args) => commands::eval::run(args).await?,
        Command::Doctor { device } => commands::doctor::run(&device)?,
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
        Command::Inspect { dir } => commands::emit(&inspect::describe_checkpoint(&dir)?)?,
        Command::InspectRecord { file, index, tokenizer, loss_mask, plain } => {
            let record = JsonlRecords::open(&file)?
                .nth(index)
                .with_context(|| format!("{} has no record at index {index}", file.display()))??;
            let tokenizer = tokenizer.as_deref().map(TextTokenizer::from_file).transpose()?;
            let marking = if plain { Marking::Plain } else { Marking::Ansi };
            let shown = inspect::annotate(&record, Template::default(), tokenizer.as_ref(), loss_mask, marking)?;
            commands::emit(&format!("{}\n\n{}", shown.header, shown.text))?;
        }
    }
    Ok(())
}
