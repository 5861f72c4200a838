//! The shuffle buffer between the recipe and the packer.
//!
//! The stream arrives grouped: the rollouts of one task finish together, and the recipe's copies
//! of a record (env-pass ×3) are made at the same moment. Packed in arrival order, they would
//! train in the same optimizer step — three copies in one step weigh a record three times in
//! one update instead of showing it three times across the run, which is what upsampling
//! means. Each copy therefore waits in a buffer of `capacity` tokens and leaves it at a random
//! moment: when the buffer is over capacity, a uniformly chosen document goes to the packer.
//! The buffer is saved with every checkpoint (its documents and the generator's state), so a
//! resumed run releases the same documents in the same order.

use serde::{Deserialize, Serialize};

use crate::pack::Document;

/// A document copy waiting in the buffer, with the tag its chunks carry in the packer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferedDoc {
    /// The record's packer tag.
    pub serial: u64,
    /// Token ids.
    pub tokens: Vec<u32>,
    /// Per token whether it is a target; absent when every token is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<bool>>,
}

impl BufferedDoc {
    /// A copy of `tokens` with its target mask (stored only when some token is not a target).
    pub fn new(serial: u64, tokens: Vec<u32>, mask: &[bool]) -> BufferedDoc {
        let targets = (!mask.iter().all(|&m| m)).then(|| mask.to_vec());
        BufferedDoc { serial, tokens, targets }
    }

    /// The document the packer takes.
    pub fn into_document(self) -> Document {
        let mask = self.targets.unwrap_or_else(|| vec![true; self.tokens.len()]);
        Document::with_mask(self.tokens, mask)
    }
}

/// What a checkpoint holds of the buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShuffleState {
    /// The documents waiting.
    pub docs: Vec<BufferedDoc>,
    /// The generator's state.
    pub rng: u64,
}

/// A buffer of at most `capacity` tokens that releases documents in a random order.
#[derive(Debug)]
pub(crate) struct Shuffle {
    capacity: u64,
    docs: Vec<BufferedDoc>,
    tokens: u64,
    rng: u64,
}

impl Shuffle {
    /// An empty buffer of `capacity` tokens (0: every document passes straight through).
    pub fn new(capacity: u64, seed: u64) -> Shuffle {
        Shuffle::restore(capacity, ShuffleState { docs: Vec::new(), rng: seed ^ 0x5EED_5EED_5EED_5EED })
    }

    /// The buffer a checkpoint left.
    pub fn restore(capacity: u64, state: ShuffleState) -> Shuffle {
        let tokens = state.docs.iter().map(|d| d.tokens.len() as u64).sum();
        Shuffle { capacity, docs: state.docs, tokens, rng: state.rng }
    }

    /// The state to save.
    pub fn state(&self) -> ShuffleState {
        ShuffleState { docs: self.docs.clone(), rng: self.rng }
    }

    /// Adds a document; returns those that leave, in the order they leave.
    pub fn push(&mut self, doc: BufferedDoc) -> Vec<BufferedDoc> {
        self.tokens += doc.tokens.len() as u64;
        self.docs.push(doc);
        let mut out = Vec::new();
        while self.tokens > self.capacity && !self.docs.is_empty() {
            out.push(self.take_random());
        }
        out
    }

    /// Every document, in a random order (the end of the stream, or a drain).
    pub fn drain(&mut self) -> Vec<BufferedDoc> {
        let mut out = Vec::with_capacity(self.docs.len());
        while !self.docs.is_empty() {
            out.push(self.take_random());
        }
        out
    }

    fn take_random(&mut self) -> BufferedDoc {
        let i = (self.next() % self.docs.len() as u64) as usize;
        let doc = self.docs.swap_remove(i);
        self.tokens -= doc.tokens.len() as u64;
        doc
    }

    /// SplitMix64.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(serial: u64, n: usize) -> BufferedDoc {
        BufferedDoc::new(serial, vec![1; n], &vec![true; n])
    }

    #[test]
    fn capacity_zero_passes_documents_straight_through() {
        let mut s = Shuffle::new(0, 1);
        for i in 0..5 {
            let out = s.push(doc(i, 3));
            assert_eq!(out.iter().map(|d| d.serial).collect::<Vec<_>>(), [i]);
        }
        assert!(s.drain().is_empty());
    }

    #[test]
    fn every_document_leaves_once_in_a_mixed_order_and_a_restore_continues_the_same_way() {
        let mut s = Shuffle::new(40, 7);
        let mut out = Vec::new();
        for i in 0..100 {
            out.extend(s.push(doc(i, 10)));
            assert!(s.tokens <= 40, "the buffer stays within its capacity");
        }
        // A copy of the buffer, restored from its state, releases what the original releases.
        let mut twin = Shuffle::restore(40, s.state());
        let (a, b) = (s.drain(), twin.drain());
        assert_eq!(a, b, "a restored buffer continues identically");
        out.extend(a);
        let order: Vec<u64> = out.iter().map(|d| d.serial).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>(), "each document exactly once");
        let displaced = order.iter().enumerate().filter(|&(i, &s)| i as u64 != s).count();
        assert!(displaced > 50, "the order is mixed: {order:?}");
    }

    #[test]
    fn the_mask_is_stored_only_when_some_token_is_not_a_target() {
        assert_eq!(BufferedDoc::new(0, vec![1, 2], &[true, true]).targets, None);
        let d = BufferedDoc::new(0, vec![1, 2], &[false, true]);
        assert_eq!(d.targets, Some(vec![false, true]));
        assert_eq!(d.into_document().loss_mask, Some(vec![false, true]));
    }
}
