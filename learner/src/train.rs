//! The training loop's core: one optimizer step over packed micro-batches, and checkpoints a
//! run resumes from on the same loss curve.
//!
//! A [`Trainer`] owns the model's variables, the [`AdamW`] optimizer and the learning-rate
//! schedule. [`Trainer::train_step`] takes the micro-batches of one global batch (gradient
//! accumulation is "pass several"), and for each: forward on packed rows (no attention across
//! documents), next-token cross-entropy over the labelled positions, backward. The loss is the
//! mean over *all target tokens of the step*, not a mean of per-micro-batch means, so the update
//! does not depend on how the batch was split. Then the global gradient norm is measured and
//! clipped, and AdamW steps with the schedule's rate.
//!
//! Precision: fp32 on the CPU; on CUDA, fp32 master weights with bf16 matrix products
//! ([`Precision::Bf16Mixed`], see [`crate::model::qwen2`]). The loss is always computed in fp32.
//!
//! A checkpoint ([`Trainer::save_checkpoint`]) is the Hugging Face layout plus
//! `optimizer.safetensors` (AdamW moments) and `trainer_state.json` (step, counters, the
//! training configuration and the caller's opaque data position). `trainer_state.json` is
//! written last and both tensor files record the step in their metadata, so a torn save is
//! detected on resume rather than trained on. No random-generator state is saved because none
//! is needed: only the initialisation draws random numbers (seeded by [`TrainConfig::seed`], which
//! the checkpoint records), and a step is a deterministic function of weights, moments and data.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tch::{Device, Kind, Reduction, TchError, Tensor, nn::VarStore};
use thiserror::Error;

use crate::checkpoint::{self, CheckpointError};
use crate::model::{DocumentAttention, ModelError, Qwen2Config, Qwen2ForCausalLM};
use crate::optim::{AdamW, AdamWConfig, OptimError};
use crate::pack::{IGNORE_INDEX, PAD_DOC_ID, PackedRow};
use crate::schedule::LrSchedule;
use crate::seed;

/// Optimizer moments inside a checkpoint directory.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Step, counters, configuration and data position inside a checkpoint directory.
pub const TRAINER_STATE_FILE: &str = "trainer_state.json";
/// The schema of [`TRAINER_STATE_FILE`].
pub const TRAINER_STATE_FORMAT: &str = "agentmill.trainer_state/v1";
/// Safetensors metadata key holding the step a tensor file was saved at.
const STEP_METADATA: &str = "agentmill_step";

/// Why training cannot go on.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Optimizer state could not be restored.
    #[error(transparent)]
    Optim(#[from] OptimError),
    /// libtorch refused an operation.
    #[error("{context}: {error}")]
    Torch {
        /// What was being done.
        context: String,
        /// libtorch's message.
        error: TchError,
    },
    /// The batch cannot be trained on.
    #[error("bad batch: {0}")]
    Batch(String),
    /// The loss or the gradient norm is NaN or infinite; the weights were left unchanged.
    #[error(
        "step {step}: loss {loss}, gradient norm {grad_norm}; the update was skipped and the weights are unchanged — lower the learning rate or resume from the last checkpoint"
    )]
    NonFinite {
        /// The step that failed (0-based).
        step: u64,
        /// The loss it measured.
        loss: f64,
        /// The gradient norm it measured.
        grad_norm: f64,
    },
    /// The checkpoint's files disagree or are of another kind.
    #[error("{path}: {message}")]
    State {
        /// The file at fault.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn torch_err(context: impl Into<String>) -> impl FnOnce(TchError) -> TrainError {
    let context = context.into();
    move |error| TrainError::Torch { context, error }
}

/// Which dtypes the step computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in fp32 (the CPU default, and the reference).
    Fp32,
    /// fp32 weights and optimizer, bf16 matrix products (the CUDA default).
    Bf16Mixed,
}

impl Precision {
    /// bf16 mixed precision on CUDA, fp32 elsewhere.
    pub fn default_for(device: Device) -> Precision {
        if device.is_cuda() { Precision::Bf16Mixed } else { Precision::Fp32 }
    }

    /// The dtype of the matrix products.
    pub fn compute_kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16Mixed => Kind::BFloat16,
        }
    }
}

