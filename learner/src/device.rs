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

/// Parses `cpu`, `cuda`, `cuda:N` or `auto`; a CUDA device libtorch does not see is an error
/// (naming what it sees and the fix), not a crash at the first tensor.
pub fn parse_device(s: &str) -> Result<Device, String> {
    let device = match s {
        "auto" => return Ok(DeviceReport::probe().default_device()),
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => Device::Cuda(0),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("unknown device {other:?}; use auto, cpu, cuda or cuda:N"))?,
    };
    check_cuda(device, &DeviceReport::probe())?;
    Ok(device)
}

/// Whether `report` has the CUDA device `device` names.
fn check_cuda(device: Device, report: &DeviceReport) -> Result<(), String> {
    let Device::Cuda(n) = device else { return Ok(()) };
    if !report.cuda_available {
        return Err(format!(
            "device cuda:{n}: libtorch sees no CUDA device here (is there a GPU and its driver — `nvidia-smi`? is the torch wheel a CUDA build?); use --device cpu or auto"
        ));
    }
    if n >= report.cuda_devices {
        return Err(format!("device cuda:{n}: libtorch sees {} CUDA device(s), cuda:0 to cuda:{}", report.cuda_devices, report.cuda_devices.saturating_sub(1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cuda_device_that_is_not_there_is_an_error_with_the_fix() {
        let cpu_only = DeviceReport { cuda_available: false, cuda_devices: 0, cudnn_available: false, cpu_threads: 2 };
        let e = check_cuda(Device::Cuda(0), &cpu_only).expect_err("no GPU");
        assert!(e.contains("sees no CUDA device") && e.contains("--device cpu"), "{e}");
        let two = DeviceReport { cuda_available: true, cuda_devices: 2, cudnn_available: true, cpu_threads: 2 };
        assert!(check_cuda(Device::Cuda(1), &two).is_ok());
        let e = check_cuda(Device::Cuda(2), &two).expect_err("out of range");
        assert!(e.contains("sees 2 CUDA device(s), cuda:0 to cuda:1"), "{e}");
        assert!(check_cuda(Device::Cpu, &cpu_only).is_ok());
        assert!(parse_device("tpu").expect_err("unknown").contains("use auto, cpu, cuda or cuda:N"));
        assert_eq!(parse_device("cpu"), Ok(Device::Cpu));
    }
}
