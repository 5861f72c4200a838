//! Packing tokenized documents into fixed-length training rows.
//!
//! Every row holds `seq_len` tokens: whole documents side by side, then padding. Each token
//! carries its position *inside its document* (restarting at 0) and its document's id within
//! the row, by which the model runs causal attention inside each document's span (or, as the
//! reference, under [`crate::model::document_causal_mask`]'s block-diagonal mask), so no token
//! sees another document. Labels are the next token of the *same* document,
//! or [`IGNORE_INDEX`]: a document's last token predicts nothing, padding predicts nothing,
//! and with [`LossMask::Assistant`] only tokens the renderer marked are predicted.
//!
//! A document longer than `seq_len` is cut into `seq_len`-sized chunks, each packed as a
//! document of its own (positions restart; a chunk does not see the chunk before it).
//!
//! Placement is greedy best-fit: each chunk goes into the open row with the least room that
//! still fits it, else a new row. [`pack`] sorts chunks longest first (best-fit decreasing),
//! which packs realistic agent-trajectory lengths at 2,048 tokens above 99% full;
//! [`Packer`] does the same online over a bounded set of open rows, for a stream.
//!
//! For a stream that must survive a crash, [`Packer::push_tagged`] attaches a caller's tag to
//! every chunk of a document, [`Packer::pop_tagged_row`] returns a row with the tags of the
//! chunks in it (so the caller knows when a document has been wholly handed out), and
//! [`Packer::snapshot`] / [`Packer::restore`] save and rebuild the partially filled rows exactly,
//! so packing resumed from a snapshot continues as if it had never stopped.
//!
//! Past 600 lines with its unit tests (the code is under 500), kept beside the packing they
//! check.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The label of a position that contributes no loss (PyTorch's `ignore_index` convention).
pub const IGNORE_INDEX: i64 = -100;

/// The document id of padding: padding attends only to padding, never to a document.
pub const PAD_DOC_ID: i64 = -1;

/// Which tokens are trained on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossMask {
    /// Every real token is a target (mid-training, the paper's setting; the default).
    #[default]
    None,
    /// Only tokens the document marks are targets (SFT: the assistant's turns).
    Assistant,
}

impl FromStr for LossMask {
    type Err = String;
    fn from_str(s: &str) -> Result<LossMask, String> {
        match s {
            "none" => Ok(LossMask::None),
            "assistant" => Ok(LossMask::Assistant),
            other => Err(format!("unknown loss mask {other:?}; use none or assistant")),
        }
    }
}

impl fmt::Display for LossMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossMask::None => "none",
            LossMask::Assistant => "assistant",
        })
    }
}

/// One tokenized document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// Token ids.
    pub tokens: Vec<u32>,
    /// Per token: whether it is a target under [`LossMask::Assistant`] (ignored under `None`).
    pub loss_mask: Option<Vec<bool>>,
}

impl Document {
    /// A document whose every token is trained on.
    pub fn new(tokens: Vec<u32>) -> Document {
        Document { tokens, loss_mask: None }
    }

    /// A document with a per-token target mask (`true` = train on predicting this token).
    pub fn with_mask(tokens: Vec<u32>, loss_mask: Vec<bool>) -> Document {
        Document { tokens, loss_mask: Some(loss_mask) }
    }
}

/// How rows are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackConfig {
    /// Tokens per row.
    pub seq_len: usize,
    /// Token id written into padding (never trained on, never attended to by documents).
    pub pad_id: u32,
    /// Which tokens are targets.
    pub loss_mask: LossMask,
}

/// Why a document cannot be packed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PackError {
    /// `seq_len` below 2 leaves no room for a prediction.
    #[error("seq_len is {0}; a row needs at least 2 tokens to predict anything")]
    SeqLen(usize),
    /// The mask does not cover the tokens one to one.
    #[error("document {document} has {tokens} tokens but a loss mask of {mask}; the renderer must mark every token")]
    MaskLength {
        /// Index of the document among those pushed.
        document: usize,
        /// Its token count.
        tokens: usize,
        /// Its mask's length.
        mask: usize,
    },
    /// A snapshot cannot be restored into this configuration.
    #[error("packer snapshot: {0}")]
    Snapshot(String),
    /// Assistant-only training needs to know which tokens are the assistant's.
    #[error(
        "document {document} has no loss mask but loss_mask = assistant; render it with assistant marks or train with loss_mask = none"
    )]
    MissingMask {
        /// Index of the document among those pushed.
        document: usize,
    },
}

