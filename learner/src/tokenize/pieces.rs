//! Sampled tokens named by their text (llama.cpp's `logprobs.content[].token`) mapped back to ids.
//!
//! A whole token's text maps to the one id whose text it is ([`PieceTable::by_text`]; a text that
//! several ids share maps to none). A token that is part of a character (a byte-level tokenizer
//! splits a character it has no merge for into its bytes) has no text of its own: llama.cpp's
//! server writes it as `""` (it decodes each token alone and drops what is not UTF-8). A run of
//! such tokens is rebuilt from the turn's text: the bytes between the tokens around the run must
//! split into exactly that many partial-character tokens of the vocabulary, in exactly one way.
//! Bytes the text does not hold (a stray byte llama.cpp's grammar let through and its server
//! dropped from the text) split in no way, and an ambiguous run in several: both leave the turn
//! unmapped, never guessed.

use std::collections::HashMap;

use tokenizers::Tokenizer;

/// How many tokens of one run of text-less pieces are searched at most (a longer run is left
/// unmapped): a character is at most 4 bytes, and a few of them in a row are the common case.
const MAX_RUN: usize = 16;

/// A tokenizer's tables for mapping token texts to ids.
#[derive(Debug, Default)]
pub(super) struct PieceTable {
    /// Each whole token's text to its id, `None` where several ids share the text.
    by_text: HashMap<String, Option<u32>>,
    /// The bytes of each token that holds no whole character, to its id.
    partial: HashMap<Vec<u8>, u32>,
    /// The longest of those, in bytes.
    longest_partial: usize,
}

impl PieceTable {
    /// The tables of `tokenizer`'s first `vocab` ids.
    pub(super) fn new(tokenizer: &Tokenizer, vocab: u32) -> PieceTable {
        let mut table = PieceTable::default();
        let bytes_of = byte_level_inverse();
        for id in 0..vocab {
            match tokenizer.decode(&[id], false) {
                Ok(text) if !text.is_empty() && !text.contains('\u{fffd}') => {
                    table.by_text.entry(text).and_modify(|slot| *slot = None).or_insert(Some(id));
                }
                _ => {
                    let Some(bytes) = tokenizer.id_to_token(id).and_then(|t| raw_bytes(&t, &bytes_of)) else { continue };
                    // What llama.cpp writes as no text: not one whole character in it.
                    if !bytes.is_empty() && String::from_utf8_lossy(&bytes).chars().all(|c| c == '\u{fffd}') {
                        table.longest_partial = table.longest_partial.max(bytes.len());
                        table.partial.insert(bytes, id);
                    }
                }
            }
        }
        table
    }

    /// The ids of `pieces`, the sampled tokens' texts of a turn whose text is `text`, or `None`
    /// when a piece names no single id or a run of text-less pieces cannot be rebuilt exactly.
    pub(super) fn ids(&self, pieces: &[String], text: &str) -> Option<Vec<u32>> {
        let text = text.as_bytes();
        let mut ids = Vec::with_capacity(pieces.len());
        // Where in the text the pieces so far end; `None` once they part from it (the turn is
        // then judged by its ids alone, and a later text-less run cannot be rebuilt).
        let mut at = Some(0);
        let mut i = 0;
        while i < pieces.len() {
            if !pieces[i].is_empty() {
                ids.push(self.by_text.get(&pieces[i]).copied().flatten()?);
                at = at.filter(|&a| text[a..].starts_with(pieces[i].as_bytes())).map(|a| a + pieces[i].len());
                i += 1;
                continue;
            }
            let run = pieces[i..].iter().take_while(|p| p.is_empty()).count();
            let next = pieces.get(i + run).map(String::as_bytes);
            let (used, filled) = self.fill(text, at?, run, next)?;
            ids.extend(filled);
            at = Some(at? + used);
            i += run;
        }
        Some(ids)
    }

    /// The one way `run` partial-character tokens cover the text from `at` up to where `next`
    /// (the piece after the run; `None`: the turn's end) begins: the bytes used and the ids.
    fn fill(&self, text: &[u8], at: usize, run: usize, next: Option<&[u8]>) -> Option<(usize, Vec<u32>)> {
        if run > MAX_RUN {
            return None;
        }
        let mut found: Option<(usize, Vec<u32>)> = None;
        let last = text.len().min(at + run * self.longest_partial);
        for end in at + run..=last {
            let fits = match next {
                None => end == text.len(),
                // A stop token's text (`<|im_end|>`) follows the turn's body, not in it.
                Some(next) => text[end..].starts_with(next) || end == text.len(),
            };
            if !fits {
                continue;
            }
            let mut ways = Vec::new();
            self.splits(&text[at..end], run, &mut Vec::new(), &mut ways);
            for ids in ways {
                if found.is_some() {
                    return None;
                }
                found = Some((end - at, ids));
            }
        }
        found
    }

    /// Every split of `bytes` into `left` partial-character tokens (stops after two: more than
    /// one is already ambiguous).
    fn splits(&self, bytes: &[u8], left: usize, so_far: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
        if out.len() > 1 {
            return;
        }
        if left == 0 {
            if bytes.is_empty() {
                out.push(so_far.clone());
            }
            return;
        }
        for len in 1..=bytes.len().min(self.longest_partial) {
            if let Some(&id) = self.partial.get(&bytes[..len]) {
                so_far.push(id);
                self.splits(&bytes[len..], left - 1, so_far, out);
                so_far.pop();
            }
        }
    }
}

/// A vocabulary entry's bytes: a byte-level token (GPT-2's byte-to-character alphabet, Qwen's and
/// the learner's own) or a SentencePiece byte-fallback token (`<0xE2>`).
fn raw_bytes(token: &str, bytes_of: &HashMap<char, u8>) -> Option<Vec<u8>> {
    if let Some(hex) = token.strip_prefix("<0x").and_then(|t| t.strip_suffix('>')) {
        return u8::from_str_radix(hex, 16).ok().map(|b| vec![b]);
    }
    token.chars().map(|c| bytes_of.get(&c).copied()).collect()
}

/// GPT-2's byte-level alphabet, character to byte: printable bytes stand for themselves, the rest
/// are moved to U+0100 onwards, in order.
fn byte_level_inverse() -> HashMap<char, u8> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    let mut moved = 0u32;
    (0..=255u8)
        .map(|b| {
            let c = if printable(b) {
                char::from(b)
            } else {
                moved += 1;
                char::from_u32(255 + moved).unwrap_or(char::REPLACEMENT_CHARACTER)
            };
            (c, b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_level_alphabet_is_gpt2s() {
        let bytes_of = byte_level_inverse();
        assert_eq!(bytes_of.len(), 256);
        // GPT-2's well-known stand-ins: space is Ġ, newline Ċ, byte 0xE2 is â.
        assert_eq!((bytes_of[&'Ġ'], bytes_of[&'Ċ'], bytes_of[&'â'], bytes_of[&'a']), (b' ', b'\n', 0xE2, b'a'));
        assert_eq!(raw_bytes("Ġthe", &bytes_of), Some(b" the".to_vec()));
        assert_eq!(raw_bytes("<0xE2>", &bytes_of), Some(vec![0xE2]));
    }
}
