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
//! ## The service
//!
//! `agentmill-learner train` runs [`service::run`]: it reads the trajectory stream through a
//! consumer group ([`stream`]), renders ([`render`]), tokenizes ([`tokenize`]), mixes by a recipe
//! of stages ([`mix`]: env-pass ×3 by default, token budgets, loss mask), packs, trains on its own
//! thread, checkpoints, and acknowledges a record only once a checkpoint holds it — so every
//! record trains exactly once per run, across crashes ([`service::position`] has the argument).
//! Prometheus metrics ([`metrics`]), one progress line every `log_every` steps, and
//! `summary.json` at the end. Configuration: [`config`] (TOML + `AGENTMILL_*` + flags;
//! `deploy/config/learner.toml`).
//!
//! ```text
//! agentmill-learner train --redis-url redis://127.0.0.1:6379/ --output-dir runs/learner --until-idle 30
//! agentmill-learner export --input records.jsonl --tokenizer runs/learner/tokenizer.json --out shards/
//! agentmill-learner inspect-record records.jsonl --index 3 --tokenizer runs/learner/tokenizer.json --loss-mask assistant
//! ```
//!
//! Redis: the learner reads the stream `agentmill:trajectories` (`stream`; written by workers)
//! through the consumer group `learner` (`group`; created by the learner at its first start,
//! owned by that learner job; its lag is the workers' back-pressure signal). It never writes,
//! trims or deletes stream entries; it only acknowledges them (`XACK`). While it trains it
//! writes one key of its own, `<stream>:learner` (`agentmill:trajectories:learner` by default):
//! its status (an `agentmill_proto::stream::LearnerStatus` as JSON: step, tokens, tokens/s, loss,
//! LR, grad norm, MFU, records trained by kind, packing efficiency) every `status_interval`
//! (2 s) and once more with the final figures, `SET` with a 60 s expiry, which the coordinator
//! serves to `agentmill top` and the status page. The offline tools read with `XRANGE` and leave
//! the group alone.
//!
//! Modules: [`model`] (Qwen2 and its `config.json`), [`pack`], [`train`] (the step, its
//! batches and loss, resumable checkpoints), [`optim`] (AdamW), [`schedule`] (learning rate), [`checkpoint`]
//! (Hugging Face layout), [`seed`] (reproducible initialisation), [`device`] (what libtorch sees),
//! [`stream`] (the Redis consumer), [`render`] (records → text), [`tokenize`] (text → ids),
//! [`records`] (JSONL files of records), [`mix`], [`service`], [`config`], [`metrics`],
//! [`export`] (Megatron `.bin/.idx` and Parquet shards), [`inspect`] (views for people), [`eval`]
//! (held-out loss), [`commands`] (the bodies of `agentmill-learner`'s commands; its binary in
//! `src/bin/` parses flags and calls them). The benchmark is `benches/learner/` (`cargo bench`;
//! one file per section).

pub mod checkpoint;
pub mod commands;
pub mod config;
pub mod device;
pub mod eval;
pub mod export;
pub mod inspect;
pub mod metrics;
pub mod mix;
pub mod model;
pub mod optim;
pub mod pack;
pub mod records;
pub mod render;
pub mod schedule;
pub mod seed;
pub mod service;
pub mod stream;
pub mod tokenize;
pub mod train;
