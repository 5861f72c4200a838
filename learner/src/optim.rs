//! AdamW with decoupled weight decay, global-norm gradient clipping, and state that can be
//! saved and restored exactly.
//!
//! Written here rather than using tch's `nn::AdamW` because libtorch's C++ optimizers do not
//! expose their moment tensors through tch, and a resumed run must start from the same moments
//! to continue the same loss curve. The update is PyTorch's `AdamW` (single-tensor path):
//! `m ← β₁m + (1-β₁)g`, `v ← β₂v + (1-β₂)g²`, `p ← p(1 - lr·wd)`,
//! `p ← p - lr/(1-β₁ᵗ) · m / (√v/√(1-β₂ᵗ) + ε)`.
//!
//! Weight decay applies to matrices only (projections and embeddings); norms' gains and biases
//! are not decayed, since shrinking them toward zero is not a regulariser but a bias.
//!
//! # Flat buffers
//!
//! tch exposes neither libtorch's fused AdamW kernel nor its `_foreach_*` multi-tensor ops, and a
//! loop of a dozen tensor ops per parameter spends most of its time launching small kernels
//! and allocating temporaries. So the optimizer keeps every parameter of one dtype and device
//! in **one flat buffer** (each variable of the [`VarStore`] becomes a view into it, via
//! `set_data`), with flat gradient, moment and scratch buffers laid out the same way: the update
//! is then the same dozen ops run once over the whole model (in chunks of [`CHUNK`] elements),
//! with no temporaries, and the gradient norm is one pass. The arithmetic is the per-tensor
//! update's op for op, so the update is bit for bit the same (a test checks it; the norm is
//! summed in another order, so a clipped gradient may differ in the last bit). Matrices come
//! first in a buffer, so weight decay is one op on a prefix; every slot starts on a 64-byte
//! boundary (the padding between and after slots holds zeros and stays zero).
//!
//! Gradients: after the first step, every parameter's `.grad` is itself a view of its slot in
//! the flat gradient buffer, so `loss.backward()` accumulates into the buffer in place (as it
//! accumulates into any existing `.grad`) and [`AdamW::zero_grad`] is one fill. Gradients are
//! zeroed rather than set to none: the memory is the same as plain `.grad` tensors (a
//! set-to-none scheme would need the fresh gradients and the flat buffer at once), and a
//! parameter that got no gradient since the zeroing is updated with a zero gradient, as before.
//! Only a parameter whose `.grad` was never defined is skipped (its moments are not decayed),
//! as in PyTorch.
//!
//! Past 600 lines with its unit tests (the code is under 500): the flat-buffer update is
//! checked bit for bit against PyTorch's per-tensor AdamW, kept beside it as the reference.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, TchError, Tensor, nn::VarStore};
use thiserror::Error;

/// AdamW's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    /// Decoupled weight decay, applied to matrices only.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// β = (0.9, 0.95), ε = 1e-8, weight decay 0.1: the usual LLM pre-training values.
    fn default() -> AdamWConfig {
        AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 }
    }
}

/// Why optimizer state cannot be restored.
#[derive(Debug, Error)]
pub enum OptimError {
    /// The saved state lacks a moment for a parameter of this model.
    #[error("optimizer state has no {0}; it was saved for a different model")]
    MissingState(String),
    /// The saved moment has another shape than the parameter.
    #[error(
        "optimizer state {name} has shape {found:?} but the parameter has {expected:?}; it was saved for a different model"
    )]
    Shape {
        /// The state tensor's name.
        name: String,
        /// The parameter's shape.
        expected: Vec<i64>,
        /// The saved shape.
        found: Vec<i64>,
    },
    /// libtorch refused an operation.
    #[error("optimizer: {0}")]
    Torch(TchError),
}

// By hand rather than `#[from]`, so libtorch's message is printed once in an error chain.
impl From<TchError> for OptimError {
    fn from(error: TchError) -> OptimError {
        OptimError::Torch(error)
    }
}

