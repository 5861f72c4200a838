//! The worker's ceilings on a task's limits.
//!
//! A task names its own `cpus`, `memory`, `pids`, `disk` and step / episode / test timeouts, and
//! anyone who can submit a task can write `u32::MAX` there. The worker takes a task's limits
//! only up to its own `[limits] max_*` keys: a value above a ceiling is lowered to it before the
//! episode starts (the sandbox is made with the lowered value, the agent loop and the grader
//! use it), the clamp is logged with the task's value and the ceiling, counted in
//! `agentmill_worker_limits_clamped_total`, and the record's `provenance.limits` carries the
//! limits the episode really ran under.

use agentmill_proto::Limits;

/// The most a task may ask for (from `[limits]`, see [`crate::config::LimitsConfig::ceilings`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceilings {
    /// CPUs.
    pub cpus: f64,
    /// Memory, bytes.
    pub memory: u64,
    /// Processes.
    pub pids: u32,
    /// Writable-layer disk, bytes.
    pub disk: u64,
    /// Grading test run, seconds.
    pub test_timeout_s: u32,
    /// One tool call, seconds.
    pub step_timeout_s: u32,
    /// The agent loop, seconds.
    pub episode_timeout_s: u32,
}

impl Default for Ceilings {
    fn default() -> Self {
        crate::config::LimitsConfig::default().ceilings()
    }
}

/// One limit a task asked for above its ceiling.
#[derive(Debug, Clone, PartialEq)]
pub struct Clamped {
    /// The task's key (`pids`, `memory`, `step_timeout_s`, ...).
    pub field: &'static str,
    /// What the task asked for.
    pub asked: String,
    /// The ceiling it runs with.
    pub ceiling: String,
    /// The worker configuration key of the ceiling.
    pub key: &'static str,
}

impl std::fmt::Display for Clamped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "limits.{} {} lowered to {} (the worker's {})", self.field, self.asked, self.ceiling, self.key)
    }
}

impl Ceilings {
    /// Lowers every limit of `limits` above its ceiling to the ceiling; returns what it lowered.
    /// Limits the task leaves unset stay unset (the worker's defaults apply, and they are under
    /// the ceilings: the configuration is refused otherwise).
    pub fn clamp(&self, limits: &mut Limits) -> Vec<Clamped> {
        let mut out = Vec::new();
        fn cap<T: PartialOrd + Copy + ToString>(out: &mut Vec<Clamped>, value: &mut Option<T>, max: T, field: &'static str, key: &'static str) {
            if let Some(v) = value
                && *v > max
            {
                out.push(Clamped { field, asked: v.to_string(), ceiling: max.to_string(), key });
                *value = Some(max);
            }
        }
        cap(&mut out, &mut limits.cpus, self.cpus, "cpus", "limits.max_cpus");
        cap(&mut out, &mut limits.memory, self.memory, "memory", "limits.max_memory");
        cap(&mut out, &mut limits.pids, self.pids, "pids", "limits.max_pids");
        cap(&mut out, &mut limits.disk, self.disk, "disk", "limits.max_disk");
        cap(&mut out, &mut limits.test_timeout_s, self.test_timeout_s, "test_timeout_s", "limits.max_test_timeout");
        cap(&mut out, &mut limits.step_timeout_s, self.step_timeout_s, "step_timeout_s", "limits.max_step_timeout");
        cap(&mut out, &mut limits.episode_timeout_s, self.episode_timeout_s, "episode_timeout_s", "limits.max_episode_timeout");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_above_a_ceiling_are_lowered_to_it_and_named() {
        let ceilings = Ceilings { cpus: 2.0, memory: 1 << 30, pids: 256, disk: 10 << 30, test_timeout_s: 600, step_timeout_s: 60, episode_timeout_s: 3600 };
        let mut limits = Limits {
            cpus: Some(64.0),
            memory: Some(u64::MAX),
            pids: Some(u32::MAX),
            disk: Some(u64::MAX),
            test_timeout_s: Some(u32::MAX),
            step_timeout_s: Some(u32::MAX),
            episode_timeout_s: Some(u32::MAX),
            max_steps: Some(7),
            context_tokens: None,
        };
        let clamped = ceilings.clamp(&mut limits);
        assert_eq!(
            clamped.iter().map(|c| c.field).collect::<Vec<_>>(),
            ["cpus", "memory", "pids", "disk", "test_timeout_s", "step_timeout_s", "episode_timeout_s"]
        );
        assert_eq!(
            (limits.cpus, limits.memory, limits.pids, limits.disk, limits.test_timeout_s, limits.step_timeout_s, limits.episode_timeout_s),
            (Some(2.0), Some(1 << 30), Some(256), Some(10 << 30), Some(600), Some(60), Some(3600))
        );
        assert_eq!(limits.max_steps, Some(7), "limits without a ceiling are left alone");
        assert_eq!(clamped[2].to_string(), "limits.pids 4294967295 lowered to 256 (the worker's limits.max_pids)");
    }

    #[test]
    fn limits_under_the_ceilings_and_unset_ones_are_kept() {
        let mut limits = Limits { pids: Some(100), memory: Some(1 << 20), ..Limits::default() };
        let before = limits.clone();
        assert!(Ceilings::default().clamp(&mut limits).is_empty());
        assert_eq!(limits, before);
    }
}
