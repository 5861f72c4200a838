//! `agentmill-learner`: the learner service and its tools. Flags, configuration and output
//! only; the work is in the library.

use std::path::PathBuf;

use agentmill_learner::config::LearnerConfig;
use agentmill_learner::export::{ExportConfig, Exporter, Layout};
use agentmill_learner::inspect::{self, Marking};
use agentmill_learner::eval;
use agentmill_learner::mix::Source;
use agentmill_learner::model::Qwen2Config;
use agentmill_learner::pack::LossMask;
use agentmill_learner::records::{JsonlRecords, RecordSource};
use agentmill_learner::render::{self, AssistantTokens, Template};
use agentmill_learner::tokenize::TextTokenizer;
use agentmill_learner::train::Precision;
use agentmill_learner::{checkpoint, service};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

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
    Train(Box<TrainArgs>),
    /// Train a byte-level BPE tokenizer on records.
    Tokenizer {
        #[command(subcommand)]
        command: TokenizerCommand,
    },
    /// Write token shards (Megatron .bin/.idx and/or Parquet) for a distributed trainer.
    Export(ExportArgs),
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
    Eval(EvalArgs),
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

#[derive(Debug, Args)]
struct TrainArgs {
    /// TOML configuration file (see deploy/config/learner.toml).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Redis URL.
    #[arg(long)]
    redis_url: Option<String>,
    /// Stream key.
    #[arg(long)]
    stream: Option<String>,
    /// Consumer group (one per learner job).
    #[arg(long)]
    group: Option<String>,
    /// Consumer name (stable across restarts).
    #[arg(long)]
    consumer: Option<String>,
    /// Output directory (checkpoints, tokenizer, ledger, summary).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// A Hugging Face tokenizer.json.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// A Hugging Face checkpoint directory to continue training.
    #[arg(long)]
    model: Option<PathBuf>,
    /// A config.json for a fresh model.
    #[arg(long)]
    model_config: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// libtorch CPU threads (0: libtorch's default).
    #[arg(long)]
    threads: Option<u64>,
    /// Tokens per packed row.
    #[arg(long)]
    seq_len: Option<u64>,
    /// Rows per micro-batch.
    #[arg(long)]
    micro_batch_rows: Option<u64>,
    /// Micro-batches per optimizer step.
    #[arg(long)]
    grad_accum: Option<u64>,
    /// Peak learning rate.
    #[arg(long)]
    peak_lr: Option<f64>,
    /// Steps the learning-rate schedule spans.
    #[arg(long)]
    schedule_steps: Option<u64>,
    /// A checkpoint every N steps.
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Committed checkpoints kept.
    #[arg(long)]
    keep_checkpoints: Option<u64>,
    /// Vocabulary of a tokenizer trained here.
    #[arg(long)]
    tokenizer_vocab: Option<u64>,
    /// Prometheus /metrics address.
    #[arg(long)]
    metrics_listen: Option<String>,
    /// A progress line every N steps.
    #[arg(long)]
    log_every: Option<u64>,
    /// Stop after N optimizer steps in all (with a checkpoint).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Stop once the stream has been empty this long (seconds, or 30s / 2m), after a final checkpoint.
    #[arg(long, value_name = "SECS")]
    until_idle: Option<String>,
}

