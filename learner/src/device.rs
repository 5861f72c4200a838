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
    /// The CUDA runtime version (e.g. 13000 for 13.0) of the CUDA backend linked into this
    /// binary; `None` when it carries none (a CPU-only libtorch, or `libtorch_cuda` dropped at
    /// link time), in which case no GPU will ever be seen, driver or not.
    pub cuda_runtime: Option<i64>,
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
            // The CUDA hooks answer these only when libtorch_cuda is loaded; no GPU is needed.
            cuda_runtime: tch::utils::has_cudart().then(tch::utils::version_cudart),
            cpu_threads: tch::get_num_threads(),
        }
    }

    /// `cuda_runtime` as `linked (CUDA runtime 13.0)` or `none (…)`, for people.
    pub fn cuda_backend(&self) -> String {
        match self.cuda_runtime {
            Some(v) => format!("linked (CUDA runtime {}.{})", v / 1000, v % 1000 / 10),
            None => "none (a CPU-only libtorch, or libtorch_cuda was dropped at link time)".to_string(),
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
        return Err(match report.cuda_runtime {
            Some(_) => format!(
                "device cuda:{n}: libtorch sees no CUDA device here (its CUDA backend is {}: is there a GPU, and a driver for that CUDA — `nvidia-smi`?); use --device cpu or auto",
                report.cuda_backend()
            ),
            None => format!(
                "device cuda:{n}: this build has no CUDA backend, so libtorch sees no CUDA device here (a CPU-only torch wheel, or a build with AGENTMILL_CPU_ONLY=1): rebuild against a CUDA torch, or use --device cpu or auto"
            ),
        });
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
        let no_gpu = DeviceReport {
            cuda_available: false,
            cuda_devices: 0,
            cudnn_available: false,
            cpu_threads: 2,
            cuda_runtime: Some(13000),
        };
        let e = check_cuda(Device::Cuda(0), &no_gpu).expect_err("no GPU");
        assert!(e.contains("sees no CUDA device") && e.contains("CUDA runtime 13.0") && e.contains("--device cpu"), "{e}");
        let cpu_only = DeviceReport { cuda_runtime: None, ..no_gpu.clone() };
        let e = check_cuda(Device::Cuda(0), &cpu_only).expect_err("no CUDA backend");
        assert!(e.contains("this build has no CUDA backend") && e.contains("--device cpu"), "{e}");
        let two = DeviceReport { cuda_available: true, cuda_devices: 2, cudnn_available: true, ..no_gpu };
        assert!(check_cuda(Device::Cuda(1), &two).is_ok());
        let e = check_cuda(Device::Cuda(2), &two).expect_err("out of range");
        assert!(e.contains("sees 2 CUDA device(s), cuda:0 to cuda:1"), "{e}");
        assert!(check_cuda(Device::Cpu, &cpu_only).is_ok());
        assert!(parse_device("tpu").expect_err("unknown").contains("use auto, cpu, cuda or cuda:N"));
        assert_eq!(parse_device("cpu"), Ok(Device::Cpu));
    }
}
