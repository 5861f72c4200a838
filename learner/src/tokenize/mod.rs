//! Tokenization with Hugging Face `tokenizers`: any `tokenizer.json` (Qwen2.5's among them),
//! or a byte-level BPE trained here on the corpus itself for the embedded default.
//!
//! [`TextTokenizer::encode_with_mask`] turns a [`Rendered`] record into token ids plus a per-token
//! flag "inside an assistant span", using the tokenizer's byte offsets, so the `assistant` loss
//! mask marks exactly the tokens the model produced.
//!
//! Assistant turns that carry the policy's sampled tokens ([`Rendered::recorded`]: their ids,
//! or their texts, which `pieces` maps back to ids exactly or not at all) are
//! compared with the tokenizer's own tokens of the turn's text: the same ids, re-tokenization
//! drift (the same text split otherwise), another text (the record's turn is not what the
//! model wrote: a template or a reader changed it), ids the tokenizer does not have (it is not
//! the policy's), texts that name no single id, or a turn that does not start and end on a
//! token boundary. [`TurnOutcome`] names them; under [`AssistantTokens::Recorded`] a drifted
//! turn trains the ids the policy sampled, and no other outcome but a match ever trains them.
//!
//! Past 600 lines with its unit tests (the code is under 500): the drift check's outcomes are
//! tested beside the comparison that decides them.

mod pieces;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

use agentmill_proto::TrajectoryRecord;

use self::pieces::PieceTable;
use crate::render::{AssistantTokens, Rendered, Sampled, Template, render};

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

/// How an assistant turn's recorded token ids compare with the tokenizer's tokens of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnOutcome {
    /// The same ids: no drift.
    Match,
    /// Other ids for the same text: re-tokenization drift.
    Drift,
    /// Ids of another text than the rendered turn's: the record's turn is not what the model
    /// wrote (a template, a reader or a client changed it), so neither can stand for the other.
    OtherText,
    /// An id this tokenizer does not have: it is not the policy's tokenizer.
    OutOfVocab,
    /// A sampled token's text that is no single id's text in this tokenizer (a server that names
    /// tokens by text only, and a tokenizer that is not its own, or a partial character).
    Unmapped,
    /// The turn's text does not start or end on a token boundary, so its tokens cannot be swapped.
    Misaligned,
}

impl TurnOutcome {
    /// Every outcome.
    pub const ALL: [TurnOutcome; 6] = [
        TurnOutcome::Match,
        TurnOutcome::Drift,
        TurnOutcome::OtherText,
        TurnOutcome::OutOfVocab,
        TurnOutcome::Unmapped,
        TurnOutcome::Misaligned,
    ];

    /// The outcome's name (a metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            TurnOutcome::Match => "match",
            TurnOutcome::Drift => "drift",
            TurnOutcome::OtherText => "other_text",
            TurnOutcome::OutOfVocab => "out_of_vocab",
            TurnOutcome::Unmapped => "unmapped",
            TurnOutcome::Misaligned => "misaligned",
        }
    }

    /// Whether the recorded ids can stand in for the turn's tokens.
    pub fn usable(self) -> bool {
        matches!(self, TurnOutcome::Match | TurnOutcome::Drift)
    }
}

/// One recorded assistant turn compared with the tokenizer's tokens of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCheck {
    /// The turn's index among the record's assistant turns.
    pub turn: usize,
    /// How they compare.
    pub outcome: TurnOutcome,
    /// The tokenizer's ids of the turn's body.
    pub rendered: Vec<u32>,
    /// The ids the policy sampled (a trailing end-of-turn id left out: the template writes it;
    /// empty when its token texts could not be mapped).
    pub recorded: Vec<u32>,
}

/// Recorded assistant turns counted by [`TurnOutcome`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TurnCounts {
    /// [`TurnOutcome::Match`].
    #[serde(rename = "match")]
    pub matched: u64,
    /// [`TurnOutcome::Drift`].
    pub drift: u64,
    /// [`TurnOutcome::OtherText`].
    #[serde(default)]
    pub other_text: u64,
    /// [`TurnOutcome::OutOfVocab`].
    pub out_of_vocab: u64,
    /// [`TurnOutcome::Unmapped`].
    #[serde(default)]
    pub unmapped: u64,
    /// [`TurnOutcome::Misaligned`].
    pub misaligned: u64,
}