/// Everything that shapes the optimisation, saved in every checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Seeds the weight initialisation.
    pub seed: u64,
    /// Learning rate per step.
    pub schedule: LrSchedule,
    /// AdamW's hyper-parameters.
    pub adamw: AdamWConfig,
    /// Gradients are rescaled when their global L2 norm exceeds this (0 = never).
    pub max_grad_norm: f64,
    /// Dtypes of the step.
    pub precision: Precision,
}

impl TrainConfig {
    /// The paper's mid-training optimisation for `total_steps` steps on `device`: AdamW
    /// (β 0.9/0.95, weight decay 0.1), peak 8e-5, 5% warmup, cosine to 10%, clipping at 1.0.
    pub fn paper(total_steps: u64, device: Device) -> TrainConfig {
        TrainConfig {
            seed: 0,
            schedule: LrSchedule::paper(total_steps),
            adamw: AdamWConfig::default(),
            max_grad_norm: 1.0,
            precision: Precision::default_for(device),
        }
    }
}

/// How a step trades compute for memory. It changes where activations live, not what the step
/// computes (the losses and gradients are those of the plain step, to float rounding), so it is
/// not part of [`TrainConfig`] and a resumed run may pick another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryPlan {
    /// Keep only each decoder layer's input during the forward pass and recompute the layer
    /// during the backward pass: activation memory of one layer instead of all of them, for
    /// about a third more compute.
    pub activation_checkpointing: bool,
    /// Run the final norm, the LM head and the loss on this many tokens at a time, so the
    /// `[tokens, vocab]` logits of a whole micro-batch never exist at once (0: all at once).
    pub loss_chunk_tokens: usize,
}

/// A micro-batch on the device: `[rows, seq_len]` int64 tensors built from packed rows.
#[derive(Debug)]
pub struct Batch {
    /// Token ids.
    pub input_ids: Tensor,
    /// Positions inside each document.
    pub position_ids: Tensor,
    /// Document ids within each row ([`PAD_DOC_ID`] for padding).
    pub doc_ids: Tensor,
    /// Next-token targets, [`IGNORE_INDEX`] where there is none.
    pub labels: Tensor,
    max_token_id: i64,
    target_tokens: u64,
    real_tokens: u64,
    /// Per token, the group its document belongs to (`0..LOSS_GROUPS`; `LOSS_GROUPS` for
    /// padding), flattened, when the loss is to be reported by group.
    groups: Option<Tensor>,
    /// Target tokens per group.
    targets_by_group: [u64; LOSS_GROUPS],
}

/// Groups a step's loss can be reported by (the service uses the mixing sources, in
/// [`crate::mix::Source::ALL`] order).
pub const LOSS_GROUPS: usize = 3;

impl Batch {
    /// Stacks packed rows (all of one length) into a batch on `device`.
    pub fn from_rows(rows: &[PackedRow], device: Device) -> Result<Batch, TrainError> {
        let Some(first) = rows.first() else {
            return Err(TrainError::Batch("no rows".to_string()));
        };
        let seq_len = first.input_ids.len();
        let mut fields: [Vec<i64>; 4] = std::array::from_fn(|_| Vec::with_capacity(rows.len() * seq_len));
        for (i, row) in rows.iter().enumerate() {
            let parts = [&row.input_ids, &row.position_ids, &row.doc_ids, &row.labels];
            if let Some(bad) = parts.iter().find(|p| p.len() != seq_len) {
                return Err(TrainError::Batch(format!(
                    "row {i} has a field of {} tokens but row 0 has {seq_len}; pack every row to the same seq_len",
                    bad.len()
                )));
            }
            for (field, part) in fields.iter_mut().zip(parts) {
                field.extend_from_slice(part);
            }
        }
        let [input_ids, position_ids, doc_ids, labels] = &fields;
        let max_token_id = input_ids.iter().copied().max().unwrap_or(0);
        let min_token_id = input_ids.iter().copied().min().unwrap_or(0);
        if min_token_id < 0 {
            return Err(TrainError::Batch(format!("token id {min_token_id} is negative")));
        }
        let target_tokens = labels.iter().filter(|&&l| l != IGNORE_INDEX).count() as u64;
        let real_tokens = doc_ids.iter().filter(|&&d| d != PAD_DOC_ID).count() as u64;
        let shape = [rows.len() as i64, seq_len as i64];
        let upload =
            |v: &Vec<i64>| -> Result<Tensor, TchError> { Tensor::f_from_slice(v)?.f_view(shape)?.f_to(device) };
        let to_device = |v: &Vec<i64>, name: &str| upload(v).map_err(torch_err(format!("uploading {name}")));
        Ok(Batch {
            input_ids: to_device(input_ids, "input_ids")?,
            position_ids: to_device(position_ids, "position_ids")?,
            doc_ids: to_device(doc_ids, "doc_ids")?,
            labels: to_device(labels, "labels")?,
            max_token_id,
            target_tokens,
            real_tokens,
            groups: None,
            targets_by_group: [0; LOSS_GROUPS],
        })
    }