/// One packed row, ready to become a batch row (all vectors have `seq_len` entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedRow {
    /// Token ids (padding = `pad_id`).
    pub input_ids: Vec<i64>,
    /// Position of each token inside its document (restarts at 0 per document).
    pub position_ids: Vec<i64>,
    /// Document index within the row (0, 1, …), [`PAD_DOC_ID`] for padding.
    pub doc_ids: Vec<i64>,
    /// The token to predict at each position, or [`IGNORE_INDEX`].
    pub labels: Vec<i64>,
}

impl PackedRow {
    /// Tokens that are not padding.
    pub fn real_tokens(&self) -> usize {
        self.doc_ids.iter().filter(|&&d| d != PAD_DOC_ID).count()
    }

    /// Positions that contribute to the loss.
    pub fn target_tokens(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE_INDEX).count()
    }
}

/// What packing did, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackStats {
    /// Documents accepted (empty ones included).
    pub documents: u64,
    /// Pieces placed: one per document, more for documents longer than `seq_len`.
    pub chunks: u64,
    /// Empty documents, which place nothing.
    pub empty_documents: u64,
    /// Rows emitted.
    pub rows: u64,
    /// Token slots in the emitted rows (`rows × seq_len`).
    pub slots: u64,
    /// Real (non-padding) tokens in the emitted rows.
    pub real_tokens: u64,
    /// Positions with a label in the emitted rows.
    pub target_tokens: u64,
}

impl PackStats {
    /// Real tokens / token slots of the emitted rows (1.0 = no padding); 0 before any row.
    pub fn efficiency(&self) -> f64 {
        if self.slots == 0 { 0.0 } else { self.real_tokens as f64 / self.slots as f64 }
    }
}

/// A row still accepting chunks.
#[derive(Debug)]
struct OpenRow {
    id: u64,
    row: PackedRow,
    next_doc: i64,
    /// The tag of each chunk placed, in placement order.
    tags: Vec<u64>,
}

/// A finished row with the tags of the chunks in it (one per chunk, in row order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaggedRow {
    /// The row.
    pub row: PackedRow,
    /// The tag passed to [`Packer::push_tagged`] for each chunk in the row.
    pub tags: Vec<u64>,
}

/// A partially filled row inside a [`PackerSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRowSnapshot {
    /// The tokens placed so far (unpadded).
    pub row: PackedRow,
    /// The document id the next chunk gets.
    pub next_doc: i64,
    /// The tags of the chunks placed so far.
    pub tags: Vec<u64>,
}

/// Everything a [`Packer`] holds, to rebuild it after a restart ([`Packer::restore`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackerSnapshot {
    /// Partially filled rows, oldest first.
    pub open: Vec<OpenRowSnapshot>,
    /// Finished rows not yet taken, in the order they would be taken.
    pub ready: Vec<TaggedRow>,
    /// Counts so far.
    pub stats: PackStats,
}

impl OpenRow {
    fn room(&self, seq_len: usize) -> usize {
        seq_len - self.row.input_ids.len()
    }
}

/// Online best-fit packer over at most `max_open_rows` partially filled rows.
///
/// Push documents as they arrive and take rows with [`Packer::pop_row`]; a row is released when
/// it is exactly full, or — when more than `max_open_rows` are open — the fullest open row is
/// padded and released. [`Packer::finish`] pads and releases the rest.
#[derive(Debug)]
pub struct Packer {
    config: PackConfig,
    max_open_rows: usize,
    open: BTreeMap<u64, OpenRow>,
    /// `(room, row id)` of each open row, so the best fit is a range query.
    by_room: BTreeSet<(usize, u64)>,
    ready: VecDeque<TaggedRow>,
    next_row_id: u64,
    stats: PackStats,
}

impl Packer {
    /// A packer holding at most `max_open_rows` (at least 1) partially filled rows.
    pub fn new(config: PackConfig, max_open_rows: usize) -> Result<Packer, PackError> {
        if config.seq_len < 2 {
            return Err(PackError::SeqLen(config.seq_len));
        }
        Ok(Packer {
            config,
            max_open_rows: max_open_rows.max(1),
            open: BTreeMap::new(),
            by_room: BTreeSet::new(),
            ready: VecDeque::new(),
            next_row_id: 0,
            stats: PackStats::default(),
        })
    }