impl TurnCounts {
    /// Counts the outcomes of `checks`.
    pub fn add(&mut self, checks: &[TurnCheck]) {
        for c in checks {
            *self.slot(c.outcome) += 1;
        }
    }

    /// Turns with `outcome`.
    pub fn get(&self, outcome: TurnOutcome) -> u64 {
        let mut copy = *self;
        *copy.slot(outcome)
    }

    /// Every recorded turn counted.
    pub fn total(&self) -> u64 {
        self.matched + self.drift + self.other_text + self.out_of_vocab + self.unmapped + self.misaligned
    }

    /// Nothing counted.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// The counts in words: "7 match the tokenizer's tokens of their text, 2 drift, …".
    pub fn describe(&self) -> String {
        format!(
            "{} match the tokenizer's tokens of their text, {} drift, {} another text, {} out of vocabulary, {} unmapped, {} misaligned",
            self.matched, self.drift, self.other_text, self.out_of_vocab, self.unmapped, self.misaligned
        )
    }

    fn slot(&mut self, outcome: TurnOutcome) -> &mut u64 {
        match outcome {
            TurnOutcome::Match => &mut self.matched,
            TurnOutcome::Drift => &mut self.drift,
            TurnOutcome::OtherText => &mut self.other_text,
            TurnOutcome::OutOfVocab => &mut self.out_of_vocab,
            TurnOutcome::Unmapped => &mut self.unmapped,
            TurnOutcome::Misaligned => &mut self.misaligned,
        }
    }
}

/// A record's training tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids, ending with end-of-text.
    pub ids: Vec<u32>,
    /// For each id, whether it lies in an assistant turn (the `assistant` loss mask).
    pub mask: Vec<bool>,
    /// The turns that carried the policy's ids, compared.
    pub turns: Vec<TurnCheck>,
}