    /// [`Batch::from_rows`] with the loss reported by group: `groups[r][d]` (below
    /// [`LOSS_GROUPS`]) is the group of document `d` of row `r`.
    pub fn from_rows_grouped(rows: &[PackedRow], groups: &[Vec<usize>], device: Device) -> Result<Batch, TrainError> {
        let mut batch = Batch::from_rows(rows, device)?;
        if groups.len() != rows.len() {
            return Err(TrainError::Batch(format!("{} rows but groups for {}", rows.len(), groups.len())));
        }
        let mut ids = Vec::with_capacity(rows.len() * rows.first().map_or(0, |r| r.doc_ids.len()));
        for (i, (row, docs)) in rows.iter().zip(groups).enumerate() {
            for (&doc, &label) in row.doc_ids.iter().zip(&row.labels) {
                let group = if doc == PAD_DOC_ID {
                    LOSS_GROUPS
                } else {
                    match usize::try_from(doc).ok().and_then(|d| docs.get(d)) {
                        Some(&g) if g < LOSS_GROUPS => g,
                        _ => {
                            return Err(TrainError::Batch(format!(
                                "row {i}: document {doc} has no group below {LOSS_GROUPS} in {docs:?}"
                            )));
                        }
                    }
                };
                if group < LOSS_GROUPS && label != IGNORE_INDEX {
                    batch.targets_by_group[group] += 1;
                }
                ids.push(group as i64);
            }
        }
        let upload = Tensor::f_from_slice(&ids).and_then(|t| t.f_to(device));
        batch.groups = Some(upload.map_err(torch_err("uploading the token groups"))?);
        Ok(batch)
    }

    /// Positions that contribute to the loss.
    pub fn target_tokens(&self) -> u64 {
        self.target_tokens
    }

    /// Tokens that are not padding.
    pub fn real_tokens(&self) -> u64 {
        self.real_tokens
    }
}

/// Sum of next-token cross-entropy (fp32) over positions whose label is not [`IGNORE_INDEX`].
pub fn token_loss_sum(logits: &Tensor, labels: &Tensor) -> Result<Tensor, TchError> {
    cross_entropy(logits, labels, Reduction::Sum)
}

/// Next-token cross-entropy (fp32) of every position, flattened; 0 where the label is
/// [`IGNORE_INDEX`].
pub fn token_losses(logits: &Tensor, labels: &Tensor) -> Result<Tensor, TchError> {
    cross_entropy(logits, labels, Reduction::None)
}

fn cross_entropy(logits: &Tensor, labels: &Tensor, reduction: Reduction) -> Result<Tensor, TchError> {
    let vocab = logits.size().last().copied().unwrap_or(0);
    let flat = logits.f_to_kind(Kind::Float)?.f_reshape([-1, vocab])?;
    flat.f_cross_entropy_loss(&labels.f_reshape([-1])?, None::<&Tensor>, reduction, IGNORE_INDEX, 0.0)
}

/// The loss of `logits` against `labels` divided by `targets`, backward; returns the detached
/// sum and, with `groups` (one per token, flattened), the sums binned by group.
fn loss_backward(
    logits: &Tensor,
    labels: &Tensor,
    groups: Option<&Tensor>,
    targets: u64,
) -> Result<(Tensor, Option<Tensor>), TchError> {
    let (sum, bins) = match groups {
        None => (token_loss_sum(logits, labels)?, None),
        Some(groups) => {
            // The same cross-entropy, kept per token (0 where ignored), then binned.
            let per_token = token_losses(logits, labels)?;
            let bins = Tensor::f_zeros([LOSS_GROUPS as i64 + 1], (Kind::Float, per_token.device()))?
                .f_index_add(0, groups, &per_token.f_detach()?)?;
            (per_token.f_sum(Kind::Float)?, Some(bins))
        }
    };
    // Dividing by the step's target count makes the accumulated gradient that of the mean over
    // all targets, however the batch was split.
    sum.f_div_scalar(targets as f64)?.f_backward()?;
    Ok((sum.f_detach()?, bins))
}

