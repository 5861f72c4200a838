//! One command in a process sandbox: `bash -c` under bubblewrap or as a plain child of the
//! worker, its rlimits set by a shell preamble, in a process group of its own that is killed at
//! the deadline and when the command ends, stdout and stderr interleaved on one pipe and capped
//! as every backend caps them.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Isolation, ProcessSandbox};
use crate::sandbox::{ExecOutput, ExecRequest, SandboxError, collect_output};

/// How long output is still read after the command and its process group are gone, before a
/// pipe held open by an escaped process is abandoned.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

impl ProcessSandbox {
    /// The shell preamble that sets the rlimits, then execs `bash -c "$1"`.
    fn preamble(&self, timeout: Duration) -> String {
        let l = &self.layout.limits;
        let cpus = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
        let cpu = l.cpu_seconds.unwrap_or_else(|| (timeout.as_secs() + 1) * cpus).max(1);
        let mut limits = vec![format!("lim -t {cpu}")];
        if let Some(bytes) = l.address_space_bytes {
            limits.push(format!("lim -v {}", (bytes / 1024).max(1)));
        }
        if let Some(n) = l.processes {
            limits.push(format!("lim -u {}", n.max(1)));
        }
        if let Some(bytes) = l.file_size_bytes {
            limits.push(format!("lim -f {}", (bytes / 1024).max(1)));
        }
        // A hard limit already below ours is kept: only lowering is always allowed.
        format!(
            "lim() {{ h=$(ulimit -H \"$1\") || return 1; if [ \"$h\" = unlimited ] || [ \"$h\" -gt \"$2\" ]; then ulimit -S -H \"$1\" \"$2\"; else ulimit -S \"$1\" \"$h\"; fi; }}\n\
             ulimit -S -H -c 0 2>/dev/null\n\
             {} || {{ echo 'agentmill: could not set the sandbox resource limits' >&2; exit 125; }}\n\
             unset -f lim\n\
             exec bash -c \"$1\"\n",
            limits.join(" && ")
        )
    }

    fn command(&self, req: &ExecRequest) -> tokio::process::Command {
        let layout = &self.layout;
        let cwd = layout.cwd(req);
        let shell: [OsString; 5] =
            ["bash".into(), "-c".into(), self.preamble(req.timeout).into(), "agentmill-sandbox".into(), req.command.clone().into()];
        let mut cmd = match &layout.bwrap {
            Some(args) => {
                let mut cmd = tokio::process::Command::new("bwrap");
                cmd.args(args).arg("--chdir").arg(&cwd).arg("--").args(&shell);
                cmd
            }
            None => {
                let mut cmd = tokio::process::Command::new(&shell[0]);
                cmd.args(&shell[1..]).current_dir(&cwd);
                cmd
            }
        };
        cmd.env_clear().envs(&layout.env).envs(&req.env);
        cmd
    }

    /// Runs `bash -c <command>` (see [`Sandbox::exec`]). Should bubblewrap itself fail to set
    /// the sandbox up (a missing `--chdir` folder, say), its message is the output and the exit
    /// code is 1, as for a command that failed.
    pub async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        self.ensure_alive()?;
        let started = Instant::now();
        let episode = &self.layout.episode;
        // stdout and stderr share one pipe, so the output interleaves as it was written.
        let (reader, writer) = std::io::pipe().map_err(|e| SandboxError::Io(format!("create a pipe for episode {episode}: {e}")))?;
        let writer_err = writer.try_clone().map_err(|e| SandboxError::Io(format!("create a pipe for episode {episode}: {e}")))?;
        let mut command = self.command(req);
        command.stdin(Stdio::null()).stdout(writer).stderr(writer_err).process_group(0).kill_on_drop(true);
        let spawned = command.spawn();
        // The command holds our copies of the pipe's write end: drop it, or the pipe never ends.
        drop(command);
        let program = if self.isolation == Isolation::Bubblewrap { "bwrap" } else { "bash" };
        let mut child = spawned.map_err(|e| SandboxError::Io(format!("start {program} for episode {episode}: {e}")))?;
        let group = ProcessGroup(child.id());
        let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader))
            .map_err(|e| SandboxError::Io(format!("read the output of episode {episode}'s command: {e}")))?;

        let finished = CancellationToken::new();
        let stop_reading = {
            let finished = finished.clone();
            async move {
                finished.cancelled().await;
                tokio::time::sleep(DRAIN_GRACE).await;
            }
        };
        let chunks = std::pin::pin!(read_chunks(receiver).take_until(stop_reading));
        let collect = collect_output(chunks, req.max_output, req.keep);
        let wait = async {
            let (status, timed_out) = tokio::select! {
                status = child.wait() => (status, false),
                _ = tokio::time::sleep(req.timeout) => {
                    group.kill();
                    (child.wait().await, true)
                }
            };
            // Whatever the command left running in its group goes too, so the pipe closes.
            group.kill();
            finished.cancel();
            (status, timed_out)
        };
        let (collected, (status, timed_out)) = tokio::join!(collect, wait);
        let status = status.map_err(|e| SandboxError::Io(format!("wait for episode {episode}'s command: {e}")))?;
        let (output, truncated, total_bytes) = collected.map_err(|e| SandboxError::Io(format!("read the output of episode {episode}'s command: {e}")))?;
        let exit_code = status.code().map(i64::from).or_else(|| status.signal().map(|s| 128 + i64::from(s))).unwrap_or(-1);
        Ok(ExecOutput { exit_code, output, truncated, total_bytes, duration: started.elapsed(), timed_out })
    }
}

/// The process group of a running command; [`ProcessGroup::kill`] sends it `SIGKILL`, and so
/// does dropping it (a cancelled exec leaves nothing running).
#[derive(Debug)]
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn kill(&self) {
        // The group's id is the leader's pid (`process_group(0)`); the kernel keeps the id from
        // being reused while any member lives. Never 0 or 1: those would mean "everyone".
        let Some(pid) = self.0.and_then(|id| i32::try_from(id).ok()).filter(|&id| id > 1).and_then(rustix::process::Pid::from_raw) else {
            return;
        };
        match rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => warn!("could not kill process group {}: {e}", pid.as_raw_nonzero()),
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The pipe's bytes as a stream of chunks.
fn read_chunks(receiver: tokio::net::unix::pipe::Receiver) -> impl Stream<Item = std::io::Result<Bytes>> {
    futures::stream::unfold(Some(receiver), |state| async move {
        let mut receiver = state?;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        match receiver.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), Some(receiver))),
            Err(e) => Some((Err(e), None)),
        }
    })
}
