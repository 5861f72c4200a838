//! `agentmill-learner eval`: a checkpoint's next-token loss on records, by source.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{RecordInput, emit};
use crate::config::LearnerConfig;
use crate::mix::Source;
use crate::tokenize::TextTokenizer;
use crate::train::Precision;
use crate::{checkpoint, eval, render, service};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A checkpoint directory (config.json + model.safetensors), e.g. output_dir/checkpoints/step-00000100.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub input: RecordInput,
    /// The tokenizer.json (default: the checkpoint's own).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// The run's learner configuration: records render with its `template` and `assistant_tokens`,
    /// and rows take its `seq_len`, as the run's own evaluations do.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Only the records a run with this eval_fraction holds out (default: every trainable record).
    #[arg(long, value_name = "FRACTION")]
    pub held_out: Option<f64>,
    /// Tokens per packed row (default: the configuration's seq_len, 1024).
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Rows per forward pass.
    #[arg(long, default_value_t = 4)]
    pub micro_batch_rows: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Measures and prints the loss table (or JSON).
pub async fn run(args: EvalArgs) -> Result<()> {
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
    let device = crate::device::parse_device(&args.device).map_err(anyhow::Error::msg)?;
    let (_vs, mut model) = checkpoint::load_pretrained(&args.checkpoint, device)?;
    model.set_compute_kind(Precision::default_for(device).compute_kind());
    // A checkpoint of a run knows its step; a plain Hugging Face directory counts as step 0.
    let state = args.checkpoint.join(crate::train::TRAINER_STATE_FILE);
    let step = checkpoint::read_json_file::<crate::train::TrainerState>(&state).map(|s| s.step).unwrap_or(0);
    let result = eval::evaluate_rows(&model, &groups, args.micro_batch_rows, device, step)?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&result)?))
    } else {
        let head = format!("{} on {} of {read} records ({device:?})\n", args.checkpoint.display(), set.docs.len());
        emit(&format!("{head}{}", result.table()))
    }
}