/// Backward from `output` with `grad` as its incoming gradient (`output.backward(grad)`).
fn backward_with(output: &Tensor, grad: &Tensor) -> Result<(), TchError> {
    output.f_mul(grad)?.f_sum(Kind::Float)?.f_backward()
}

fn accumulate(acc: Option<Tensor>, t: Tensor) -> Result<Tensor, TrainError> {
    match acc {
        Some(acc) => acc.f_add(&t).map_err(torch_err("accumulating the loss")),
        None => Ok(t),
    }
}

/// Runs the model's head on `hidden` (`[B, T, hidden]`) `chunk` tokens at a time (flattened
/// across rows) and hands each slice's logits, labels and groups to `each`.
fn for_each_token_slice(
    model: &Qwen2ForCausalLM,
    hidden: &Tensor,
    labels: &Tensor,
    groups: Option<&Tensor>,
    chunk: i64,
    mut each: impl FnMut(Tensor, Tensor, Option<Tensor>) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let width = hidden.size().last().copied().unwrap_or(0);
    let flat = hidden.f_reshape([-1, width]).map_err(torch_err("flattening the hidden states"))?;
    let labels = labels.f_reshape([-1]).map_err(torch_err("flattening the labels"))?;
    let tokens = labels.size()[0];
    let chunk = chunk.clamp(1, tokens.max(1));
    for start in (0..tokens).step_by(chunk as usize) {
        let len = chunk.min(tokens - start);
        let slice = |t: &Tensor| t.f_narrow(0, start, len).map_err(torch_err("slicing the tokens"));
        let logits = model.head(&slice(&flat)?)?;
        each(logits, slice(&labels)?, groups.map(slice).transpose()?)?;
    }
    Ok(())
}

fn check_tokens(model: &Qwen2ForCausalLM, batch: &Batch) -> Result<(), TrainError> {
    let vocab = model.config().vocab_size as i64;
    if batch.max_token_id >= vocab {
        return Err(TrainError::Batch(format!(
            "token id {} is outside the model's vocabulary of {vocab}; the tokenizer and config.json disagree",
            batch.max_token_id
        )));
    }
    Ok(())
}

/// Tokens whose logits [`loss_sum`] holds at once.
const EVAL_CHUNK_TOKENS: i64 = 4096;

/// Sum of `model`'s next-token loss over `batch`'s target tokens, without gradients (0 when the
/// batch has none).
pub fn loss_sum(model: &Qwen2ForCausalLM, batch: &Batch) -> Result<f64, TrainError> {
    check_tokens(model, batch)?;
    if batch.target_tokens == 0 {
        return Ok(0.0);
    }
    let sum = tch::no_grad(|| -> Result<Tensor, TrainError> {
        // The head runs on slices of the tokens: without a graph, only one slice's logits exist.
        let hidden = model.hidden_states(&batch.input_ids, &batch.position_ids, Some(&batch.doc_ids))?;
        let mut sum = None;
        for_each_token_slice(model, &hidden, &batch.labels, None, EVAL_CHUNK_TOKENS, |logits, labels, _| {
            let s = token_loss_sum(&logits, &labels).map_err(torch_err("computing the loss"))?;
            sum = Some(accumulate(sum.take(), s)?);
            Ok(())
        })?;
        sum.ok_or_else(|| TrainError::Batch("a batch without tokens".to_string()))
    })?;
    sum.f_double_value(&[]).map_err(torch_err("reading the loss"))
}

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Steps completed, this one included.
    pub step: u64,
    /// Mean next-token loss over the step's target tokens (before the update).
    pub loss: f64,
    /// Learning rate the update used.
    pub lr: f64,
    /// Global gradient L2 norm before clipping.
    pub grad_norm: f64,
    /// Whether the gradients were rescaled.
    pub clipped: bool,
    /// Positions that contributed to the loss.
    pub target_tokens: u64,
    /// Real (non-padding) tokens processed.
    pub tokens: u64,
    /// Mean loss of each group's target tokens, when the batches were grouped
    /// ([`Batch::from_rows_grouped`]) and the group had targets in this step.
    pub loss_by_group: [Option<f64>; LOSS_GROUPS],
}

