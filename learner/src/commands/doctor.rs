//! `agentmill-learner doctor`: what libtorch can use here, and a tensor op that must come out right.

use anyhow::Result;

use super::emit;

/// Prints the device report, then runs the check on `device`.
pub fn run(device: &str) -> Result<()> {
    let report = crate::device::DeviceReport::probe();
    let device = crate::device::parse_device(device).map_err(anyhow::Error::msg)?;
    // What libtorch reports goes out before the check runs: a check that crashes on a broken
    // driver still leaves it on screen.
    emit(&format!(
        "cuda_backend: {}\ncuda_available: {}\ncuda_devices: {}\ncudnn_available: {}\ncpu_threads: {}\n",
        report.cuda_backend(),
        report.cuda_available,
        report.cuda_devices,
        report.cudnn_available,
        report.cpu_threads,
    ))?;
    let a = tch::Tensor::arange(6, (tch::Kind::Float, device)).reshape([2, 3]);
    let s = a.matmul(&a.transpose(0, 1)).sum(tch::Kind::Float).double_value(&[]);
    emit(&format!("device: {device:?}\nmatmul_check: {}\n", if (s - 83.0).abs() < 1e-6 { "ok" } else { "WRONG" }))?;
    anyhow::ensure!((s - 83.0).abs() < 1e-6, "libtorch computed {s} for a 2x3 matmul check, expected 83");
    Ok(())
}
