//! The learning-rate schedule: linear warmup, then cosine decay to a floor.
//!
//! Defaults follow daVinci-Dev's mid-training (peak 8e-5, 5% warmup, cosine decay). The paper
//! does not state the floor; we decay to 10% of the peak, the usual choice for Qwen- and
//! Llama-style pre-training, because a mid-training stage hands its checkpoint to the next
//! stage (the paper's stage 2, then SFT) and a learning rate of exactly zero at the end wastes
//! the last steps. Set `final_lr_ratio` to 0 for a decay to zero.

use serde::{Deserialize, Serialize};

/// Peak learning rate of the paper's mid-training.
pub const PAPER_PEAK_LR: f64 = 8e-5;
/// Fraction of the steps spent warming up in the paper's mid-training.
pub const PAPER_WARMUP_FRACTION: f64 = 0.05;
/// Where the cosine ends, as a fraction of the peak (our choice; see the module doc).
pub const DEFAULT_FINAL_LR_RATIO: f64 = 0.1;

/// Warmup + cosine decay over a known number of optimizer steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Learning rate at the end of warmup.
    pub peak_lr: f64,
    /// Steps of linear warmup from `peak_lr / warmup_steps` to `peak_lr`.
    pub warmup_steps: u64,
    /// Total optimizer steps; the cosine reaches its floor here and stays there after.
    pub total_steps: u64,
    /// The floor as a fraction of `peak_lr`.
    pub final_lr_ratio: f64,
}

impl LrSchedule {
    /// The paper's schedule for a run of `total_steps`: peak 8e-5, 5% warmup (at least one
    /// step), cosine to 10% of the peak.
    pub fn paper(total_steps: u64) -> LrSchedule {
        LrSchedule::with_peak(PAPER_PEAK_LR, total_steps)
    }

    /// The paper's shape with another peak (tiny models train at a much higher rate).
    pub fn with_peak(peak_lr: f64, total_steps: u64) -> LrSchedule {
        let warmup_steps = ((total_steps as f64 * PAPER_WARMUP_FRACTION).ceil() as u64).max(1);
        LrSchedule { peak_lr, warmup_steps, total_steps, final_lr_ratio: DEFAULT_FINAL_LR_RATIO }
    }

    /// The learning rate for optimizer step `step` (0-based: the first update uses `lr_at(0)`).
    pub fn lr_at(&self, step: u64) -> f64 {
        let floor = self.peak_lr * self.final_lr_ratio;
        if step < self.warmup_steps {
            // (step + 1) so the very first update already moves the weights.
            return self.peak_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps);
        if decay_steps == 0 {
            return floor;
        }
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        floor + (self.peak_lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_shape() {
        let s = LrSchedule::paper(1000);
        assert_eq!(s.warmup_steps, 50);
        assert!((s.lr_at(0) - 8e-5 / 50.0).abs() < 1e-15);
        assert!((s.lr_at(49) - 8e-5).abs() < 1e-15, "peak at the end of warmup");
        assert!((s.lr_at(50) - 8e-5).abs() < 1e-15, "cosine starts at the peak");
        let mid = s.lr_at(50 + 475);
        assert!((mid - (8e-6 + (8e-5 - 8e-6) * 0.5)).abs() < 1e-12, "half way down at mid-decay: {mid}");
        assert!((s.lr_at(1000) - 8e-6).abs() < 1e-15);
        assert!((s.lr_at(5000) - 8e-6).abs() < 1e-15, "stays at the floor");
        for step in 50..1000 {
            assert!(s.lr_at(step + 1) <= s.lr_at(step), "monotone decay at {step}");
        }
    }

    #[test]
    fn decay_to_zero_and_degenerate_lengths() {
        let s = LrSchedule { final_lr_ratio: 0.0, ..LrSchedule::paper(100) };
        assert_eq!(s.lr_at(100), 0.0);
        let one = LrSchedule::paper(1);
        assert_eq!(one.warmup_steps, 1);
        assert!((one.lr_at(0) - 8e-5).abs() < 1e-15);
        assert!(one.lr_at(1).is_finite());
    }
}
