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
//!
//! The files: this one holds the [`Trainer`] and its step; `batch.rs` the [`Batch`] a step
//! takes (packed rows on the device, with the loss groups); `loss.rs` the cross-entropy, its
//! backward and the evaluation loss ([`loss_sum`]); `state.rs` the checkpoint a run resumes
//! from ([`Trainer::save_checkpoint`], [`Trainer::resume`], [`TrainerState`]).

mod batch;
mod loss;
mod state;

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, TchError, Tensor, nn::VarStore};
use thiserror::Error;

use crate::checkpoint::{self, CheckpointError};
use crate::model::{DocumentAttention, ModelError, Qwen2Config, Qwen2ForCausalLM};
use crate::optim::{AdamW, AdamWConfig, OptimError};
use crate::schedule::LrSchedule;
use crate::seed;

pub use batch::{Batch, LOSS_GROUPS};
pub use loss::{loss_sum, token_loss_sum, token_losses};
pub use state::{OPTIMIZER_FILE, TRAINER_STATE_FILE, TRAINER_STATE_FORMAT, TrainerState};

use loss::{accumulate, backward_with, check_tokens, for_each_token_slice, loss_backward};

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
}