#[derive(Debug, Subcommand)]
enum TokenizerCommand {
    /// Train a byte-level BPE on the rendered text of trainable records.
    Train {
        #[command(flatten)]
        input: RecordInput,
        /// Vocabulary size.
        #[arg(long, default_value_t = 8192)]
        vocab: usize,
        /// Where to write tokenizer.json.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where records come from: JSONL files or a stream (read without a consumer group).
#[derive(Debug, Args)]
struct RecordInput {
    /// JSONL files of records (repeatable).
    #[arg(long, required_unless_present = "stream")]
    input: Vec<PathBuf>,
    /// A Redis stream of records (read with XRANGE: nothing is claimed or acknowledged).
    #[arg(long, conflicts_with = "input")]
    stream: Option<String>,
    /// Redis URL for --stream.
    #[arg(long, env = "AGENTMILL_REDIS_URL", default_value = "redis://127.0.0.1:6379/")]
    redis_url: String,
    /// At most this many records.
    #[arg(long)]
    limit: Option<usize>,
}

impl RecordInput {
    fn source(&self) -> RecordSource {
        match &self.stream {
            Some(stream) => RecordSource::Stream { redis_url: self.redis_url.clone(), stream: stream.clone() },
            None => RecordSource::Files(self.input.clone()),
        }
    }
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    input: RecordInput,
    /// The tokenizer.json (the run's: output_dir/tokenizer.json).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// File name prefix of the shards.
    #[arg(long, default_value = "agentmill")]
    prefix: String,
    /// packed (rows of --seq-len, as the learner trains) or documents (one sequence each).
    #[arg(long, default_value = "packed")]
    layout: Layout,
    /// Formats to write.
    #[arg(long, value_delimiter = ',', default_value = "megatron,parquet")]
    format: Vec<Format>,
    /// Tokens per packed row (default: the config's seq_len).
    #[arg(long)]
    seq_len: Option<usize>,
    /// A shard closes after this many tokens.
    #[arg(long, default_value_t = 1 << 30)]
    shard_tokens: u64,
    /// A learner config whose recipe, template, seq_len, max_open_rows and eval_fraction apply.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// train: the records the run trains on (without those its eval_fraction holds out);
    /// held-out: only those, as a validation set.
    #[arg(long, value_enum, default_value = "train")]
    split: agentmill_learner::export::Split,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// A checkpoint directory (config.json + model.safetensors), e.g. output_dir/checkpoints/step-00000100.
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    input: RecordInput,
    /// The tokenizer.json (default: the checkpoint's own).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// The run's learner configuration: records render with its `template` and `assistant_tokens`,
    /// and rows take its `seq_len`, as the run's own evaluations do.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Only the records a run with this eval_fraction holds out (default: every trainable record).
    #[arg(long, value_name = "FRACTION")]
    held_out: Option<f64>,
    /// Tokens per packed row (default: the configuration's seq_len, 1024).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Rows per forward pass.
    #[arg(long, default_value_t = 4)]
    micro_batch_rows: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Megatron,
    Parquet,
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
        Command::Train(args) => train(*args).await?,
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
        Command::Export(args) => export(args).await?,
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
        Command::Eval(args) => evaluate(args).await?,
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
        Command::Inspect { dir } => emit(&inspect::describe_checkpoint(&dir)?)?,
        Command::InspectRecord { file, index, tokenizer, loss_mask, plain } => {
            let record = JsonlRecords::open(&file)?
                .nth(index)
                .with_context(|| format!("{} has no record at index {index}", file.display()))??;
            let tokenizer = tokenizer.as_deref().map(TextTokenizer::from_file).transpose()?;
            let marking = if plain { Marking::Plain } else { Marking::Ansi };
            let shown = inspect::annotate(&record, Template::default(), tokenizer.as_ref(), loss_mask, marking)?;
            emit(&format!("{}\n\n{}", shown.header, shown.text))?;
        }
    }
    Ok(())
}

/// Writes `text` to stdout. A reader that went away early (`| head`, a closed pager) ends the
/// output quietly, where `print!` would panic.
fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

async fn train(args: TrainArgs) -> Result<()> {
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

async fn export(args: ExportArgs) -> Result<()> {
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
        args.split == agentmill_learner::export::Split::Train || cfg.eval_fraction > 0.0,
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
            "assistant turns with the policy's token ids: {} match the tokenizer's tokens of their text, {} drift, {} out of vocabulary, {} misaligned; exported as {}",
            turns.matched,
            turns.drift,
            turns.out_of_vocab,
            turns.misaligned,
            match cfg.assistant_tokens {
                AssistantTokens::Recorded => "the policy's ids where usable",
                AssistantTokens::Rendered => "the rendered tokens",
            }
        );
    }
    Ok(())
}