/// What `trainer_state.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Always [`TRAINER_STATE_FORMAT`].
    pub format: String,
    /// Optimizer steps completed.
    pub step: u64,
    /// Real tokens trained on so far.
    pub tokens_seen: u64,
    /// Target tokens trained on so far.
    pub target_tokens_seen: u64,
    /// The optimisation's configuration.
    pub train: TrainConfig,
    /// Where the caller's data stream stood (opaque to the trainer; e.g. stream ids).
    pub data_position: Value,
}

/// The model, its optimizer and where the run stands.
#[derive(Debug)]
pub struct Trainer {
    vs: VarStore,
    model: Qwen2ForCausalLM,
    optimizer: AdamW,
    config: TrainConfig,
    memory: MemoryPlan,
    step: u64,
    tokens_seen: u64,
    target_tokens_seen: u64,
}

impl Trainer {
    /// A freshly initialised model (seeded by `config.seed`) on `device`.
    pub fn new(model_config: &Qwen2Config, config: TrainConfig, device: Device) -> Result<Trainer, TrainError> {
        let vs = VarStore::new(device);
        let model = seed::with_seed(config.seed, || Qwen2ForCausalLM::new(&vs.root(), model_config))?;
        Trainer::assemble(vs, model, config)
    }

    /// Continues training the Hugging Face checkpoint in `dir` (weights only; a fresh optimizer).
    pub fn from_pretrained(dir: &Path, config: TrainConfig, device: Device) -> Result<Trainer, TrainError> {
        let (vs, model) = checkpoint::load_pretrained(dir, device)?;
        Trainer::assemble(vs, model, config)
    }

    fn assemble(vs: VarStore, mut model: Qwen2ForCausalLM, config: TrainConfig) -> Result<Trainer, TrainError> {
        model.set_compute_kind(config.precision.compute_kind());
        let optimizer = AdamW::new(&vs, config.adamw).map_err(torch_err("creating the optimizer"))?;
        Ok(Trainer { vs, model, optimizer, config, memory: MemoryPlan::default(), step: 0, tokens_seen: 0, target_tokens_seen: 0 })
    }

    /// The model being trained.
    pub fn model(&self) -> &Qwen2ForCausalLM {
        &self.model
    }

    /// The model's variables, named as in transformers.
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &AdamW {
        &self.optimizer
    }

    /// The optimisation's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// How the model keeps packed documents apart (per-document spans by default).
    pub fn set_document_attention(&mut self, how: DocumentAttention) {
        self.model.set_document_attention(how);
    }

    /// How steps trade compute for memory (the plain step by default).
    pub fn memory_plan(&self) -> MemoryPlan {
        self.memory
    }

    /// Makes the following steps use `plan`.
    pub fn set_memory_plan(&mut self, plan: MemoryPlan) {
        self.memory = plan;
    }

    /// Optimizer steps completed.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Real tokens trained on so far.
    pub fn tokens_seen(&self) -> u64 {
        self.tokens_seen
    }

    /// Mean next-token loss over `batch`'s target tokens, without touching gradients.
    pub fn evaluate(&self, batch: &Batch) -> Result<f64, TrainError> {
        if batch.target_tokens == 0 {
            return Err(TrainError::Batch("the batch has no target tokens".to_string()));
        }
        Ok(loss_sum(&self.model, batch)? / batch.target_tokens as f64)
    }