    /// The configuration rows are built with.
    pub fn config(&self) -> &PackConfig {
        &self.config
    }

    /// Counts so far (rows are counted when released).
    pub fn stats(&self) -> &PackStats {
        &self.stats
    }

    /// Rebuilds a packer from [`Packer::snapshot`]: the same open rows (in the same best-fit
    /// order), the same finished rows and counts, so packing continues exactly where it stopped.
    pub fn restore(config: PackConfig, max_open_rows: usize, snapshot: PackerSnapshot) -> Result<Packer, PackError> {
        let mut packer = Packer::new(config, max_open_rows)?;
        for (i, open) in snapshot.open.into_iter().enumerate() {
            let fill = open.row.input_ids.len();
            let consistent =
                [open.row.position_ids.len(), open.row.doc_ids.len(), open.row.labels.len()].iter().all(|&n| n == fill);
            if fill == 0 || fill >= config.seq_len || !consistent {
                return Err(PackError::Snapshot(format!(
                    "open row {i} holds {fill} tokens (fields of unequal length: {}); a row of a seq_len {} packer holds 1 to {}",
                    !consistent,
                    config.seq_len,
                    config.seq_len - 1
                )));
            }
            let id = packer.next_row_id;
            packer.next_row_id += 1;
            packer.by_room.insert((config.seq_len - fill, id));
            packer.open.insert(id, OpenRow { id, row: open.row, next_doc: open.next_doc, tags: open.tags });
        }
        for (i, ready) in snapshot.ready.iter().enumerate() {
            if ready.row.input_ids.len() != config.seq_len {
                return Err(PackError::Snapshot(format!(
                    "finished row {i} has {} tokens but seq_len is {}; the snapshot is from another configuration",
                    ready.row.input_ids.len(),
                    config.seq_len
                )));
            }
        }
        packer.ready = snapshot.ready.into();
        packer.stats = snapshot.stats;
        Ok(packer)
    }

    /// Everything the packer holds: rebuild it with [`Packer::restore`].
    pub fn snapshot(&self) -> PackerSnapshot {
        PackerSnapshot {
            open: self
                .open
                .values()
                .map(|o| OpenRowSnapshot { row: o.row.clone(), next_doc: o.next_doc, tags: o.tags.clone() })
                .collect(),
            ready: self.ready.iter().cloned().collect(),
            stats: self.stats,
        }
    }

    /// How many chunks a document of `tokens` tokens is cut into (0 for an empty one).
    pub fn chunks_of(&self, tokens: usize) -> u64 {
        tokens.div_ceil(self.config.seq_len) as u64
    }

    /// Adds a document, splitting it into chunks of at most `seq_len` tokens.
    pub fn push(&mut self, doc: &Document) -> Result<(), PackError> {
        self.push_tagged(doc, 0)
    }

    /// Adds a document whose chunks carry `tag` (see [`Packer::pop_tagged_row`]).
    pub fn push_tagged(&mut self, doc: &Document, tag: u64) -> Result<(), PackError> {
        let index = self.stats.documents as usize;
        let targets = self.targets_of(doc, index)?;
        self.stats.documents += 1;
        if doc.tokens.is_empty() {
            self.stats.empty_documents += 1;
            return Ok(());
        }
        for (tokens, targets) in doc.tokens.chunks(self.config.seq_len).zip(targets.chunks(self.config.seq_len)) {
            self.place(tokens, targets, tag);
        }
        Ok(())
    }

    /// Takes the next finished row, if any.
    pub fn pop_row(&mut self) -> Option<PackedRow> {
        self.ready.pop_front().map(|r| r.row)
    }

    /// Takes the next finished row with the tags of its chunks, if any.
    pub fn pop_tagged_row(&mut self) -> Option<TaggedRow> {
        self.ready.pop_front()
    }

    /// Rows not yet released (partially filled).
    pub fn open_rows(&self) -> usize {
        self.open.len()
    }

    /// Finished rows waiting to be taken.
    pub fn ready_rows(&self) -> usize {
        self.ready.len()
    }

    /// Pads and releases every open row (fullest first), e.g. at the end of a corpus.
    pub fn finish(&mut self) {
        while let Some((_, id)) = self.by_room.pop_first() {
            if let Some(open) = self.open.remove(&id) {
                self.release(open);
            }
        }
    }