async fn evaluate(args: EvalArgs) -> Result<()> {
    if let Some(f) = args.held_out {
        anyhow::ensure!((0.0..1.0).contains(&f) && f > 0.0, "--held-out {f}: give the run's eval_fraction, in (0, 1)");
    }
    let cfg = LearnerConfig::load(args.config.as_deref(), &figment::value::Dict::new())?;
    let seq_len = args.seq_len.unwrap_or(cfg.seq_len);
    anyhow::ensure!(seq_len >= 2, "--seq-len {seq_len}: a row needs at least 2 tokens");
    let tokenizer_path = args.tokenizer.clone().unwrap_or_else(|| args.checkpoint.join(service::position::TOKENIZER_FILE));
    let tokenizer = TextTokenizer::from_file(&tokenizer_path).with_context(|| {
        format!("the tokenizer {}: pass --tokenizer (the run's output_dir/tokenizer.json)", tokenizer_path.display())
    })?;
    let records = args.input.source().collect(args.input.limit.unwrap_or(usize::MAX)).await?;
    let read = records.len();
    let held = args.held_out;
    let mut seen = std::collections::HashSet::new();
    let chosen: Vec<_> = records
        .into_iter()
        .filter(|r| r.is_trainable() && held.is_none_or(|f| eval::held_out(r, f)))
        .filter(|r| seen.insert(r.record_id.clone())) // a record published twice counts once
        .collect();
    anyhow::ensure!(
        !chosen.is_empty(),
        "none of the {read} records read is trainable{}; nothing to measure",
        if held.is_some() { " and held out at that fraction" } else { "" }
    );
    let mut set = eval::EvalSet::new(held.unwrap_or(0.0));
    for record in &chosen {
        let Some(rendered) = render::render(record, cfg.template) else { continue };
        // As the service tokenizes: the rendered text (or the policy's ids), then end-of-text.
        let tokens = tokenizer.encode_record(&rendered, cfg.assistant_tokens)?.ids;
        let doc = eval::EvalDoc { record_id: record.record_id.clone(), source: Source::of(record), tokens };
        set.offer(doc, u64::MAX);
    }
    let groups = set.rows(seq_len, tokenizer.pad_id)?;
    anyhow::ensure!(!groups.is_empty(), "the {} records chosen render to no tokens", chosen.len());
    let device = agentmill_learner::device::parse_device(&args.device).map_err(anyhow::Error::msg)?;
    let (_vs, mut model) = checkpoint::load_pretrained(&args.checkpoint, device)?;
    model.set_compute_kind(Precision::default_for(device).compute_kind());
    // A checkpoint of a run knows its step; a plain Hugging Face directory counts as step 0.
    let state = args.checkpoint.join(agentmill_learner::train::TRAINER_STATE_FILE);
    let step = checkpoint::read_json_file::<agentmill_learner::train::TrainerState>(&state).map(|s| s.step).unwrap_or(0);
    let result = eval::evaluate_rows(&model, &groups, args.micro_batch_rows, device, step)?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&result)?))
    } else {
        let head = format!("{} on {} of {read} records ({device:?})\n", args.checkpoint.display(), set.docs.len());
        emit(&format!("{head}{}", result.table()))
    }
}

fn doctor(device: &str) -> Result<()> {
    let report = agentmill_learner::device::DeviceReport::probe();
    let device = agentmill_learner::device::parse_device(device).map_err(anyhow::Error::msg)?;
    // What libtorch reports goes out before the check runs: a check that crashes on a broken
    // driver still leaves it on screen.
    emit(&format!(
        "cuda_backend: {}\ncuda_available: {}\ncuda_devices: {}\ncudnn_available: {}\ncpu_threads: {}\n",
        report.cuda_backend(),
        report.cuda_available,
        report.cuda_devices,
        report.cudnn_available,
        report.cpu_threads,
    ))?;
    let a = tch::Tensor::arange(6, (tch::Kind::Float, device)).reshape([2, 3]);
    let s = a.matmul(&a.transpose(0, 1)).sum(tch::Kind::Float).double_value(&[]);
    emit(&format!("device: {device:?}\nmatmul_check: {}\n", if (s - 83.0).abs() < 1e-6 { "ok" } else { "WRONG" }))?;
    anyhow::ensure!((s - 83.0).abs() < 1e-6, "libtorch computed {s} for a 2x3 matmul check, expected 83");
    Ok(())
}