/// Elements the flat update processes per op (64 MiB of fp32): bounds the scratch buffer.
const CHUNK: i64 = 1 << 24;
/// Every parameter's slot in a flat buffer starts on this boundary.
const ALIGN_BYTES: usize = 64;
/// A flat buffer's length is a multiple of this (zeros after the last slot), so the gradient
/// norm can be taken over rows of it: one pass, and accurate (a single fp32 reduction over
/// millions of elements loses ~1e-4 relative). Divides [`CHUNK`].
const NORM_ROW: i64 = 4096;

/// One trainable variable and where it lives in its group's flat buffers.
#[derive(Debug)]
struct ParamState {
    name: String,
    /// The variable (a view into its group's `params` buffer).
    param: Tensor,
    decay: bool,
    group: usize,
    /// First element of the slot in the group's buffers.
    offset: i64,
    numel: i64,
    shape: Vec<i64>,
    /// Whether it has a gradient (`.grad` is defined) this step.
    has_grad: bool,
}

/// The flat buffers of all parameters that share a dtype and a device.
#[derive(Debug)]
struct Group {
    kind: Kind,
    /// The parameters, in their dtype.
    params: Tensor,
    /// Their gradients, in the parameters' dtype.
    grads: Tensor,
    /// First moments (fp32).
    exp_avg: Tensor,
    /// Second moments (fp32).
    exp_avg_sq: Tensor,
    /// fp32 workspace of `min(len, CHUNK)` elements.
    scratch: Tensor,
    /// Elements in each buffer, padding included.
    len: i64,
    /// The decayed parameters occupy `[0, decay_len)`.
    decay_len: i64,
    /// Indices (into `AdamW::params`) of this group's parameters, in slot order.
    members: Vec<usize>,
}

/// AdamW over every trainable variable of a [`VarStore`].
#[derive(Debug)]
pub struct AdamW {
    config: AdamWConfig,
    /// Sorted by name.
    params: Vec<ParamState>,
    groups: Vec<Group>,
    /// Updates taken so far (the `t` of the bias correction).
    step: u64,
}

/// Prefix of first-moment tensors in [`AdamW::state_tensors`].
const EXP_AVG: &str = "exp_avg.";
/// Prefix of second-moment tensors in [`AdamW::state_tensors`].
const EXP_AVG_SQ: &str = "exp_avg_sq.";

/// Whether `t` is `p`'s slot of `buffer`: same first element, shape and dtype, contiguous.
fn is_slot(t: &Tensor, buffer: &Tensor, p: &ParamState) -> bool {
    let kind = buffer.kind();
    let address = buffer.data_ptr() as usize + p.offset as usize * kind.elt_size_in_bytes();
    t.data_ptr() as usize == address && t.kind() == kind && t.size() == p.shape && t.is_contiguous()
}

/// The smallest multiple of `m` that is at least `x` (both positive).
fn round_up(x: i64, m: i64) -> i64 {
    (x + m - 1) / m * m
}

/// Casts to `kind`; a no-op (same storage) when the tensor already has it.
fn cast(x: &Tensor, kind: Kind) -> Result<Tensor, TchError> {
    if x.kind() == kind { Ok(x.shallow_clone()) } else { x.f_to_kind(kind) }
}

/// The scalars of update number `step`.
#[derive(Debug, Clone, Copy)]
struct StepScalars {
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// `1 - lr·wd`, for the decayed range.
    decay_factor: Option<f64>,
    bias2_sqrt: f64,
    /// `-lr / (1 - β₁ᵗ)`.
    step_size: f64,
}