/// A tokenizer with the ids the learner needs.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// Id appended after each document (end of text).
    pub eos_id: u32,
    /// Id used to pad packed rows.
    pub pad_id: u32,
    /// Ids that end a sampled turn (`<|im_end|>`, `<|endoftext|>`), which servers may include in
    /// a turn's ids and the template writes itself.
    stop_ids: Vec<u32>,
    /// The tables that map token texts to ids, built when a turn first names its tokens by text
    /// ([`Sampled::Pieces`]), shared by clones.
    pieces: Arc<OnceLock<PieceTable>>,
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
        let stop_ids = ["<|im_end|>", "<|endoftext|>"].iter().filter_map(|t| inner.token_to_id(t)).collect();
        TextTokenizer { inner, eos_id, pad_id: eos_id, stop_ids, pieces: Arc::default() }
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
        let e = self.encode_record(rendered, AssistantTokens::Rendered)?;
        Ok((e.ids, e.mask))
    }

    /// [`TextTokenizer::encode_with_mask`] with the recorded assistant turns compared and, under
    /// [`AssistantTokens::Recorded`], the policy's ids in place of every usable turn's tokens.
    pub fn encode_record(&self, rendered: &Rendered, tokens: AssistantTokens) -> Result<Encoded, TokenizeError> {
        let enc =
            self.inner.encode(rendered.text.as_str(), false).map_err(|e| TokenizeError::Tokenizers(e.to_string()))?;
        Ok(self.assemble(&enc, rendered, tokens))
    }

    /// [`TextTokenizer::encode_with_mask`] for many records at once, encoded in parallel on the
    /// tokenizers crate's thread pool (what a feeder uses for a batch read from the stream).
    pub fn encode_batch_with_mask(&self, rendered: &[Rendered]) -> Result<Vec<MaskedTokens>, TokenizeError> {
        let texts: Vec<&str> = rendered.iter().map(|r| r.text.as_str()).collect();
        let encs = self.inner.encode_batch(texts, false).map_err(|e| TokenizeError::Tokenizers(e.to_string()))?;
        Ok(encs
            .iter()
            .zip(rendered)
            .map(|(enc, r)| {
                let e = self.assemble(enc, r, AssistantTokens::Rendered);
                (e.ids, e.mask)
            })
            .collect())
    }

    /// The tokens of an encoded text with their mask, each recorded turn compared with the
    /// tokens of its body (and swapped for the recorded ids under `tokens = Recorded` when they
    /// are usable), then end-of-text.
    fn assemble(&self, enc: &tokenizers::Encoding, rendered: &Rendered, tokens: AssistantTokens) -> Encoded {
        let (all, offsets) = (enc.get_ids(), enc.get_offsets());
        let mut spans = InSpans::new(&rendered.assistant_spans);
        let mut assistant = |offsets: (usize, usize)| spans.contains(offsets);
        let mut ids = Vec::with_capacity(all.len() + 1);
        let mut mask = Vec::with_capacity(all.len() + 1);
        let mut turns = Vec::with_capacity(rendered.recorded.len());
        let mut t = 0;
        let vocab = if rendered.recorded.is_empty() { 0 } else { self.vocab_size() };
        for turn in &rendered.recorded {
            let body = &turn.body;
            while t < all.len() && offsets[t].1 <= body.start {
                ids.push(all[t]);
                mask.push(assistant(offsets[t]));
                t += 1;
            }
            let first = t;
            while t < all.len() && offsets[t].0 >= body.start && offsets[t].1 <= body.end {
                t += 1;
            }
            // The body's tokens are exactly first..t when no token crosses either of its ends.
            let aligned = (first == 0 || offsets[first - 1].1 <= body.start) && (t == all.len() || offsets[t].0 >= body.end);
            let mapped = match &turn.sampled {
                Sampled::Ids(ids) => Some(ids.clone()),
                Sampled::Pieces(pieces) => self.pieces.get_or_init(|| PieceTable::new(&self.inner, vocab as u32)).ids(pieces, &rendered.text[body.clone()]),
            };
            let recorded = mapped.as_deref().map(|ids| self.without_stop(ids)).unwrap_or_default();
            let outcome = if !aligned {
                TurnOutcome::Misaligned
            } else if mapped.is_none() {
                TurnOutcome::Unmapped
            } else if recorded.iter().any(|&id| id as usize >= vocab) {
                TurnOutcome::OutOfVocab
            } else if recorded == &all[first..t] {
                TurnOutcome::Match
            } else if self.same_text(recorded, &all[first..t]) {
                TurnOutcome::Drift
            } else {
                TurnOutcome::OtherText
            };
            if tokens == AssistantTokens::Recorded && outcome.usable() {
                ids.extend_from_slice(recorded);
                mask.extend(std::iter::repeat_n(true, recorded.len()));
            } else {
                ids.extend_from_slice(&all[first..t]);
                mask.extend(offsets[first..t].iter().map(|&o| assistant(o)));
            }
            turns.push(TurnCheck { turn: turn.turn, outcome, rendered: all[first..t].to_vec(), recorded: recorded.to_vec() });
        }
        ids.extend_from_slice(&all[t..]);
        mask.extend(offsets[t..].iter().map(|&o| assistant(o)));
        ids.push(self.eos_id);
        mask.push(false);
        Encoded { ids, mask, turns }
    }

    /// Whether two id sequences are the same text.
    fn same_text(&self, a: &[u32], b: &[u32]) -> bool {
        matches!((self.inner.decode(a, false), self.inner.decode(b, false)), (Ok(x), Ok(y)) if x == y)
    }

    /// A sampled turn's ids without the end-of-turn ids a server may include.
    fn without_stop<'a>(&self, mut ids: &'a [u32]) -> &'a [u32] {
        while let Some((last, rest)) = ids.split_last() {
            if !self.stop_ids.contains(last) {
                break;
            }
            ids = rest;
        }
        ids
    }

    /// Each token of a rendered record with its byte range in the text and whether it lies in
    /// an assistant span (the same rule as [`TextTokenizer::encode_with_mask`], without the
    /// end-of-text token).
    pub fn encode_spans(&self, rendered: &Rendered) -> Result<Vec<TokenSpan>, TokenizeError> {
        let enc =
            self.inner.encode(rendered.text.as_str(), false).map_err(|e| TokenizeError::Tokenizers(e.to_string()))?;
        let mut spans = InSpans::new(&rendered.assistant_spans);
        Ok(enc
            .get_ids()
            .iter()
            .zip(enc.get_offsets())
            .map(|(&id, &(start, end))| TokenSpan { id, bytes: start..end, assistant: spans.contains((start, end)) })
            .collect())
    }

    /// Text of token ids.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizeError> {
        self.inner.decode(ids, false).map_err(|e| TokenizeError::Tokenizers(e.to_string()))
    }
}

