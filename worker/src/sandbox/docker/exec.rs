//! Commands in a container: `docker exec` of `bash -c` under GNU `timeout`, which kills the
//! command's whole process group at the deadline, with a host-side timer behind it for a
//! container that stops answering; output past a cap is counted and dropped, never buffered.
//! And processes attached by their stdin and stdout ([`DockerContainer::attach`]).

use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures::StreamExt;
use tracing::warn;

use super::DockerContainer;
use crate::sandbox::{ExecOutput, ExecRequest, SandboxError, collect_output};

impl DockerContainer {
    /// Runs `bash -c <command>` in the container and returns its real output and exit code.
    ///
    /// The deadline is enforced twice: GNU `timeout` in the container kills the command's process
    /// group (exit 137 plus `timed_out`), and a host-side timer a few seconds later abandons the
    /// exec if the container itself stops answering. On a container the disk watchdog stopped,
    /// and for a command running when it does, the answer is [`SandboxError::DiskLimit`].
    pub async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        self.guarded(self.exec_unguarded(req)).await
    }

    async fn exec_unguarded(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        let started = Instant::now();
        let secs = req.timeout.as_secs().max(1);
        let cmd = vec![
            "timeout".to_string(),
            "-s".into(),
            "KILL".into(),
            secs.to_string(),
            "bash".into(),
            "-c".into(),
            req.command.clone(),
        ];
        let exec = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions {
                    cmd: Some(cmd),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    working_dir: Some(req.workdir.clone().unwrap_or_else(|| self.workdir.clone())),
                    env: Some(req.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    user: req.user.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| SandboxError::Engine(format!("create exec: {e}")))?;
        let options = StartExecOptions { detach: false, output_capacity: Some(64 * 1024), ..Default::default() };
        let started_exec = self.docker.start_exec(&exec.id, Some(options)).await.map_err(|e| SandboxError::Engine(format!("start exec: {e}")))?;
        let StartExecResults::Attached { output, .. } = started_exec else {
            return Err(SandboxError::Engine("exec started detached".into()));
        };
        let chunks = output.map(|item| match item {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::StdErr { message }) | Ok(LogOutput::Console { message }) => Ok(message),
            Ok(LogOutput::StdIn { .. }) => Ok(bytes::Bytes::new()),
            Err(e) => Err(e.to_string()),
        });
        let grace = Duration::from_secs(secs + 10);
        let collected = tokio::time::timeout(grace, collect_output(chunks, req.max_output, req.keep)).await;
        let (text, truncated, total_bytes) = match collected {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(SandboxError::Engine(format!("read exec output: {e}"))),
            Err(_) => {
                warn!(container = %self.id, "exec did not finish {grace:?} after its start; the container is unresponsive");
                return Err(SandboxError::Unresponsive(grace));
            }
        };
        let inspect = self.docker.inspect_exec(&exec.id).await.map_err(|e| SandboxError::Engine(format!("inspect exec: {e}")))?;
        let exit_code = inspect.exit_code.unwrap_or(-1);
        let elapsed = started.elapsed();
        // `timeout -s KILL` exits 137 when it had to kill; a command killed by the OOM killer
        // also exits 137, so only call it a timeout when the deadline was actually reached.
        let timed_out = exit_code == 137 && elapsed + Duration::from_millis(250) >= Duration::from_secs(secs);
        Ok(ExecOutput { exit_code, output: text, truncated, total_bytes, duration: elapsed, timed_out })
    }

    /// Starts `argv` in the container with its stdin and stdout attached and returns both ends:
    /// a byte channel into the sandbox that needs no network (the LLM gateway's, see
    /// [`crate::harness`]). The process lives until its stdin closes or the container goes.
    pub async fn attach(&self, argv: Vec<String>, env: &std::collections::BTreeMap<String, String>) -> Result<Attached, SandboxError> {
        let exec = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions {
                    cmd: Some(argv),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| SandboxError::Engine(format!("create attached exec: {e}")))?;
        let options = StartExecOptions { detach: false, output_capacity: Some(1 << 20), ..Default::default() };
        match self.docker.start_exec(&exec.id, Some(options)).await.map_err(|e| SandboxError::Engine(format!("start attached exec: {e}")))? {
            StartExecResults::Attached { output, input } => Ok(Attached { output, input }),
            StartExecResults::Detached => Err(SandboxError::Engine("attached exec started detached".into())),
        }
    }
}

/// Both ends of a process started by [`DockerContainer::attach`].
pub struct Attached {
    /// What the process writes (stdout and stderr frames).
    pub output: std::pin::Pin<Box<dyn futures::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    /// Its stdin.
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attached")
    }
}
