//! Reproducible randomness on top of libtorch's process-global generator.
//!
//! libtorch draws every random number (weight initialisation, dropout) from one generator per
//! device, shared by the whole process. Two models built at once on two threads would interleave
//! their draws and neither would be reproducible. Everything in this crate that seeds and then
//! draws does so inside [`with_seed`], which holds a process-wide lock for the duration.
//!
//! A training step draws nothing (Qwen2 has no dropout), so a run is reproducible from its seed
//! and a resumed run needs no generator state: only the initialisation is seeded.

use std::sync::Mutex;

/// Serialises seed-then-draw sequences against libtorch's global generator.
static TORCH_RNG: Mutex<()> = Mutex::new(());

/// Runs `f` with libtorch's generators (CPU and CUDA) seeded with `seed`, holding the lock so
/// no other seeded section in this process draws in between.
pub fn with_seed<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    // A panic inside another seeded section poisons the lock, but the generator it guards
    // carries no invariant of ours: the next caller reseeds it anyway.
    let _guard = TORCH_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(torch_seed(seed));
    f()
}

/// libtorch takes an `i64`; keep it non-negative so it prints the same everywhere.
fn torch_seed(seed: u64) -> i64 {
    (seed & (i64::MAX as u64)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws() {
        let a = with_seed(7, || tch::Tensor::randn([4], (tch::Kind::Float, tch::Device::Cpu)));
        let b = with_seed(7, || tch::Tensor::randn([4], (tch::Kind::Float, tch::Device::Cpu)));
        assert!(a.equal(&b));
    }
}
