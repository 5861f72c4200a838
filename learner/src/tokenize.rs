//! Tokenization with Hugging Face `tokenizers`: any `tokenizer.json` (Qwen2.5's among them),
//! or a byte-level BPE trained here on the corpus itself for the embedded default.
//!
//! [`TextTokenizer::encode_with_mask`] turns a [`Rendered`] record into token ids plus a per-token
//! flag "inside an assistant span", using the tokenizer's byte offsets, so the `assistant` loss
//! mask marks exactly the tokens the model produced.

use std::path::Path;

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

use agentmill_proto::TrajectoryRecord;

use crate::render::{Rendered, Template, render};

/// The special tokens of the ChatML template, added to every trained tokenizer.
pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Why a tokenizer could not be loaded, trained or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    /// The file is not a tokenizer.json.
    #[error(
        "{path}: not a Hugging Face tokenizer.json ({reason}); pass a tokenizer.json or train one with `agentmill-learner tokenizer train`"
    )]
    Load {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Training or encoding failed.
    #[error("tokenizer: {0}")]
    Tokenizers(String),
}

/// Token ids and, for each, whether it is trained (the assistant mask).
pub type MaskedTokens = (Vec<u32>, Vec<bool>);

/// A tokenizer with the ids the learner needs.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// Id appended after each document (end of text).
    pub eos_id: u32,
    /// Id used to pad packed rows.
    pub pad_id: u32,
}

impl TextTokenizer {
    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<TextTokenizer, TokenizeError> {
        let inner = Tokenizer::from_file(path)
            .map_err(|e| TokenizeError::Load { path: path.display().to_string(), reason: e.to_string() })?;
        Ok(Self::wrap(inner))
    }

    fn wrap(inner: Tokenizer) -> TextTokenizer {
        let eos_id = ["<|endoftext|>", "<|im_end|>", "</s>"].iter().find_map(|t| inner.token_to_id(t)).unwrap_or(0);
        TextTokenizer { inner, eos_id, pad_id: eos_id }
    }

    /// Trains a byte-level BPE of `vocab_size` on `texts` (deterministic for the same input).
    pub fn train<'a>(texts: impl Iterator<Item = &'a str>, vocab_size: usize) -> Result<TextTokenizer, TokenizeError> {
        let err = |e: tokenizers::Error| TokenizeError::Tokenizers(e.to_string());
        let specials: Vec<AddedToken> = SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)).collect();
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(specials.clone())
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut tokenizer = TokenizerBuilder::new()
            .with_model(BPE::default())
            .with_normalizer(Some(NFC))
            .with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)))
            .with_post_processor(Some(ByteLevel::default().trim_offsets(false)))
            .with_decoder(Some(ByteLevel::default()))
            .build()
            .map_err(err)?;
        // Special tokens are matched before the model sees the text, so templates cost one id each.
        tokenizer.add_special_tokens(specials.clone()).map_err(err)?;
        let owned: Vec<String> = texts.map(str::to_string).collect();
        tokenizer.train(&mut trainer, owned.into_iter()).map_err(err)?;
        Ok(Self::wrap(tokenizer.into()))
    }

    /// Trains a byte-level BPE on the rendered text of the trainable records among `records`
    /// (infra failures and cancelled episodes are left out, as the learner leaves them out).
    pub fn train_on_records<'a>(
        records: impl Iterator<Item = &'a TrajectoryRecord>,
        template: Template,
        vocab_size: usize,
    ) -> Result<TextTokenizer, TokenizeError> {
        let texts: Vec<String> = records.filter_map(|r| render(r, template)).map(|r| r.text).collect();
        if texts.is_empty() {
            return Err(TokenizeError::Tokenizers(
                "no trainable record to learn a vocabulary from; give records with episodes or PRs, or a tokenizer.json".into(),
            ));
        }
        TextTokenizer::train(texts.iter().map(String::as_str), vocab_size)
    }

    /// Saves as `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<(), TokenizeError> {
        self.inner.save(path, false).map_err(|e| TokenizeError::Tokenizers(e.to_string()))
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of a text (no special handling beyond the tokenizer's own).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        let enc = self.inner.encode(text, false).map_err(|e| TokenizeError::Tokenizers(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of a rendered record followed by end-of-text, and for each token whether it lies
    /// in an assistant span (the end-of-text token counts as the model's when the record ends in
    /// an assistant turn).
    pub fn encode_with_mask(&self, rendered: &Rendered) -> Result<(Vec<u32>, Vec<bool>), TokenizeError> {
        let enc =
            self.inner.encode(rendered.text.as_str(), false).map_err(|e| TokenizeError::Tokenizers(e.to_string()))?;
        Ok(self.with_mask(&enc, rendered))
    }

    /// [`TextTokenizer::encode_with_mask`] for many records at once, encoded in parallel on the
    /// tokenizers crate's thread pool (what a feeder uses for a batch read from the stream).
    pub fn encode_batch_with_mask(&self, rendered: &[Rendered]) -> Result<Vec<MaskedTokens>, TokenizeError> {
        let texts: Vec<&str> = rendered.iter().map(|r| r.text.as_str()).collect();
        let encs = self.inner.encode_batch(texts, false).map_err(|e| TokenizeError::Tokenizers(e.to_string()))?;
        Ok(encs.iter().zip(rendered).map(|(enc, r)| self.with_mask(enc, r)).collect())
    }

    fn with_mask(&self, enc: &tokenizers::Encoding, rendered: &Rendered) -> (Vec<u32>, Vec<bool>) {
        let mut ids = enc.get_ids().to_vec();
        let spans = &rendered.assistant_spans;
        let mut mask: Vec<bool> = enc
            .get_offsets()
            .iter()
            .map(|&(start, end)| end > start && spans.iter().any(|s| start >= s.start && end <= s.end))
            .collect();
        ids.push(self.eos_id);
        mask.push(false);
        (ids, mask)
    }

    /// Each token of a rendered record with its byte range in the text and whether it lies in
    /// an assistant span (the same rule as [`TextTokenizer::encode_with_mask`], without the
    /// end-of-text token).
    pub fn encode_spans(&self, rendered: &Rendered) -> Result<Vec<TokenSpan>, TokenizeError> {
        let enc =
            self.inner.encode(rendered.text.as_str(), false).map_err(|e| TokenizeError::Tokenizers(e.to_string()))?;
        let spans = &rendered.assistant_spans;
        Ok(enc
            .get_ids()
            .iter()
            .zip(enc.get_offsets())
            .map(|(&id, &(start, end))| TokenSpan {
                id,
                bytes: start..end,
                assistant: end > start && spans.iter().any(|s| start >= s.start && end <= s.end),
            })
            .collect())
    }

    /// Text of token ids.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizeError> {
        self.inner.decode(ids, false).map_err(|e| TokenizeError::Tokenizers(e.to_string()))
    }
}

/// One token of a text: its id, its bytes in the text, and whether the assistant wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpan {
    /// Token id.
    pub id: u32,
    /// Byte range in the rendered text (tokens of a multi-byte character may share one).
    pub bytes: std::ops::Range<usize>,
    /// Inside an assistant turn.
    pub assistant: bool,
}