    /// Per token: whether it may be a target, after checking the mask against the mode.
    fn targets_of(&self, doc: &Document, index: usize) -> Result<Vec<bool>, PackError> {
        if let Some(mask) = &doc.loss_mask
            && mask.len() != doc.tokens.len()
        {
            return Err(PackError::MaskLength { document: index, tokens: doc.tokens.len(), mask: mask.len() });
        }
        match (self.config.loss_mask, &doc.loss_mask) {
            (LossMask::None, _) => Ok(vec![true; doc.tokens.len()]),
            (LossMask::Assistant, Some(mask)) => Ok(mask.clone()),
            (LossMask::Assistant, None) => Err(PackError::MissingMask { document: index }),
        }
    }

    fn place(&mut self, tokens: &[u32], targets: &[bool], tag: u64) {
        self.stats.chunks += 1;
        let seq_len = self.config.seq_len;
        let best_fit = self.by_room.range((tokens.len(), 0)..).next().copied();
        let mut open = match best_fit {
            Some(key) => {
                self.by_room.remove(&key);
                match self.open.remove(&key.1) {
                    Some(open) => open,
                    None => self.new_row(),
                }
            }
            None => self.new_row(),
        };
        let doc_id = open.next_doc;
        open.next_doc += 1;
        open.tags.push(tag);
        let row = &mut open.row;
        for (i, &token) in tokens.iter().enumerate() {
            row.input_ids.push(i64::from(token));
            row.position_ids.push(i as i64);
            row.doc_ids.push(doc_id);
            // Position i predicts token i+1 of the same chunk, when that token is a target.
            let label = match tokens.get(i + 1) {
                Some(&next) if targets[i + 1] => i64::from(next),
                _ => IGNORE_INDEX,
            };
            row.labels.push(label);
        }
        let room = open.room(seq_len);
        if room == 0 {
            self.release(open);
            return;
        }
        self.by_room.insert((room, open.id));
        self.open.insert(open.id, open);
        if self.open.len() > self.max_open_rows
            && let Some(key) = self.by_room.pop_first()
            && let Some(fullest) = self.open.remove(&key.1)
        {
            self.release(fullest);
        }
    }

    fn new_row(&mut self) -> OpenRow {
        let id = self.next_row_id;
        self.next_row_id += 1;
        let n = self.config.seq_len;
        let row = PackedRow {
            input_ids: Vec::with_capacity(n),
            position_ids: Vec::with_capacity(n),
            doc_ids: Vec::with_capacity(n),
            labels: Vec::with_capacity(n),
        };
        OpenRow { id, row, next_doc: 0, tags: Vec::new() }
    }

    /// Pads a row (already out of `open` and `by_room`) and queues it.
    fn release(&mut self, open: OpenRow) {
        let mut row = open.row;
        let real = row.input_ids.len();
        for i in 0..self.config.seq_len - real {
            row.input_ids.push(i64::from(self.config.pad_id));
            row.position_ids.push(i as i64);
            row.doc_ids.push(PAD_DOC_ID);
            row.labels.push(IGNORE_INDEX);
        }
        self.stats.rows += 1;
        self.stats.slots += self.config.seq_len as u64;
        self.stats.real_tokens += real as u64;
        self.stats.target_tokens += row.target_tokens() as u64;
        self.ready.push_back(TaggedRow { row, tags: open.tags });
    }
}

/// The rows of a whole corpus and how well they are filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// The rows, in the order they were closed.
    pub rows: Vec<PackedRow>,
    /// Counts and efficiency.
    pub stats: PackStats,
}

