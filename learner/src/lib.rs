//! agentmill's learner: the only crate that links libtorch.
//!
//! It mid-trains a Qwen2-architecture causal language model on agent trajectories (DESIGN §7):
//! tokenized documents are [packed](pack) into fixed-length rows where no token attends across
//! a document boundary, the [model] runs on the GPU (bf16 mixed precision) or the CPU
//! (fp32), the [trainer](train) takes AdamW steps with warmup + cosine, clipping and gradient
//! accumulation, and [checkpoints](checkpoint) are Hugging Face directories (`config.json` +
//! `model.safetensors`) that `transformers` loads, plus the optimizer state a run resumes from.
//! Records arrive from Redis through a consumer group ([`stream`]), become text by the paper's
//! conversion ([`render`]) and token ids by any Hugging Face `tokenizer.json` ([`tokenize`]).
//!
//! ```no_run
//! use agentmill_learner::model::Qwen2Config;
//! use agentmill_learner::pack::{pack, Document, LossMask, PackConfig};
//! use agentmill_learner::train::{Batch, TrainConfig, Trainer};
//! use tch::Device;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::cuda_if_available();
//! let docs = vec![Document::new(vec![1, 2, 3, 4]), Document::new(vec![5, 6, 7])];
//! let packed = pack(&docs, PackConfig { seq_len: 2048, pad_id: 0, loss_mask: LossMask::None })?;
//! println!("packing efficiency {:.3}", packed.stats.efficiency());
//!
//! let mut trainer = Trainer::new(&Qwen2Config::tiny(), TrainConfig::paper(1000, device), device)?;
//! let batch = Batch::from_rows(&packed.rows, device)?;
//! let stats = trainer.train_step(&[batch])?; // several batches = gradient accumulation
//! println!("step {} loss {:.4} grad norm {:.3}", stats.step, stats.loss, stats.grad_norm);
//! trainer.save_checkpoint("ckpt/step-1".as_ref(), &serde_json::json!({"stream_id": "0-1"}))?;
//! let (_trainer, _position) = Trainer::resume("ckpt/step-1".as_ref(), device)?;
//! # Ok(())
//! # }
//! ```
//!
//! Modules: [`model`] (Qwen2 and its `config.json`), [`pack`], [`train`] (the step and
//! resumable checkpoints), [`optim`] (AdamW), [`schedule`] (learning rate), [`checkpoint`]
//! (Hugging Face layout), [`seed`] (reproducible initialisation), [`device`] (what libtorch sees),
//! [`stream`] (the Redis consumer), [`render`] (records → text), [`tokenize`] (text → ids).

pub mod checkpoint;
pub mod device;
pub mod model;
pub mod optim;
pub mod pack;
pub mod render;
pub mod schedule;
pub mod seed;
pub mod stream;
pub mod tokenize;
pub mod train;