/// Whether tokens lie inside one of a text's assistant spans, asked in text order: one pass over
/// the spans for the whole text, where a search of every span for every token was quadratic in
/// a long episode.
struct InSpans<'a> {
    spans: &'a [std::ops::Range<usize>],
    next: usize,
}

impl<'a> InSpans<'a> {
    fn new(spans: &'a [std::ops::Range<usize>]) -> InSpans<'a> {
        InSpans { spans, next: 0 }
    }

    /// Whether the token at byte offsets `(start, end)` (not before the last one asked about)
    /// is non-empty and lies wholly inside a span.
    fn contains(&mut self, (start, end): (usize, usize)) -> bool {
        // Tokens come in text order, so a span that ends before this token does before every later one.
        while self.next < self.spans.len() && self.spans[self.next].end < end {
            self.next += 1;
        }
        end > start && self.spans.get(self.next).is_some_and(|s| s.start <= start)
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

#[cfg(test)]
mod tests {
    use agentmill_proto::{ExitReason, Message, RecordKind, Role, TrajectoryRecord};

    use super::*;

    const BODY: &str = "Let me look at the parser and its tests.";

    fn tokenizer() -> TextTokenizer {
        let text = format!("<|im_start|>user\nFix the parser.<|im_end|>\n<|im_start|>assistant\n{BODY}<|im_end|>\n");
        TextTokenizer::train(std::iter::repeat_n(text.as_str(), 20), 400).expect("trained")
    }

    fn record(token_ids: Option<Vec<u32>>) -> Rendered {
        record_with(|a| a.token_ids = token_ids)
    }

    fn record_with_pieces(pieces: Vec<String>) -> Rendered {
        record_with(|a| a.token_pieces = Some(pieces))
    }

    /// A user, assistant (BODY, changed by `sampled`), user conversation, rendered.
    fn record_with(sampled: impl FnOnce(&mut Message)) -> Rendered {
        let mut a = Message::text(Role::Assistant, BODY);
        sampled(&mut a);
        let r = TrajectoryRecord {
            messages: vec![Message::text(Role::User, "Fix the parser."), a, Message::text(Role::User, "Thanks.")],
            exit_reason: Some(ExitReason::Submitted),
            ..TrajectoryRecord::new(RecordKind::Env, "env:t:r0:a1", "t")
        };
        render(&r, Template::default()).expect("trainable")
    }

    /// The tokenizer's ids of the assistant turn's body in context, and how many tokens precede it.
    fn body_tokens(tok: &TextTokenizer) -> (Vec<u32>, usize) {
        let rendered = record(None);
        let start = rendered.text.find(BODY).expect("body");
        let spans = tok.encode_spans(&rendered).expect("encoded");
        let before = spans.iter().take_while(|s| s.bytes.end <= start).count();
        let ids = spans.iter().filter(|s| s.bytes.start >= start && s.bytes.end <= start + BODY.len()).map(|s| s.id).collect();
        (ids, before)
    }

    fn outcome(e: &Encoded) -> TurnOutcome {
        assert_eq!(e.turns.len(), 1, "one recorded turn");
        e.turns[0].outcome
    }

    #[test]
    fn recorded_ids_equal_to_the_tokenizers_are_a_match_and_change_nothing() {
        let tok = tokenizer();
        let plain = tok.encode_record(&record(None), AssistantTokens::Rendered).expect("encoded");
        assert!(plain.turns.is_empty());
        let (mut ids, _) = body_tokens(&tok);
        // A server may end a turn's ids with its end-of-turn token; the template writes it.
        ids.push(tok.inner.token_to_id("<|im_end|>").expect("special"));
        for mode in [AssistantTokens::Rendered, AssistantTokens::Recorded] {
            let e = tok.encode_record(&record(Some(ids.clone())), mode).expect("encoded");
            assert_eq!(outcome(&e), TurnOutcome::Match, "{mode:?}");
            assert_eq!((&e.ids, &e.mask), (&plain.ids, &plain.mask), "{mode:?}: a match trains the same tokens");
        }
    }

    #[test]
    fn drifted_ids_are_counted_and_trained_only_when_recorded_is_asked_for() {
        let tok = tokenizer();
        let plain = tok.encode_record(&record(None), AssistantTokens::Rendered).expect("encoded");
        let (body, before) = body_tokens(&tok);
        // The same text split otherwise: one id per character, as a policy with other merges
        // (or a server that re-encoded the text) would give.
        let recorded: Vec<u32> = BODY.chars().map(|c| tok.encode(&c.to_string()).expect("char")[0]).collect();
        assert_ne!(recorded, body, "the trained tokenizer merges characters");
        assert_eq!(tok.decode(&recorded).expect("decoded"), BODY, "same text");

        let rendered = tok.encode_record(&record(Some(recorded.clone())), AssistantTokens::Rendered).expect("encoded");
        assert_eq!(outcome(&rendered), TurnOutcome::Drift);
        assert_eq!(rendered.turns[0].rendered, body);
        assert_eq!((&rendered.ids, &rendered.mask), (&plain.ids, &plain.mask), "rendered: the text's tokens");

        let swapped = tok.encode_record(&record(Some(recorded.clone())), AssistantTokens::Recorded).expect("encoded");
        assert_eq!(outcome(&swapped), TurnOutcome::Drift);
        let mut want = plain.ids[..before].to_vec();
        want.extend(&recorded);
        want.extend(&plain.ids[before + body.len()..]);
        assert_eq!(swapped.ids, want, "recorded: the policy's ids in place of the body's tokens, the rest unchanged");
        assert!(swapped.mask[before..before + recorded.len()].iter().all(|&m| m), "the policy's ids are assistant tokens");
        assert_eq!(swapped.mask[..before], plain.mask[..before]);
        assert_eq!(swapped.mask[before + recorded.len()..], plain.mask[before + body.len()..]);
    }

    #[test]
    fn token_texts_map_to_their_ids_and_match() {
        let tok = tokenizer();
        let plain = tok.encode_record(&record(None), AssistantTokens::Rendered).expect("encoded");
        let (ids, _) = body_tokens(&tok);
        // What llama.cpp's server writes in `logprobs.content[].token`: each sampled token's text.
        let mut pieces: Vec<String> = ids.iter().map(|&id| tok.decode(&[id]).expect("decoded")).collect();
        pieces.push("<|im_end|>".into());
        let e = tok.encode_record(&record_with_pieces(pieces), AssistantTokens::Recorded).expect("encoded");
        assert_eq!(outcome(&e), TurnOutcome::Match);
        assert_eq!(e.turns[0].recorded, ids, "the texts name the very ids");
        assert_eq!((&e.ids, &e.mask), (&plain.ids, &plain.mask));
    }

    #[test]
    fn a_character_sampled_in_bytes_is_rebuilt_from_the_text_and_a_stray_byte_is_not() {
        let tok = tokenizer();
        // No merge for "—" in this vocabulary: it is three byte tokens, each no text of its own.
        let body = "Let me look \u{2014} at the parser.";
        let ids = tok.encode(body).expect("encoded");
        // What llama.cpp writes for each: its text, or nothing for a part of a character.
        let pieces: Vec<String> =
            ids.iter().map(|&id| tok.decode(&[id]).expect("decoded")).map(|t| if t.contains('\u{fffd}') { String::new() } else { t }).collect();
        assert_eq!(pieces.iter().filter(|p| p.is_empty()).count(), 3, "{pieces:?}");
        let with = |pieces: Vec<String>| {
            record_with(|a| {
                a.content = body.into();
                a.token_pieces = Some(pieces);
            })
        };
        let e = tok.encode_record(&with(pieces.clone()), AssistantTokens::Recorded).expect("encoded");
        assert_eq!(outcome(&e), TurnOutcome::Match, "the bytes rebuilt from the text");
        assert_eq!(e.turns[0].recorded, ids);

        // A byte the model sampled that the server dropped from the text: nothing to rebuild it from.
        let mut stray = pieces.clone();
        stray.insert(1, String::new());
        let e = tok.encode_record(&with(stray), AssistantTokens::Recorded).expect("encoded");
        assert_eq!(outcome(&e), TurnOutcome::Unmapped);
        // Three bytes in two tokens: no such split in this vocabulary, so no guess either.
        let first = pieces.iter().position(String::is_empty).expect("a text-less piece");
        let mut short = pieces.clone();
        short.remove(first);
        let e = tok.encode_record(&with(short), AssistantTokens::Recorded).expect("encoded");
        assert_eq!(outcome(&e), TurnOutcome::Unmapped);
    }

    #[test]
    fn a_token_text_that_names_no_single_id_is_unmapped_and_never_trained() {
        let tok = tokenizer();
        let plain = tok.encode_record(&record(None), AssistantTokens::Rendered).expect("encoded");
        let (ids, _) = body_tokens(&tok);
        let mut pieces: Vec<String> = ids.iter().map(|&id| tok.decode(&[id]).expect("decoded")).collect();
        // A text no id of this vocabulary has as its own (trained on one sentence).
        pieces[0] = "\u{1F980} crab".into();
        let e = tok.encode_record(&record_with_pieces(pieces), AssistantTokens::Recorded).expect("encoded");
        assert_eq!(outcome(&e), TurnOutcome::Unmapped);
        assert!(!TurnOutcome::Unmapped.usable());
        assert!(e.turns[0].recorded.is_empty());
        assert_eq!(e.ids, plain.ids, "the rendered tokens train");
    }

    #[test]
    fn ids_of_another_text_are_other_text_not_drift_and_never_trained() {
        let tok = tokenizer();
        let plain = tok.encode_record(&record(None), AssistantTokens::Rendered).expect("encoded");
        // The model wrote "Let me look at the tests." but the record's turn says BODY: a reader
        // or a template changed the text. These ids must not stand for BODY's tokens.
        let other = tok.encode("Let me look at the tests.").expect("encoded");
        assert_ne!(tok.decode(&other).expect("decoded"), BODY);
        let e = tok.encode_record(&record(Some(other)), AssistantTokens::Recorded).expect("encoded");
        assert_eq!(outcome(&e), TurnOutcome::OtherText);
        assert!(!TurnOutcome::OtherText.usable());
        assert_eq!((&e.ids, &e.mask), (&plain.ids, &plain.mask), "the rendered tokens train");
        let mut counts = TurnCounts::default();
        counts.add(&e.turns);
        assert_eq!((counts.other_text, counts.total()), (1, 1));
        // A checkpoint's counters written before these outcomes existed still read.
        let old: TurnCounts = serde_json::from_str(r#"{"match":2,"drift":1,"out_of_vocab":0,"misaligned":0}"#).expect("old counters");
        assert_eq!((old.matched, old.other_text, old.unmapped), (2, 0, 0));
    }

    #[test]
    fn the_span_cursor_agrees_with_a_search_of_every_span() {
        let spans = [3..9, 9..12, 20..40, 41..42];
        // Tokens in text order: empty ones, tokens across a span's edge, tokens sharing offsets
        // (bytes of one character), tokens between and after the spans.
        let mut tokens = Vec::new();
        for start in 0..45 {
            for len in [0, 1, 1, 2, 5] {
                tokens.push((start, start + len));
            }
        }
        tokens.sort_by_key(|&(s, e)| (e, s));
        let mut cursor = InSpans::new(&spans);
        for (start, end) in tokens {
            let naive = end > start && spans.iter().any(|s| start >= s.start && end <= s.end);
            assert_eq!(cursor.contains((start, end)), naive, "token {start}..{end}");
        }
    }

    #[test]
    fn unusable_ids_are_named_and_the_rendered_tokens_train() {
        let tok = tokenizer();
        let plain = tok.encode_record(&record(None), AssistantTokens::Rendered).expect("encoded");
        let beyond = tok.vocab_size() as u32 + 5;
        let e = tok.encode_record(&record(Some(vec![3, beyond])), AssistantTokens::Recorded).expect("encoded");
        assert_eq!(outcome(&e), TurnOutcome::OutOfVocab);
        assert_eq!(e.ids, plain.ids);

        // A body that starts inside a token cannot have its tokens swapped.
        let mut r = record(Some(body_tokens(&tok).0));
        let start = r.recorded[0].body.start;
        let spans = tok.encode_spans(&r).expect("encoded");
        let long = spans.iter().find(|s| s.bytes.start >= start && s.bytes.len() > 1).expect("a merged token in the body");
        r.recorded[0].body.start = long.bytes.start + 1;
        let e = tok.encode_record(&r, AssistantTokens::Recorded).expect("encoded");
        assert_eq!(outcome(&e), TurnOutcome::Misaligned);
        assert_eq!(e.ids, plain.ids);

        let mut counts = TurnCounts::default();
        counts.add(&e.turns);
        assert_eq!((counts.get(TurnOutcome::Misaligned), counts.total()), (1, 1));
    }
}