    /// One optimizer step over the micro-batches of one global batch (gradient accumulation).
    pub fn train_step(&mut self, micro_batches: &[Batch]) -> Result<StepStats, TrainError> {
        if micro_batches.is_empty() {
            return Err(TrainError::Batch("train_step needs at least one micro-batch".to_string()));
        }
        for batch in micro_batches {
            check_tokens(&self.model, batch)?;
        }
        let targets: u64 = micro_batches.iter().map(|b| b.target_tokens).sum();
        if targets == 0 {
            return Err(TrainError::Batch(
                "no micro-batch has a target token (every label is ignored); check the loss mask".to_string(),
            ));
        }
        let lr = self.config.schedule.lr_at(self.step);
        // Zeroed here only, not again after the update: one pass over the gradients per step.
        self.optimizer.zero_grad();
        let mut loss_sum: Option<Tensor> = None;
        // Loss sums per group (and one bin for padding), when the batches carry groups.
        let mut group_sums: Option<Tensor> = None;
        for (i, batch) in micro_batches.iter().enumerate() {
            let (sum, bins) = self.micro_batch_backward(batch, targets, i)?;
            loss_sum = Some(accumulate(loss_sum.take(), sum)?);
            if let Some(bins) = bins {
                group_sums = Some(accumulate(group_sums.take(), bins)?);
            }
        }
        let loss_sum = loss_sum.map(|t| t.f_double_value(&[])).transpose().map_err(torch_err("reading the loss"))?;
        let loss = loss_sum.unwrap_or(f64::NAN) / targets as f64;
        let mut loss_by_group = [None; LOSS_GROUPS];
        if let Some(sums) = group_sums {
            let sums = Vec::<f64>::try_from(sums.f_to_kind(Kind::Double).map_err(torch_err("reading the group losses"))?)
                .map_err(torch_err("reading the group losses"))?;
            for (g, slot) in loss_by_group.iter_mut().enumerate() {
                let n: u64 = micro_batches.iter().map(|b| b.targets_by_group[g]).sum();
                *slot = (n > 0).then(|| sums[g] / n as f64);
            }
        }
        let grad_norm =
            self.optimizer.clip_grad_norm(self.config.max_grad_norm).map_err(torch_err("clipping gradients"))?;
        if !loss.is_finite() || !grad_norm.is_finite() {
            self.optimizer.zero_grad();
            return Err(TrainError::NonFinite { step: self.step, loss, grad_norm });
        }
        self.optimizer.step(lr).map_err(torch_err("AdamW update"))?;
        let tokens: u64 = micro_batches.iter().map(|b| b.real_tokens).sum();
        tracing::debug!(step = self.step + 1, loss, lr, grad_norm, tokens, targets, "optimizer step");
        self.step += 1;
        self.tokens_seen += tokens;
        self.target_tokens_seen += targets;
        Ok(StepStats {
            step: self.step,
            loss,
            lr,
            grad_norm,
            clipped: self.config.max_grad_norm > 0.0 && grad_norm > self.config.max_grad_norm,
            target_tokens: targets,
            tokens,
            loss_by_group,
        })
    }

    /// Forward and backward of one micro-batch, its loss divided by the step's `targets` so
    /// the accumulated gradient is that of the step's mean. Returns the loss sum and, for a
    /// grouped batch, the sums per group (both detached).
    fn micro_batch_backward(
        &self,
        batch: &Batch,
        targets: u64,
        index: usize,
    ) -> Result<(Tensor, Option<Tensor>), TrainError> {
        let context = || format!("loss and backward of micro-batch {index}");
        let plan = self.memory;
        if plan == MemoryPlan::default() {
            let logits = self.model.forward(&batch.input_ids, &batch.position_ids, Some(&batch.doc_ids))?;
            return loss_backward(&logits, &batch.labels, batch.groups.as_ref(), targets).map_err(torch_err(context()));
        }
        let model = &self.model;
        let layers = model.num_layers();
        let layer_context = model.prepare(&batch.input_ids, &batch.position_ids, Some(&batch.doc_ids))?;
        let embedded = model.embed(&batch.input_ids)?;
        // With checkpointing, the layers run without a graph and only each layer's input is kept;
        // otherwise the graph of every layer is kept, as in the plain step.
        let mut layer_inputs = Vec::with_capacity(if plan.activation_checkpointing { layers } else { 0 });
        let hidden = if plan.activation_checkpointing {
            tch::no_grad(|| -> Result<Tensor, TrainError> {
                let mut h = embedded.f_detach().map_err(torch_err("detaching the embeddings"))?;
                for i in 0..layers {
                    let next = model.layer(i, &h, &layer_context)?;
                    layer_inputs.push(h);
                    h = next;
                }
                Ok(h)
            })?
        } else {
            let mut h = embedded.shallow_clone();
            for i in 0..layers {
                h = model.layer(i, &h, &layer_context)?;
            }
            h
        };
        // The head and the loss run on slices of the tokens, each slice's backward right after
        // its forward, so one slice's logits exist at a time; their gradients gather on a leaf
        // standing in for the last layer's output.
        let leaf = hidden.f_detach().map_err(torch_err("detaching the hidden states"))?.set_requires_grad(true);
        let chunk = if plan.loss_chunk_tokens == 0 { i64::MAX } else { plan.loss_chunk_tokens as i64 };
        let (mut sum, mut bins) = (None, None);
        for_each_token_slice(model, &leaf, &batch.labels, batch.groups.as_ref(), chunk, |logits, labels, groups| {
            let (s, b) = loss_backward(&logits, &labels, groups.as_ref(), targets).map_err(torch_err(context()))?;
            sum = Some(accumulate(sum.take(), s)?);
            if let Some(b) = b {
                bins = Some(accumulate(bins.take(), b)?);
            }
            Ok(())
        })?;
        let mut grad = leaf.grad();
        if plan.activation_checkpointing {
            // Backward through the layers, last first: recompute layer i from its saved input
            // (now a leaf), push the incoming gradient through it, and take its input's gradient.
            for (i, input) in layer_inputs.into_iter().enumerate().rev() {
                let input = input.set_requires_grad(true);
                let output = model.layer(i, &input, &layer_context)?;
                backward_with(&output, &grad).map_err(torch_err(format!("backward of model.layers.{i}")))?;
                grad = input.grad();
            }
        }
        let rest = if plan.activation_checkpointing { &embedded } else { &hidden };
        backward_with(rest, &grad).map_err(torch_err(context()))?;
        let sum = sum.ok_or_else(|| TrainError::Batch("a micro-batch without tokens".to_string()))?;
        Ok((sum, bins))
    }

