//! Reproducible randomness on top of libtorch's process-global generator.
//!
//! libtorch draws every random number (weight initialisation, dropout) from one generator per
//! device, shared by the whole process. Two models built at once on two threads would interleave
//! their draws and neither would be reproducible. Everything in this crate that seeds and then
//! draws does so inside [`with_seed`], which holds a process-wide lock for the duration, and what
//! draws without a seed does so inside [`unseeded`], under the same lock.
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

/// Runs `f`, which draws from libtorch's generators without needing a seed (an initialisation
/// that is overwritten at once), holding the same lock: unlocked draws would land between
/// another thread's seeding and its draws and change the weights it gets.
pub fn unseeded<T>(f: impl FnOnce() -> T) -> T {
    let _guard = TORCH_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
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
    fn unseeded_draws_never_land_inside_a_seeded_section() {
        use std::sync::atomic::{AtomicBool, Ordering};
        // Several draws in a row, as a model's initialisation makes: room for another thread's.
        let draw = || (0..8).map(|_| tch::Tensor::randn([4096], (tch::Kind::Float, tch::Device::Cpu))).collect::<Vec<_>>();
        let same = |a: &[tch::Tensor], b: &[tch::Tensor]| a.iter().zip(b).all(|(x, y)| x.equal(y));
        let reference = with_seed(11, draw);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            // Another thread building a model it will overwrite (a checkpoint's load), over and over.
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    unseeded(draw);
                }
            });
            let changed = (0..300).find(|_| !same(&with_seed(11, draw), &reference));
            stop.store(true, Ordering::Relaxed);
            assert_eq!(changed, None, "a draw from the other thread changed the seeded weights in that round");
        });
    }

    #[test]
    fn same_seed_same_draws() {
        let a = with_seed(7, || tch::Tensor::randn([4], (tch::Kind::Float, tch::Device::Cpu)));
        let b = with_seed(7, || tch::Tensor::randn([4], (tch::Kind::Float, tch::Device::Cpu)));
        assert!(a.equal(&b));
    }
}
