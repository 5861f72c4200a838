//! A micro-batch on the device: packed rows stacked into `[rows, seq_len]` tensors, with the
//! counts a step needs (target and real tokens, targets per loss group).

use tch::{Device, TchError, Tensor};

use super::{TrainError, torch_err};
use crate::pack::{IGNORE_INDEX, PAD_DOC_ID, PackedRow};

/// A micro-batch on the device: `[rows, seq_len]` int64 tensors built from packed rows.
#[derive(Debug)]
pub struct Batch {
    /// Token ids.
    pub input_ids: Tensor,
    /// Positions inside each document.
    pub position_ids: Tensor,
    /// Document ids within each row ([`PAD_DOC_ID`] for padding).
    pub doc_ids: Tensor,
    /// Next-token targets, [`IGNORE_INDEX`] where there is none.
    pub labels: Tensor,
    pub(super) max_token_id: i64,
    pub(super) target_tokens: u64,
    pub(super) real_tokens: u64,
    /// Per token, the group its document belongs to (`0..LOSS_GROUPS`; `LOSS_GROUPS` for
    /// padding), flattened, when the loss is to be reported by group.
    pub(super) groups: Option<Tensor>,
    /// Target tokens per group.
    pub(super) targets_by_group: [u64; LOSS_GROUPS],
}

/// Groups a step's loss can be reported by (the service uses the mixing sources, in
/// [`crate::mix::Source::ALL`] order).
pub const LOSS_GROUPS: usize = 3;

impl Batch {
    /// Stacks packed rows (all of one length) into a batch on `device`.
    pub fn from_rows(rows: &[PackedRow], device: Device) -> Result<Batch, TrainError> {
        let Some(first) = rows.first() else {
            return Err(TrainError::Batch("no rows".to_string()));
        };
        let seq_len = first.input_ids.len();
        let mut fields: [Vec<i64>; 4] = std::array::from_fn(|_| Vec::with_capacity(rows.len() * seq_len));
        for (i, row) in rows.iter().enumerate() {
            let parts = [&row.input_ids, &row.position_ids, &row.doc_ids, &row.labels];
            if let Some(bad) = parts.iter().find(|p| p.len() != seq_len) {
                return Err(TrainError::Batch(format!(
                    "row {i} has a field of {} tokens but row 0 has {seq_len}; pack every row to the same seq_len",
                    bad.len()
                )));
            }
            for (field, part) in fields.iter_mut().zip(parts) {
                field.extend_from_slice(part);
            }
        }
        let [input_ids, position_ids, doc_ids, labels] = &fields;
        let max_token_id = input_ids.iter().copied().max().unwrap_or(0);
        let min_token_id = input_ids.iter().copied().min().unwrap_or(0);
        if min_token_id < 0 {
            return Err(TrainError::Batch(format!("token id {min_token_id} is negative")));
        }
        let target_tokens = labels.iter().filter(|&&l| l != IGNORE_INDEX).count() as u64;
        let real_tokens = doc_ids.iter().filter(|&&d| d != PAD_DOC_ID).count() as u64;
        let shape = [rows.len() as i64, seq_len as i64];
        let upload =
            |v: &Vec<i64>| -> Result<Tensor, TchError> { Tensor::f_from_slice(v)?.f_view(shape)?.f_to(device) };
        let to_device = |v: &Vec<i64>, name: &str| upload(v).map_err(torch_err(format!("uploading {name}")));
        Ok(Batch {
            input_ids: to_device(input_ids, "input_ids")?,
            position_ids: to_device(position_ids, "position_ids")?,
            doc_ids: to_device(doc_ids, "doc_ids")?,
            labels: to_device(labels, "labels")?,
            max_token_id,
            target_tokens,
            real_tokens,
            groups: None,
            targets_by_group: [0; LOSS_GROUPS],
        })
    }

    /// [`Batch::from_rows`] with the loss reported by group: `groups[r][d]` (below
    /// [`LOSS_GROUPS`]) is the group of document `d` of row `r`.
    pub fn from_rows_grouped(rows: &[PackedRow], groups: &[Vec<usize>], device: Device) -> Result<Batch, TrainError> {
        let mut batch = Batch::from_rows(rows, device)?;
        if groups.len() != rows.len() {
            return Err(TrainError::Batch(format!("{} rows but groups for {}", rows.len(), groups.len())));
        }
        let mut ids = Vec::with_capacity(rows.len() * rows.first().map_or(0, |r| r.doc_ids.len()));
        for (i, (row, docs)) in rows.iter().zip(groups).enumerate() {
            for (&doc, &label) in row.doc_ids.iter().zip(&row.labels) {
                let group = if doc == PAD_DOC_ID {
                    LOSS_GROUPS
                } else {
                    match usize::try_from(doc).ok().and_then(|d| docs.get(d)) {
                        Some(&g) if g < LOSS_GROUPS => g,
                        _ => {
                            return Err(TrainError::Batch(format!(
                                "row {i}: document {doc} has no group below {LOSS_GROUPS} in {docs:?}"
                            )));
                        }
                    }
                };
                if group < LOSS_GROUPS && label != IGNORE_INDEX {
                    batch.targets_by_group[group] += 1;
                }
                ids.push(group as i64);
            }
        }
        let upload = Tensor::f_from_slice(&ids).and_then(|t| t.f_to(device));
        batch.groups = Some(upload.map_err(torch_err("uploading the token groups"))?);
        Ok(batch)
    }

    /// Positions that contribute to the loss.
    pub fn target_tokens(&self) -> u64 {
        self.target_tokens
    }

    /// Tokens that are not padding.
    pub fn real_tokens(&self) -> u64 {
        self.real_tokens
    }
}