    /// Writes a checkpoint to `dir`: the Hugging Face layout (loads in transformers), the
    /// optimizer moments, and `trainer_state.json` with `data_position` (written last).
    pub fn save_checkpoint(&self, dir: &Path, data_position: &Value) -> Result<(), TrainError> {
        let metadata = BTreeMap::from([(STEP_METADATA.to_string(), self.step.to_string())]);
        checkpoint::save_pretrained_with_metadata(dir, self.model.config(), &self.vs, &metadata)?;
        checkpoint::write_tensors(&dir.join(OPTIMIZER_FILE), &self.optimizer.state_tensors(), &metadata)?;
        let state = TrainerState {
            format: TRAINER_STATE_FORMAT.to_string(),
            step: self.step,
            tokens_seen: self.tokens_seen,
            target_tokens_seen: self.target_tokens_seen,
            train: self.config,
            data_position: data_position.clone(),
        };
        checkpoint::write_json_file(&dir.join(TRAINER_STATE_FILE), &state)?;
        Ok(())
    }

    /// Rebuilds the trainer saved in `dir` on `device` and returns it with the saved data
    /// position: the next [`Trainer::train_step`] continues the saved run's loss curve.
    pub fn resume(dir: &Path, device: Device) -> Result<(Trainer, Value), TrainError> {
        let state_path = dir.join(TRAINER_STATE_FILE);
        let state: TrainerState = checkpoint::read_json_file(&state_path)?;
        if state.format != TRAINER_STATE_FORMAT {
            return Err(TrainError::State {
                path: state_path,
                message: format!("format is {:?}, expected {TRAINER_STATE_FORMAT:?}", state.format),
            });
        }
        let (vs, model) = checkpoint::load_pretrained(dir, device)?;
        let mut trainer = Trainer::assemble(vs, model, state.train)?;
        let optimizer_path = dir.join(OPTIMIZER_FILE);
        let (moments, optimizer_meta) = checkpoint::read_tensors(&optimizer_path)?;
        let weights_meta = checkpoint::read_metadata(&dir.join(checkpoint::WEIGHTS_FILE))?;
        for (path, meta) in [(&optimizer_path, &optimizer_meta), (&dir.join(checkpoint::WEIGHTS_FILE), &weights_meta)] {
            let saved = meta.get(STEP_METADATA).and_then(|s| s.parse::<u64>().ok());
            if saved != Some(state.step) {
                return Err(TrainError::State {
                    path: path.clone(),
                    message: format!(
                        "saved at step {saved:?} but {TRAINER_STATE_FILE} says step {}; the checkpoint was torn by an interrupted save — resume from an earlier one",
                        state.step
                    ),
                });
            }
        }
        let moments = moments
            .into_iter()
            .map(|(name, t)| t.f_to(device).map(|t| (name, t)))
            .collect::<Result<_, _>>()
            .map_err(torch_err("moving optimizer state to the device"))?;
        trainer.optimizer.load_state(moments, state.step)?;
        trainer.step = state.step;
        trainer.tokens_seen = state.tokens_seen;
        trainer.target_tokens_seen = state.target_tokens_seen;
        Ok((trainer, state.data_position))
    }
}
