//! The host's Python in a process sandbox. There is no image: `python` in the sandbox is the
//! host's. Under bubblewrap only `/usr` is visible by default; [`HostPython::locate`] finds an
//! interpreter (a pyenv build, a venv with the task's test dependencies) and
//! [`ProcessSpec::with_python`] binds its prefixes read-only and puts its `bin` first on `PATH`.

use std::path::PathBuf;
use std::process::Stdio;

use super::{ProcessSandboxError, ProcessSpec};

/// A host Python interpreter as the sandbox needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPython {
    /// The folder of the interpreter's executable (a venv's `bin`, a pyenv version's `bin`).
    pub bin_dir: PathBuf,
    /// `sys.prefix` and `sys.base_prefix`, resolved: what must be visible for it to run.
    pub prefixes: Vec<PathBuf>,
}

impl HostPython {
    /// Asks `program` (a name on `PATH` or a path, e.g. a venv's `bin/python`) where it lives.
    pub fn locate(program: impl AsRef<std::ffi::OsStr>) -> Result<HostPython, ProcessSandboxError> {
        let program = program.as_ref();
        let name = program.to_string_lossy().into_owned();
        let script = "import os, sys\nprint(os.path.dirname(os.path.abspath(sys.executable)))\nprint(sys.prefix)\nprint(sys.base_prefix)";
        let out = std::process::Command::new(program)
            .args(["-I", "-c", script])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| ProcessSandboxError::Python { program: name.clone(), reason: e.to_string() })?;
        if !out.status.success() {
            let reason = format!("it exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
            return Err(ProcessSandboxError::Python { program: name, reason });
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        let [bin_dir, prefix, base_prefix] = lines[..] else {
            return Err(ProcessSandboxError::Python { program: name, reason: format!("unexpected answer {text:?}") });
        };
        let mut prefixes = Vec::new();
        for p in [prefix, base_prefix] {
            let resolved = std::fs::canonicalize(p).map_err(|e| ProcessSandboxError::Python { program: name.clone(), reason: format!("prefix {p}: {e}") })?;
            if !prefixes.contains(&resolved) {
                prefixes.push(resolved);
            }
        }
        // Resolved like the prefixes: a venv reached through a symlink has its `bin` folder under
        // the resolved prefix, the only path bound into the sandbox.
        let bin_dir = std::fs::canonicalize(bin_dir).map_err(|e| ProcessSandboxError::Python { program: name.clone(), reason: format!("bin folder {bin_dir}: {e}") })?;
        Ok(HostPython { bin_dir, prefixes })
    }
}

impl ProcessSpec {
    /// Makes `python` in the sandbox the given host interpreter: its prefixes are bound
    /// read-only and its `bin` folder goes first on `PATH`.
    pub fn with_python(mut self, python: &HostPython) -> Self {
        for prefix in &python.prefixes {
            if !self.ro_binds.contains(prefix) {
                self.ro_binds.push(prefix.clone());
            }
        }
        self.path_prepend.insert(0, python.bin_dir.clone());
        self
    }
}