/// The update of elements `[start, start + len)` of a group's buffers, the first `decay_len`
/// of which are decayed: op for op the per-tensor update (the module doc's formula, in
/// PyTorch's single-tensor order), with the temporaries written into the scratch buffer.
fn update_range(g: &Group, start: i64, len: i64, decay_len: i64, s: StepScalars) -> Result<(), TchError> {
    let mut p = g.params.f_narrow(0, start, len)?;
    let grad = cast(&g.grads.f_narrow(0, start, len)?, Kind::Float)?;
    let mut m = g.exp_avg.f_narrow(0, start, len)?;
    let mut v = g.exp_avg_sq.f_narrow(0, start, len)?;
    let mut tmp = g.scratch.f_narrow(0, 0, len)?;
    let _ = m.f_lerp_(&grad, 1.0 - s.beta1)?;
    let _ = v.f_mul_scalar_(s.beta2)?;
    let _ = grad.f_square_out(&tmp)?;
    let _ = tmp.f_mul_scalar_(1.0 - s.beta2)?;
    let _ = v.f_add_(&tmp)?;
    if let Some(factor) = s.decay_factor
        && decay_len > 0
    {
        let _ = p.f_narrow(0, 0, decay_len)?.f_mul_scalar_(factor)?;
    }
    let _ = v.f_sqrt_out(&tmp)?;
    let _ = tmp.f_div_scalar_(s.bias2_sqrt)?;
    let _ = tmp.f_add_scalar_(s.eps)?;
    let _ = m.f_div_out(&tmp, &tmp)?;
    let _ = tmp.f_mul_scalar_(s.step_size)?;
    let _ = p.f_add_(&cast(&tmp, g.kind)?)?;
    Ok(())
}

