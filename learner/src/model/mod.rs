//! The model the learner trains: the Qwen2 architecture and its Hugging Face configuration.

pub mod config;
pub mod qwen2;

pub use config::{ConfigError, Qwen2Config, TokenIds};
pub use qwen2::{DocumentAttention, LayerContext, ModelError, Qwen2ForCausalLM, document_causal_mask};
