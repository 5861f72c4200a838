//! The loss: next-token cross-entropy in fp32 over the labelled positions, its backward scaled
//! to the step's mean, the head run on slices of the tokens, and the loss without gradients.

use tch::{Kind, Reduction, TchError, Tensor};

use super::{Batch, LOSS_GROUPS, TrainError, torch_err};
use crate::model::Qwen2ForCausalLM;
use crate::pack::IGNORE_INDEX;

/// Sum of next-token cross-entropy (fp32) over positions whose label is not [`IGNORE_INDEX`].
pub fn token_loss_sum(logits: &Tensor, labels: &Tensor) -> Result<Tensor, TchError> {
    cross_entropy(logits, labels, Reduction::Sum)
}

/// Next-token cross-entropy (fp32) of every position, flattened; 0 where the label is
/// [`IGNORE_INDEX`].
pub fn token_losses(logits: &Tensor, labels: &Tensor) -> Result<Tensor, TchError> {
    cross_entropy(logits, labels, Reduction::None)
}

fn cross_entropy(logits: &Tensor, labels: &Tensor, reduction: Reduction) -> Result<Tensor, TchError> {
    let vocab = logits.size().last().copied().unwrap_or(0);
    let flat = logits.f_to_kind(Kind::Float)?.f_reshape([-1, vocab])?;
    flat.f_cross_entropy_loss(&labels.f_reshape([-1])?, None::<&Tensor>, reduction, IGNORE_INDEX, 0.0)
}

/// The loss of `logits` against `labels` divided by `targets`, backward; returns the detached
/// sum and, with `groups` (one per token, flattened), the sums binned by group.
pub(super) fn loss_backward(
    logits: &Tensor,
    labels: &Tensor,
    groups: Option<&Tensor>,
    targets: u64,
) -> Result<(Tensor, Option<Tensor>), TchError> {
    let (sum, bins) = match groups {
        None => (token_loss_sum(logits, labels)?, None),
        Some(groups) => {
            // The same cross-entropy, kept per token (0 where ignored), then binned.
            let per_token = token_losses(logits, labels)?;
            let bins = Tensor::f_zeros([LOSS_GROUPS as i64 + 1], (Kind::Float, per_token.device()))?
                .f_index_add(0, groups, &per_token.f_detach()?)?;
            (per_token.f_sum(Kind::Float)?, Some(bins))
        }
    };
    // Dividing by the step's target count makes the accumulated gradient that of the mean over
    // all targets, however the batch was split.
    sum.f_div_scalar(targets as f64)?.f_backward()?;
    Ok((sum.f_detach()?, bins))
}

/// Backward from `output` with `grad` as its incoming gradient (`output.backward(grad)`).
pub(super) fn backward_with(output: &Tensor, grad: &Tensor) -> Result<(), TchError> {
    output.f_mul(grad)?.f_sum(Kind::Float)?.f_backward()
}

pub(super) fn accumulate(acc: Option<Tensor>, t: Tensor) -> Result<Tensor, TrainError> {
    match acc {
        Some(acc) => acc.f_add(&t).map_err(torch_err("accumulating the loss")),
        None => Ok(t),
    }
}

/// Runs the model's head on `hidden` (`[B, T, hidden]`) `chunk` tokens at a time (flattened
/// across rows) and hands each slice's logits, labels and groups to `each`.
pub(super) fn for_each_token_slice(
    model: &Qwen2ForCausalLM,
    hidden: &Tensor,
    labels: &Tensor,
    groups: Option<&Tensor>,
    chunk: i64,
    mut each: impl FnMut(Tensor, Tensor, Option<Tensor>) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let width = hidden.size().last().copied().unwrap_or(0);
    let flat = hidden.f_reshape([-1, width]).map_err(torch_err("flattening the hidden states"))?;
    let labels = labels.f_reshape([-1]).map_err(torch_err("flattening the labels"))?;
    let tokens = labels.size()[0];
    let chunk = chunk.clamp(1, tokens.max(1));
    for start in (0..tokens).step_by(chunk as usize) {
        let len = chunk.min(tokens - start);
        let slice = |t: &Tensor| t.f_narrow(0, start, len).map_err(torch_err("slicing the tokens"));
        let logits = model.head(&slice(&flat)?)?;
        each(logits, slice(&labels)?, groups.map(slice).transpose()?)?;
    }
    Ok(())
}

pub(super) fn check_tokens(model: &Qwen2ForCausalLM, batch: &Batch) -> Result<(), TrainError> {
    let vocab = model.config().vocab_size as i64;
    if batch.max_token_id >= vocab {
        return Err(TrainError::Batch(format!(
            "token id {} is outside the model's vocabulary of {vocab}; the tokenizer and config.json disagree",
            batch.max_token_id
        )));
    }
    Ok(())
}

/// Tokens whose logits [`loss_sum`] holds at once.
const EVAL_CHUNK_TOKENS: i64 = 4096;

/// Sum of `model`'s next-token loss over `batch`'s target tokens, without gradients (0 when the
/// batch has none).
pub fn loss_sum(model: &Qwen2ForCausalLM, batch: &Batch) -> Result<f64, TrainError> {
    check_tokens(model, batch)?;
    if batch.target_tokens == 0 {
        return Ok(0.0);
    }
    let sum = tch::no_grad(|| -> Result<Tensor, TrainError> {
        // The head runs on slices of the tokens: without a graph, only one slice's logits exist.
        let hidden = model.hidden_states(&batch.input_ids, &batch.position_ids, Some(&batch.doc_ids))?;
        let mut sum = None;
        for_each_token_slice(model, &hidden, &batch.labels, None, EVAL_CHUNK_TOKENS, |logits, labels, _| {
            let s = token_loss_sum(&logits, &labels).map_err(torch_err("computing the loss"))?;
            sum = Some(accumulate(sum.take(), s)?);
            Ok(())
        })?;
        sum.ok_or_else(|| TrainError::Batch("a batch without tokens".to_string()))
    })?;
    sum.f_double_value(&[]).map_err(torch_err("reading the loss"))
}
