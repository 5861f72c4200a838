//! Counting tokens for the length filter: a Hugging Face `tokenizer.json` ([`HfTokenCounter`]),
//! or a cheap estimate ([`ApproxTokenCounter`]) when no tokenizer is at hand.

use std::path::Path;

use crate::synth::SynthError;

/// Counts the tokens of a text.
pub trait TokenCounter: Send + Sync {
    /// Tokens in `text`, special tokens not added.
    fn count(&self, text: &str) -> usize;
    /// A name for reports (`approx`, or the tokenizer file).
    fn name(&self) -> &str;
}

/// An **approximate** counter: UTF-8 bytes divided by a bytes-per-token ratio, rounded up.
///
/// The default ratio, 3.2, is a little below what BPE tokenizers of code models (Qwen2.5's, for
/// one) get on source code and English prose (about 3.5–4 bytes a token), so the estimate errs
/// towards more tokens and a length filter built on it drops a little too much rather than
/// letting over-long samples through. Use [`HfTokenCounter`] for exact counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApproxTokenCounter {
    /// UTF-8 bytes per token.
    pub bytes_per_token: f64,
}

impl Default for ApproxTokenCounter {
    fn default() -> Self {
        ApproxTokenCounter { bytes_per_token: 3.2 }
    }
}

impl TokenCounter for ApproxTokenCounter {
    fn count(&self, text: &str) -> usize {
        let ratio = if self.bytes_per_token > 0.0 { self.bytes_per_token } else { 1.0 };
        (text.len() as f64 / ratio).ceil() as usize
    }

    fn name(&self) -> &str {
        "approx"
    }
}

/// Exact counts from any Hugging Face `tokenizer.json` (e.g. Qwen2.5's), through the `tokenizers`
/// crate.
pub struct HfTokenCounter {
    tokenizer: tokenizers::Tokenizer,
    name: String,
    fallback: ApproxTokenCounter,
}

impl std::fmt::Debug for HfTokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenCounter").field("name", &self.name).finish_non_exhaustive()
    }
}

impl HfTokenCounter {
    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<HfTokenCounter, SynthError> {
        let tokenizer = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| SynthError::Tokenizer { path: path.display().to_string(), reason: e.to_string() })?;
        Ok(HfTokenCounter { tokenizer, name: path.display().to_string(), fallback: ApproxTokenCounter::default() })
    }

    /// Wraps an already built tokenizer.
    pub fn new(tokenizer: tokenizers::Tokenizer, name: impl Into<String>) -> HfTokenCounter {
        HfTokenCounter { tokenizer, name: name.into(), fallback: ApproxTokenCounter::default() }
    }
}

impl TokenCounter for HfTokenCounter {
    fn count(&self, text: &str) -> usize {
        match self.tokenizer.encode(text, false) {
            Ok(enc) => enc.len(),
            Err(e) => {
                // Encoding a plain string only fails on a broken tokenizer; say so and keep going
                // on the conservative estimate rather than losing the row.
                tracing::warn!(tokenizer = %self.name, error = %e, "tokenizer failed; using the approximate count");
                self.fallback.count(text)
            }
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}
