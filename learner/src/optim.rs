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

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, TchError, Tensor, nn::VarStore};
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

#[derive(Debug)]
struct ParamState {
    name: String,
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    decay: bool,
}

/// AdamW over every trainable variable of a [`VarStore`].
#[derive(Debug)]
pub struct AdamW {
    config: AdamWConfig,
    params: Vec<ParamState>,
    /// Updates taken so far (the `t` of the bias correction).
    step: u64,
}

/// Prefix of first-moment tensors in [`AdamW::state_tensors`].
const EXP_AVG: &str = "exp_avg.";
/// Prefix of second-moment tensors in [`AdamW::state_tensors`].
const EXP_AVG_SQ: &str = "exp_avg_sq.";

impl AdamW {
    /// An optimizer over `vs`'s variables, with zeroed moments (fp32, beside each parameter).
    pub fn new(vs: &VarStore, config: AdamWConfig) -> Result<AdamW, TchError> {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        // Sorted, so the update order (and any floating-point effect of it) is the same every run.
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let params = named
            .into_iter()
            .map(|(name, param)| {
                let zeros = || Tensor::f_zeros(param.size(), (Kind::Float, param.device()));
                Ok(ParamState { decay: param.dim() >= 2, exp_avg: zeros()?, exp_avg_sq: zeros()?, name, param })
            })
            .collect::<Result<Vec<_>, TchError>>()?;
        Ok(AdamW { config, params, step: 0 })
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

    /// Clears every gradient before the next accumulation.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.param.zero_grad();
        }
    }

    /// The global L2 norm of all gradients, and — when `max_norm > 0` and the norm exceeds
    /// it — scales every gradient by `max_norm / (norm + 1e-6)` as `clip_grad_norm_` does.
    /// Returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Result<f64, TchError> {
        let mut squares = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let grad = p.param.f_grad()?;
            if grad.defined() {
                squares.push(grad.f_to_kind(Kind::Float)?.f_square()?.f_sum(Kind::Float)?);
            }
        }
        if squares.is_empty() {
            return Ok(0.0);
        }
        // One host sync for the whole model instead of one per tensor.
        let total = Tensor::f_stack(&squares, 0)?.f_sum(Kind::Float)?.f_sqrt()?.f_double_value(&[])?;
        if max_norm > 0.0 && total > max_norm {
            let scale = max_norm / (total + 1e-6);
            tch::no_grad(|| -> Result<(), TchError> {
                for p in &self.params {
                    let mut grad = p.param.f_grad()?;
                    if grad.defined() {
                        let _ = grad.f_mul_scalar_(scale)?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(total)
    }

    /// Applies one AdamW update with learning rate `lr` to every parameter that has a gradient.
    pub fn step(&mut self, lr: f64) -> Result<(), TchError> {
        self.step += 1;
        let AdamWConfig { beta1, beta2, eps, weight_decay } = self.config;
        let t = self.step as i32;
        let bias1 = 1.0 - beta1.powi(t);
        let bias2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        tch::no_grad(|| -> Result<(), TchError> {
            for p in &mut self.params {
                let grad = p.param.f_grad()?;
                if !grad.defined() {
                    continue;
                }
                let grad = grad.f_to_kind(Kind::Float)?;
                let _ = p.exp_avg.f_lerp_(&grad, 1.0 - beta1)?;
                let _ = p.exp_avg_sq.f_mul_scalar_(beta2)?;
                let _ = p.exp_avg_sq.f_add_(&grad.f_square()?.f_mul_scalar(1.0 - beta2)?)?;
                if p.decay && weight_decay != 0.0 {
                    let _ = p.param.f_mul_scalar_(1.0 - lr * weight_decay)?;
                }
                let denom = p.exp_avg_sq.f_sqrt()?.f_div_scalar(bias2_sqrt)?.f_add_scalar(eps)?;
                let update = p.exp_avg.f_div(&denom)?.f_mul_scalar(-lr / bias1)?;
                let _ = p.param.f_add_(&update.f_to_kind(p.param.kind())?)?;
            }
            Ok(())
        })
    }

    /// The moments as named tensors (`exp_avg.<param>`, `exp_avg_sq.<param>`), for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for p in &self.params {
            out.push((format!("{EXP_AVG}{}", p.name), p.exp_avg.shallow_clone()));
            out.push((format!("{EXP_AVG_SQ}{}", p.name), p.exp_avg_sq.shallow_clone()));
        }
        out
    }

    /// Restores the moments saved by [`AdamW::state_tensors`] and the step count.
    pub fn load_state(&mut self, mut tensors: HashMap<String, Tensor>, step: u64) -> Result<(), OptimError> {
        for p in &mut self.params {
            for (prefix, target) in [(EXP_AVG, &mut p.exp_avg), (EXP_AVG_SQ, &mut p.exp_avg_sq)] {
                let name = format!("{prefix}{}", p.name);
                let saved = tensors.remove(&name).ok_or_else(|| OptimError::MissingState(name.clone()))?;
                if saved.size() != target.size() {
                    return Err(OptimError::Shape { name, expected: target.size(), found: saved.size() });
                }
                tch::no_grad(|| target.f_copy_(&saved))?;
            }
        }
        self.step = step;
        Ok(())
    }
}