/// Packs a whole corpus with best-fit decreasing: chunks longest first, no limit on open rows.
pub fn pack(docs: &[Document], config: PackConfig) -> Result<Packed, PackError> {
    let mut packer = Packer::new(config, usize::MAX)?;
    // Validate and chunk every document first, then place the chunks longest first; the sort
    // is stable, so equal lengths keep corpus order and the result is deterministic.
    let mut chunks: Vec<(Vec<u32>, Vec<bool>)> = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let targets = packer.targets_of(doc, index)?;
        packer.stats.documents += 1;
        if doc.tokens.is_empty() {
            packer.stats.empty_documents += 1;
        }
        for (t, m) in doc.tokens.chunks(config.seq_len).zip(targets.chunks(config.seq_len)) {
            chunks.push((t.to_vec(), m.to_vec()));
        }
    }
    chunks.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
    for (tokens, targets) in &chunks {
        packer.place(tokens, targets, 0);
    }
    packer.finish();
    let rows = packer.ready.drain(..).map(|r| r.row).collect();
    Ok(Packed { rows, stats: packer.stats })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seq_len: usize, loss_mask: LossMask) -> PackConfig {
        PackConfig { seq_len, pad_id: 0, loss_mask }
    }

    /// Deterministic pseudo-random numbers without a dependency (SplitMix64).
    struct Rng(u64);
    impl Rng {
        fn next_f64(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Log-normal: agent trajectories and PR texts are heavy-tailed.
        fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
            let (u1, u2) = (self.next_f64().max(1e-12), self.next_f64());
            let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            median * (sigma * normal).exp()
        }
    }

    /// Lengths shaped like the paper's data: median ~700 tokens, a long tail past 2,048 that is
    /// cut (env trajectories reach 128k, ctx samples 32k).
    fn realistic_corpus(n: usize, seed: u64) -> Vec<Document> {
        let mut rng = Rng(seed);
        (0..n)
            .map(|i| {
                let len = rng.lognormal(700.0, 1.1).clamp(8.0, 32_768.0) as usize;
                Document::new((0..len).map(|j| ((i * 31 + j) % 1000) as u32 + 1).collect())
            })
            .collect()
    }

    #[test]
    fn positions_restart_and_labels_stay_inside_documents() {
        let docs = vec![Document::new(vec![1, 2, 3]), Document::new(vec![4, 5]), Document::new(vec![6, 7, 8, 9])];
        let packed = pack(&docs, config(10, LossMask::None)).expect("packs");
        assert_eq!(packed.rows.len(), 1);
        let row = &packed.rows[0];
        // Longest first: [6 7 8 9] [1 2 3] [4 5] then one pad.
        assert_eq!(row.input_ids, vec![6, 7, 8, 9, 1, 2, 3, 4, 5, 0]);
        assert_eq!(row.position_ids, vec![0, 1, 2, 3, 0, 1, 2, 0, 1, 0]);
        assert_eq!(row.doc_ids, vec![0, 0, 0, 0, 1, 1, 1, 2, 2, PAD_DOC_ID]);
        let i = IGNORE_INDEX;
        assert_eq!(row.labels, vec![7, 8, 9, i, 2, 3, i, 5, i, i]);
        assert_eq!(packed.stats.real_tokens, 9);
        assert_eq!(packed.stats.target_tokens, 6);
        assert!((packed.stats.efficiency() - 0.9).abs() < 1e-12);
    }

    #[test]
    fn long_documents_are_chunked() {
        let docs = vec![Document::new((1..=10).collect())];
        let packed = pack(&docs, config(4, LossMask::None)).expect("packs");
        assert_eq!(packed.stats.chunks, 3);
        assert_eq!(packed.rows.len(), 3);
        assert_eq!(packed.rows[0].input_ids, vec![1, 2, 3, 4]);
        assert_eq!(packed.rows[0].labels, vec![2, 3, 4, IGNORE_INDEX]);
        assert_eq!(packed.rows[2].input_ids, vec![9, 10, 0, 0]);
        assert_eq!(packed.rows[2].position_ids, vec![0, 1, 0, 1]);
        // Every token of the corpus appears exactly once.
        let mut all: Vec<i64> = packed
            .rows
            .iter()
            .flat_map(|r| r.input_ids.iter().zip(&r.doc_ids))
            .filter(|(_, d)| **d != PAD_DOC_ID)
            .map(|(t, _)| *t)
            .collect();
        all.sort_unstable();
        assert_eq!(all, (1..=10).collect::<Vec<_>>());
    }

    #[test]
    fn assistant_mask_marks_only_marked_targets() {
        let doc = Document::with_mask(vec![10, 11, 12, 13, 14], vec![true, false, true, true, false]);
        let packed = pack(std::slice::from_ref(&doc), config(8, LossMask::Assistant)).expect("packs");
        let i = IGNORE_INDEX;
        // Token 0 is marked but nothing precedes it, so it is never a target.
        assert_eq!(packed.rows[0].labels, vec![i, 12, 13, i, i, i, i, i]);
        let packed = pack(&[doc], config(8, LossMask::None)).expect("packs");
        assert_eq!(packed.rows[0].labels, vec![11, 12, 13, 14, i, i, i, i]);
    }

    #[test]
    fn bad_masks_are_refused_with_the_document_index() {
        let docs = vec![Document::new(vec![1, 2]), Document::with_mask(vec![1, 2, 3], vec![true])];
        assert_eq!(
            pack(&docs, config(8, LossMask::None)),
            Err(PackError::MaskLength { document: 1, tokens: 3, mask: 1 })
        );
        let err = pack(&docs[..1], config(8, LossMask::Assistant)).expect_err("no mask");
        assert_eq!(err, PackError::MissingMask { document: 0 });
        assert!(err.to_string().contains("loss_mask = none"));
        assert_eq!(Packer::new(config(1, LossMask::None), 4).err(), Some(PackError::SeqLen(1)));
    }

    #[test]
    fn realistic_lengths_pack_above_95_percent_at_2048() {
        let docs = realistic_corpus(4000, 42);
        let cfg = config(2048, LossMask::None);
        let total: usize = docs.iter().map(|d| d.tokens.len()).sum();

        let packed = pack(&docs, cfg).expect("packs");
        assert_eq!(packed.stats.real_tokens as usize, total, "no token lost or duplicated");
        assert!(packed.rows.iter().all(|r| r.input_ids.len() == 2048));
        let offline = packed.stats.efficiency();

        let mut packer = Packer::new(cfg, 64).expect("packer");
        let mut rows = 0;
        for doc in &docs {
            packer.push(doc).expect("push");
            while packer.pop_row().is_some() {
                rows += 1;
            }
        }
        packer.finish();
        while packer.pop_row().is_some() {
            rows += 1;
        }
        assert_eq!(packer.stats().rows, rows);
        assert_eq!(packer.stats().real_tokens as usize, total);
        let online = packer.stats().efficiency();
        eprintln!(
            "packing efficiency at 2048: offline best-fit decreasing {offline:.4}, online (64 open rows) {online:.4}"
        );
        assert!(offline >= 0.95, "offline efficiency {offline}");
        assert!(online >= 0.95, "online efficiency {online}");
    }

    #[test]
    fn a_restored_snapshot_continues_exactly() {
        let docs = realistic_corpus(300, 7);
        let cfg = config(512, LossMask::None);
        let drain = |p: &mut Packer, out: &mut Vec<TaggedRow>| {
            while let Some(r) = p.pop_tagged_row() {
                out.push(r);
            }
        };
        let (mut straight, mut resumed) = (Vec::new(), Vec::new());
        let mut a = Packer::new(cfg, 8).expect("packer");
        let mut b = Packer::new(cfg, 8).expect("packer");
        for (i, doc) in docs.iter().enumerate() {
            a.push_tagged(doc, i as u64).expect("push");
            b.push_tagged(doc, i as u64).expect("push");
            drain(&mut a, &mut straight);
            // Leave finished rows in `b` now and then, so the snapshot carries some.
            if i % 3 == 0 {
                drain(&mut b, &mut resumed);
            }
            if i == 150 {
                let json = serde_json::to_string(&b.snapshot()).expect("serialises");
                b = Packer::restore(cfg, 8, serde_json::from_str(&json).expect("parses")).expect("restores");
            }
        }
        for p in [&mut a, &mut b] {
            p.finish();
        }
        drain(&mut a, &mut straight);
        drain(&mut b, &mut resumed);
        assert_eq!(straight, resumed, "rows and tags differ after a snapshot and restore");
        assert_eq!(a.stats(), b.stats());
        // Every chunk of every document is in exactly one row, under its tag.
        let mut chunks = vec![0u64; docs.len()];
        for r in &straight {
            for &t in &r.tags {
                chunks[t as usize] += 1;
            }
        }
        for (i, doc) in docs.iter().enumerate() {
            assert_eq!(chunks[i], a.chunks_of(doc.tokens.len()), "document {i}");
        }
        let bad = PackerSnapshot {
            open: vec![OpenRowSnapshot { row: straight[0].row.clone(), next_doc: 1, tags: vec![0] }],
            ..Default::default()
        };
        assert!(matches!(Packer::restore(cfg, 8, bad), Err(PackError::Snapshot(_))), "a full row is not an open row");
    }

    #[test]
    fn loss_mask_parses() {
        assert_eq!("assistant".parse::<LossMask>(), Ok(LossMask::Assistant));
        assert_eq!("none".parse::<LossMask>(), Ok(LossMask::None));
        assert!("all".parse::<LossMask>().is_err());
        assert_eq!(LossMask::Assistant.to_string(), "assistant");
    }
}
