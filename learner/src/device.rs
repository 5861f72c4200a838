//! Choosing where the learner computes: the GPU when libtorch sees one, the CPU otherwise.

use tch::Device;

/// What this process's libtorch can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    /// Whether libtorch sees a CUDA device.
    pub cuda_available: bool,
    /// Visible CUDA devices.
    pub cuda_devices: usize,
    /// Whether cuDNN is usable.
    pub cudnn_available: bool,
    /// Threads libtorch uses on the CPU.
    pub cpu_threads: i32,
}

impl DeviceReport {
    /// Probes libtorch.
    pub fn probe() -> DeviceReport {
        DeviceReport {
            cuda_available: tch::Cuda::is_available(),
            cuda_devices: tch::Cuda::device_count().max(0) as usize,
            cudnn_available: tch::Cuda::cudnn_is_available(),
            cpu_threads: tch::get_num_threads(),
        }
    }

    /// The device to train on: `cuda:0` when available, else the CPU.
    pub fn default_device(&self) -> Device {
        if self.cuda_available { Device::Cuda(0) } else { Device::Cpu }
    }
}

/// Parses `cpu`, `cuda`, `cuda:N` or `auto`.
pub fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "auto" => Ok(DeviceReport::probe().default_device()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("unknown device {other:?}; use auto, cpu, cuda or cuda:N")),
    }
}