impl AdamW {
    /// An optimizer over `vs`'s variables, with zeroed moments (fp32, beside each parameter).
    ///
    /// Moves every trainable variable into its group's flat buffer (the variables keep their
    /// names, values and identity; only their storage changes).
    pub fn new(vs: &VarStore, config: AdamWConfig) -> Result<AdamW, TchError> {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        // Sorted, so the layout (and any floating-point effect of it) is the same every run.
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut params: Vec<ParamState> = named
            .into_iter()
            .map(|(name, param)| ParamState {
                decay: param.dim() >= 2,
                group: 0,
                offset: 0,
                numel: param.numel() as i64,
                shape: param.size(),
                has_grad: false,
                name,
                param,
            })
            .collect();
        let mut keys: Vec<(Kind, Device)> = Vec::new();
        for p in &mut params {
            let key = (p.param.kind(), p.param.device());
            p.group = match keys.iter().position(|k| *k == key) {
                Some(i) => i,
                None => {
                    keys.push(key);
                    keys.len() - 1
                }
            };
        }
        let groups = keys
            .iter()
            .enumerate()
            .map(|(index, &(kind, device))| Group::build(index, kind, device, &mut params))
            .collect::<Result<Vec<_>, TchError>>()?;
        Ok(AdamW { config, params, groups, step: 0 })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Updates taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Names of the parameters that are decayed, for logs and tests.
    pub fn decayed_parameters(&self) -> Vec<&str> {
        self.params.iter().filter(|p| p.decay).map(|p| p.name.as_str()).collect()
    }

    /// Clears every gradient before the next accumulation: one fill of each flat gradient
    /// buffer (the parameters' `.grad` are views of it after the first step).
    pub fn zero_grad(&mut self) {
        for group in &mut self.groups {
            let _ = group.grads.zero_();
        }
        for p in &mut self.params {
            let group = &self.groups[p.group];
            let grad = p.param.grad();
            if grad.defined() && !is_slot(&grad, &group.grads, p) {
                p.param.zero_grad();
            }
        }
    }

    /// Makes every parameter's `.grad` a view of its slot in the flat gradient buffer, copying
    /// a gradient that is elsewhere (the first backward pass allocates them; something may have
    /// replaced one) into its slot first. Later backward passes then accumulate into the buffer
    /// in place. Records which parameters have a gradient at all.
    fn bind_grads(&mut self) -> Result<(), TchError> {
        tch::no_grad(|| -> Result<(), TchError> {
            for p in &mut self.params {
                let group = &self.groups[p.group];
                let mut grad = p.param.f_grad()?;
                p.has_grad = grad.defined();
                if p.has_grad && !is_slot(&grad, &group.grads, p) {
                    let mut slot = group.grads.f_narrow(0, p.offset, p.numel)?.f_view(p.shape.as_slice())?;
                    slot.f_copy_(&grad)?;
                    grad.f_set_data(&slot)?;
                }
            }
            Ok(())
        })
    }

    /// Makes sure every variable is still a view of its slot (something may have replaced a
    /// variable's storage, e.g. `set_data` or a dtype change); re-binds one that is not,
    /// keeping its current value (in the buffer's dtype).
    fn ensure_bound(&mut self) -> Result<(), TchError> {
        for p in &mut self.params {
            let group = &self.groups[p.group];
            if !is_slot(&p.param, &group.params, p) {
                tch::no_grad(|| -> Result<(), TchError> {
                    let mut slot = group.params.f_narrow(0, p.offset, p.numel)?.f_view(p.shape.as_slice())?;
                    slot.f_copy_(&p.param.f_to_kind(group.kind)?)?;
                    p.param.f_set_data(&slot)
                })?;
            }
        }
        Ok(())
    }

    /// The global L2 norm of all gradients, and — when `max_norm > 0` and the norm exceeds
    /// it — scales every gradient by `max_norm / (norm + 1e-6)` as `clip_grad_norm_` does.
    /// Returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Result<f64, TchError> {
        self.bind_grads()?;
        // Sums of squares, per group, added up in one tensor.
        let mut squares = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            let members: Vec<&ParamState> = group.members.iter().map(|&i| &self.params[i]).collect();
            if members.iter().all(|p| p.has_grad) {
                // The whole buffer (the padding is zero) in rows of NORM_ROW: the rows' norms,
                // then the sum of their squares.
                let mut start = 0;
                while start < group.len {
                    let len = CHUNK.min(group.len - start);
                    let rows = cast(&group.grads.f_narrow(0, start, len)?, Kind::Float)?.f_view([-1, NORM_ROW])?;
                    let norms = rows.f_norm_scalaropt_dim(2, [1], false)?;
                    squares.push(norms.f_square()?.f_sum(Kind::Float)?);
                    start += len;
                }
            } else {
                for p in members.into_iter().filter(|p| p.has_grad) {
                    let grad = cast(&group.grads.f_narrow(0, p.offset, p.numel)?, Kind::Float)?;
                    squares.push(grad.f_square()?.f_sum(Kind::Float)?);
                }
            }
        }
        if squares.is_empty() {
            return Ok(0.0);
        }
        // One host sync for the whole model.
        let total = Tensor::f_stack(&squares, 0)?.f_sum(Kind::Float)?.f_sqrt()?.f_double_value(&[])?;
        if max_norm > 0.0 && total > max_norm {
            let scale = max_norm / (total + 1e-6);
            tch::no_grad(|| -> Result<(), TchError> {
                for group in &mut self.groups {
                    // Slots of parameters without a gradient hold zeros: scaling them is harmless.
                    let _ = group.grads.f_mul_scalar_(scale)?;
                }
                Ok(())
            })?;
        }
        Ok(total)
    }

    /// Applies one AdamW update with learning rate `lr` to every parameter that has a gradient.
    pub fn step(&mut self, lr: f64) -> Result<(), TchError> {
        self.bind_grads()?;
        self.ensure_bound()?;
        self.step += 1;
        let AdamWConfig { beta1, beta2, eps, weight_decay } = self.config;
        let t = self.step as i32;
        let scalars = StepScalars {
            beta1,
            beta2,
            eps,
            decay_factor: (weight_decay != 0.0).then_some(1.0 - lr * weight_decay),
            bias2_sqrt: (1.0 - beta2.powi(t)).sqrt(),
            step_size: -lr / (1.0 - beta1.powi(t)),
        };
        tch::no_grad(|| -> Result<(), TchError> {
            for group in &self.groups {
                if group.members.iter().all(|&i| self.params[i].has_grad) {
                    let mut start = 0;
                    while start < group.len {
                        let len = CHUNK.min(group.len - start);
                        let decay_len = (group.decay_len - start).clamp(0, len);
                        update_range(group, start, len, decay_len, scalars)?;
                        start += len;
                    }
                } else {
                    for &i in &group.members {
                        let p = &self.params[i];
                        if p.has_grad {
                            // Slots are far smaller than CHUNK only in models far smaller than
                            // memory; a slot larger than the scratch is updated in pieces.
                            let mut start = 0;
                            while start < p.numel {
                                let len = CHUNK.min(p.numel - start);
                                let decay_len = if p.decay { len } else { 0 };
                                update_range(group, p.offset + start, len, decay_len, scalars)?;
                                start += len;
                            }
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// The moments as named tensors (`exp_avg.<param>`, `exp_avg_sq.<param>`), for a checkpoint.
    /// They are views of the optimizer's buffers.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for p in &self.params {
            let group = &self.groups[p.group];
            for (prefix, buffer) in [(EXP_AVG, &group.exp_avg), (EXP_AVG_SQ, &group.exp_avg_sq)] {
                // Narrowing a 1-D buffer inside its length and viewing it as the slot's shape
                // cannot fail.
                let view = buffer.narrow(0, p.offset, p.numel).view(p.shape.as_slice());
                out.push((format!("{prefix}{}", p.name), view));
            }
        }
        out
    }

    /// Restores the moments saved by [`AdamW::state_tensors`] and the step count.
    pub fn load_state(&mut self, mut tensors: HashMap<String, Tensor>, step: u64) -> Result<(), OptimError> {
        for p in &self.params {
            let group = &self.groups[p.group];
            for (prefix, buffer) in [(EXP_AVG, &group.exp_avg), (EXP_AVG_SQ, &group.exp_avg_sq)] {
                let name = format!("{prefix}{}", p.name);
                let saved = tensors.remove(&name).ok_or_else(|| OptimError::MissingState(name.clone()))?;
                if saved.size() != p.shape {
                    return Err(OptimError::Shape { name, expected: p.shape.clone(), found: saved.size() });
                }
                let mut target = buffer.f_narrow(0, p.offset, p.numel)?.f_view(p.shape.as_slice())?;
                tch::no_grad(|| target.f_copy_(&saved))?;
            }
        }
        self.step = step;
        Ok(())
    }
}

impl Group {
    /// Lays out the parameters of group `index` (matrices first), copies them into a new flat
    /// buffer and makes each variable a view of its slot.
    fn build(index: usize, kind: Kind, device: Device, params: &mut [ParamState]) -> Result<Group, TchError> {
        let align = (ALIGN_BYTES / kind.elt_size_in_bytes()).max(1) as i64;
        let mut members: Vec<usize> = (0..params.len()).filter(|&i| params[i].group == index).collect();
        // Stable: by name within each of the two ranges.
        members.sort_by_key(|&i| !params[i].decay);
        let mut len = 0;
        let mut decay_len = 0;
        for &i in &members {
            let p = &mut params[i];
            p.offset = len;
            len += round_up(p.numel, align);
            if p.decay {
                decay_len = len;
            }
        }
        len = round_up(len, NORM_ROW);
        let float = (Kind::Float, device);
        let flat = Tensor::f_zeros([len], (kind, device))?;
        tch::no_grad(|| -> Result<(), TchError> {
            for &i in &members {
                let p = &mut params[i];
                let mut slot = flat.f_narrow(0, p.offset, p.numel)?.f_view(p.shape.as_slice())?;
                slot.f_copy_(&p.param)?;
                p.param.f_set_data(&slot)?;
            }
            Ok(())
        })?;
        Ok(Group {
            kind,
            grads: Tensor::f_zeros([len], (kind, device))?,
            exp_avg: Tensor::f_zeros([len], float)?,
            exp_avg_sq: Tensor::f_zeros([len], float)?,
            scratch: Tensor::f_zeros([len.min(CHUNK)], float)?,
            params: flat,
            len,
            decay_len,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::Init;

    /// The per-tensor update this optimizer replaced (PyTorch's single-tensor AdamW, op for
    /// op), kept as the reference the flat buffers must reproduce bit for bit.
    struct Reference {
        config: AdamWConfig,
        /// `(param, exp_avg, exp_avg_sq, decay)`, plain tensors.
        params: Vec<(Tensor, Tensor, Tensor, bool)>,
        step: u64,
    }

    impl Reference {
        fn new(params: &[Tensor], config: AdamWConfig) -> Reference {
            let params =
                params.iter().map(|p| (p.detach().copy(), p.zeros_like(), p.zeros_like(), p.dim() >= 2)).collect();
            Reference { config, params, step: 0 }
        }

        /// The old `clip_grad_norm`: per-tensor sums of squares, one sum, one square root.
        fn clip(&self, grads: &mut [Tensor], max_norm: f64) -> f64 {
            let squares: Vec<Tensor> = grads.iter().map(|g| g.square().sum(Kind::Float)).collect();
            let total = Tensor::stack(&squares, 0).sum(Kind::Float).sqrt().double_value(&[]);
            if max_norm > 0.0 && total > max_norm {
                let scale = max_norm / (total + 1e-6);
                for g in grads.iter_mut() {
                    *g = &*g * scale;
                }
            }
            total
        }

        /// The old `step`.
        fn step(&mut self, grads: &[Tensor], lr: f64) {
            self.step += 1;
            let AdamWConfig { beta1, beta2, eps, weight_decay } = self.config;
            let t = self.step as i32;
            let bias1 = 1.0 - beta1.powi(t);
            let bias2_sqrt = (1.0 - beta2.powi(t)).sqrt();
            for ((p, m, v, decay), grad) in self.params.iter_mut().zip(grads) {
                let mut run = || -> Result<(), TchError> {
                    let _ = m.f_lerp_(grad, 1.0 - beta1)?;
                    let _ = v.f_mul_scalar_(beta2)?;
                    let _ = v.f_add_(&grad.f_square()?.f_mul_scalar(1.0 - beta2)?)?;
                    if *decay && weight_decay != 0.0 {
                        let _ = p.f_mul_scalar_(1.0 - lr * weight_decay)?;
                    }
                    let denom = v.f_sqrt()?.f_div_scalar(bias2_sqrt)?.f_add_scalar(eps)?;
                    let update = m.f_div(&denom)?.f_mul_scalar(-lr / bias1)?;
                    let _ = p.f_add_(&update)?;
                    Ok(())
                };
                run().expect("reference update");
            }
        }
    }

    /// Odd sizes (so slots are padded), matrices and vectors (so decay is split), in a name
    /// order that differs from the decay order.
    fn store() -> (VarStore, Vec<(String, Tensor)>) {
        tch::manual_seed(7);
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let randn = Init::Randn { mean: 0.0, stdev: 1.0 };
        let _ = root.var("a_bias", &[19], randn);
        let _ = root.var("b_weight", &[37, 19], randn);
        let _ = root.var("c_norm", &[5], randn);
        let _ = root.var("d_weight", &[8, 8], randn);
        let _ = root.var("e_embed", &[3, 7], randn);
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        (vs, named)
    }

    /// `sum(p * g)` over the parameters: its gradient is exactly `g`.
    fn loss_with_grads(params: &[(String, Tensor)], grads: &[Tensor]) -> Tensor {
        params.iter().zip(grads).map(|((_, p), g)| (p * g).sum(Kind::Float)).reduce(|a, b| a + b).expect("parameters")
    }

    fn random_grads(params: &[(String, Tensor)], scale: f64) -> Vec<Tensor> {
        params.iter().map(|(_, p)| p.randn_like() * scale).collect()
    }

    fn assert_same(params: &[(String, Tensor)], reference: &Reference, what: &str) {
        for ((name, p), (r, _, _, _)) in params.iter().zip(&reference.params) {
            let diff = (p - r).abs().max().double_value(&[]);
            assert_eq!(diff, 0.0, "{what}: {name} differs from the per-tensor update by {diff}");
        }
    }

    #[test]
    fn flat_update_is_the_per_tensor_update_bit_for_bit() {
        tch::set_num_threads(1);
        let (vs, params) = store();
        let config = AdamWConfig::default();
        let mut reference = Reference::new(&params.iter().map(|(_, p)| p.shallow_clone()).collect::<Vec<_>>(), config);
        let mut opt = AdamW::new(&vs, config).expect("optimizer");
        assert_eq!(opt.decayed_parameters(), ["b_weight", "d_weight", "e_embed"]);
        for step in 0..5 {
            let lr = 1e-2 * (step + 1) as f64;
            let grads = random_grads(&params, 0.1);
            opt.zero_grad();
            loss_with_grads(&params, &grads).backward();
            // No clipping: the norm is computed, the gradients are used as they are.
            let norm = opt.clip_grad_norm(0.0).expect("clip");
            let expected = reference.clip(&mut grads.iter().map(|g| g.shallow_clone()).collect::<Vec<_>>(), 0.0);
            assert!((norm - expected).abs() <= 1e-6 * expected, "norm {norm} vs {expected}");
            opt.step(lr).expect("step");
            reference.step(&grads, lr);
            assert_same(&params, &reference, &format!("step {step}"));
        }
        // The moments saved in a checkpoint are the reference's too.
        let state: HashMap<String, Tensor> = opt.state_tensors().into_iter().collect();
        for ((name, _), (_, m, v, _)) in params.iter().zip(&reference.params) {
            assert_eq!((&state[&format!("exp_avg.{name}")] - m).abs().max().double_value(&[]), 0.0);
            assert_eq!((&state[&format!("exp_avg_sq.{name}")] - v).abs().max().double_value(&[]), 0.0);
        }
    }

    #[test]
    fn clipping_matches_the_per_tensor_clipping() {
        tch::set_num_threads(1);
        let (vs, params) = store();
        let config = AdamWConfig::default();
        let mut reference = Reference::new(&params.iter().map(|(_, p)| p.shallow_clone()).collect::<Vec<_>>(), config);
        let mut opt = AdamW::new(&vs, config).expect("optimizer");
        for step in 0..3 {
            let grads = random_grads(&params, 1.0);
            opt.zero_grad();
            loss_with_grads(&params, &grads).backward();
            let norm = opt.clip_grad_norm(1.0).expect("clip");
            let mut clipped: Vec<Tensor> = grads.iter().map(|g| g.shallow_clone()).collect();
            let expected = reference.clip(&mut clipped, 1.0);
            assert!(expected > 1.0, "the test must clip");
            assert!((norm - expected).abs() <= 1e-6 * expected, "step {step}: norm {norm} vs {expected}");
            opt.step(1e-2).expect("step");
            reference.step(&clipped, 1e-2);
            // The norms are summed in another order, so the scale may differ in the last bit.
            for ((name, p), (r, _, _, _)) in params.iter().zip(&reference.params) {
                let diff = (p - r).abs().max().double_value(&[]);
                assert!(diff <= 1e-6, "step {step}: {name} differs by {diff}");
            }
        }
    }

    #[test]
    fn micro_batches_accumulate_in_the_flat_buffer() {
        tch::set_num_threads(1);
        let config = AdamWConfig::default();
        let (vs, params) = store();
        let mut reference = Reference::new(&params.iter().map(|(_, p)| p.shallow_clone()).collect::<Vec<_>>(), config);
        let mut opt = AdamW::new(&vs, config).expect("optimizer");
        // The first step allocates the `.grad` tensors and binds them to the flat buffer; the
        // later ones accumulate in it.
        for step in 0..3 {
            let grads_a = random_grads(&params, 0.1);
            let grads_b = random_grads(&params, 0.1);
            let sum: Vec<Tensor> = grads_a.iter().zip(&grads_b).map(|(a, b)| a + b).collect();
            opt.zero_grad();
            loss_with_grads(&params, &grads_a).backward();
            loss_with_grads(&params, &grads_b).backward();
            opt.step(1e-2).expect("step");
            reference.step(&sum, 1e-2);
            // a + b added by autograd into `.grad` or into the flat buffer: one fp32 addition.
            assert_same(&params, &reference, &format!("step {step}"));
            if step > 0 {
                for (name, p) in &params {
                    let group = &opt.groups[0];
                    let state = opt.params.iter().find(|s| &s.name == name).expect("state");
                    assert!(is_slot(&p.grad(), &group.grads, state), "{name}: .grad is not its slot");
                }
            }
        }
        opt.zero_grad();
        for (name, p) in &params {
            assert_eq!(p.grad().abs().max().double_value(&[]), 0.0, "{name}: not zeroed");
        }
    }

    #[test]
    fn a_parameter_without_gradient_is_left_alone() {
        tch::set_num_threads(1);
        let (vs, params) = store();
        let before: Vec<Tensor> = params.iter().map(|(_, p)| p.detach().copy()).collect();
        let mut opt = AdamW::new(&vs, AdamWConfig::default()).expect("optimizer");
        // Only b_weight and d_weight take part in the loss.
        let loss = (&params[1].1 * 2.0).sum(Kind::Float) + params[3].1.square().sum(Kind::Float);
        opt.zero_grad();
        loss.backward();
        opt.clip_grad_norm(1.0).expect("clip");
        opt.step(1e-2).expect("step");
        for (i, ((name, p), b)) in params.iter().zip(&before).enumerate() {
            let moved = (p - b).abs().max().double_value(&[]);
            if i == 1 || i == 3 {
                assert!(moved > 0.0, "{name} was not updated");
            } else {
                assert_eq!(moved, 0.0, "{name} has no gradient but moved (weight decay or moments)");
            }
        }
        let state: HashMap<String, Tensor> = opt.state_tensors().into_iter().collect();
        assert_eq!(state["exp_avg_sq.a_bias"].abs().max().double_value(&[]), 0.0);
    }

    #[test]
    fn variables_stay_the_model_s_tensors() {
        tch::set_num_threads(1);
        let (vs, params) = store();
        let before: Vec<Tensor> = params.iter().map(|(_, p)| p.detach().copy()).collect();
        let mut opt = AdamW::new(&vs, AdamWConfig::default()).expect("optimizer");
        // Flattening keeps every value, and the var store's tensors are the updated ones.
        for ((name, p), b) in params.iter().zip(&before) {
            assert_eq!((p - b).abs().max().double_value(&[]), 0.0, "{name} changed when flattened");
            assert!(p.requires_grad(), "{name} lost requires_grad");
        }
        // Something replaces a variable's storage behind the optimizer's back: the next step
        // re-binds it rather than updating a buffer nobody reads.
        let mut replaced = params[1].1.shallow_clone();
        tch::no_grad(|| replaced.set_data(&replaced.copy()));
        let grads = random_grads(&params, 0.1);
        opt.zero_grad();
        loss_with_grads(&params, &grads).backward();
        opt.step(1e-2).expect("step");
        let by_name = vs.variables();
        for ((name, p), b) in params.iter().zip(&before) {
            assert!((p - b).abs().max().double_value(&[]) > 0.0, "{name} was not updated");
            assert_eq!((&by_name[name] - p).abs().max().double_value(&[]), 0.0);
        }
    }
}
