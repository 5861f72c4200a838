//! agentmill's learner: the only crate that links libtorch.
//!
//! It consumes trajectory records from the Redis stream, renders and tokenizes them, packs them
//! into fixed-length sequences and mid-trains a Qwen2-architecture causal language model on the
//! GPU (bf16) or the CPU. See DESIGN §7 for the full contract; the modules land with the
//! Learner issue. Today this crate holds the device probe that `agentmill-learner doctor` prints.

pub mod device;
