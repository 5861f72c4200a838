//! The handle of a running sandbox container: its files through Docker's archive API (read
//! with symlinks followed in the container, written as agentmill's own files or in place as an
//! editor would), its liveness and its removal with what goes with it (its egress proxy and
//! network). Every operation on a container whose disk limit the watchdog enforces is guarded
//! ([`super::disk::DiskWatch::guard`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{DownloadFromContainerOptionsBuilder, UploadToContainerOptionsBuilder};
use futures::StreamExt;

use super::Egress;
use super::disk::DiskWatch;
use super::reap::{remove_container, remove_network};
use crate::sandbox::{ExecOutput, ExecRequest, MAX_READ_FILE_BYTES, Sandbox, SandboxError};
use crate::shell::quote;

/// A running sandbox container. Call [`DockerContainer::remove`] on every path; the worker's
/// reaper removes what a crash left behind.
#[derive(Debug, Clone)]
pub struct DockerContainer {
    pub(super) docker: Docker,
    pub(super) id: String,
    pub(super) workdir: String,
    pub(super) episode: String,
    /// The disk watchdog's state, when it enforces this container's disk limit.
    pub(super) disk: Option<Arc<DiskWatch>>,
    /// Containers that live and go with this one (its egress proxy).
    pub(super) companions: Vec<String>,
    /// Networks removed after this container and its companions (its egress network).
    pub(super) networks: Vec<String>,
}

impl DockerContainer {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether a disk watchdog enforces this container's disk limit (a limit on an engine whose
    /// storage driver cannot).
    pub fn has_disk_watchdog(&self) -> bool {
        self.disk.is_some()
    }

    /// Whether this container's disk watchdog task is still running (false without one). It
    /// ends once the container is removed — through [`DockerContainer::remove`] at once, through
    /// anything else (the reaper, `docker rm`) at its next poll — stops, or outgrows its limit.
    pub fn disk_watchdog_running(&self) -> bool {
        self.disk.as_ref().is_some_and(|w| w.running())
    }

    /// Runs `op`, guarded by the disk watchdog where there is one ([`DiskWatch::guard`]).
    pub(super) async fn guarded<T>(&self, op: impl Future<Output = Result<T, SandboxError>>) -> Result<T, SandboxError> {
        match &self.disk {
            Some(watch) => watch.guard(op).await,
            None => op.await,
        }
    }

    /// Extracts a tar archive (optionally gzip-compressed) at `dest` inside the container.
    pub async fn upload_tar(&self, dest: &str, tar: Vec<u8>) -> Result<(), SandboxError> {
        self.guarded(self.upload_tar_unguarded(dest, tar)).await
    }

    async fn upload_tar_unguarded(&self, dest: &str, tar: Vec<u8>) -> Result<(), SandboxError> {
        let tar = if tar.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&tar[..]), &mut out)
                .map_err(|e| SandboxError::Io(format!("gunzip archive: {e}")))?;
            out
        } else {
            tar
        };
        let options = UploadToContainerOptionsBuilder::new().path(dest).build();
        self.docker
            .upload_to_container(&self.id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| SandboxError::Engine(format!("upload to {dest}: {e}")))
    }

    /// The folder `path` as Docker's archive API gives it (a tar holding the folder itself), at
    /// most `cap` bytes (more is an error naming `inputs.max_bytes`).
    pub async fn download_tar(&self, path: &str, cap: u64) -> Result<Vec<u8>, SandboxError> {
        let options = DownloadFromContainerOptionsBuilder::new().path(path).build();
        let mut stream = self.docker.download_from_container(&self.id, Some(options));
        let mut tar: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let bytes = chunk.map_err(|e| SandboxError::Engine(format!("read {path}: {e}")))?;
            tar.extend_from_slice(&bytes);
            if tar.len() as u64 > cap {
                return Err(SandboxError::Io(format!("{path} is larger than inputs.max_bytes ({})", crate::sandbox::human_bytes(cap))));
            }
        }
        Ok(tar)
    }

    /// Writes one file inside the container (mode 0644), creating parent folders.
    ///
    /// Docker's archive upload writes to the container's own filesystem: a path under a tmpfs
    /// or volume mount would land beneath the mount, invisible to the container. agentmill's
    /// own files therefore go to [`crate::sandbox::AGENTMILL_DIR`], never to `/tmp`.
    pub async fn write_file(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        self.guarded(self.write_file_unguarded(path, contents)).await
    }

    async fn write_file_unguarded(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        let (dir, name) = path.rsplit_once('/').ok_or_else(|| SandboxError::Io(format!("{path} is not an absolute path")))?;
        let dir = if dir.is_empty() { "/" } else { dir };
        let mkdir = ExecRequest::new(format!("mkdir -p '{}'", dir.replace('\'', "'\\''")));
        self.exec(&mkdir).await?;
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, name, contents).map_err(|e| SandboxError::Io(e.to_string()))?;
        let tar = builder.into_inner().map_err(|e| SandboxError::Io(e.to_string()))?;
        self.upload_tar_unguarded(dir, tar).await
    }

    /// Whether the container is still running (false once it died, e.g. OOM-killed as a whole).
    pub async fn is_running(&self) -> bool {
        if self.disk.as_ref().is_some_and(|w| w.tripped()) {
            return false;
        }
        match self.docker.inspect_container(&self.id, None).await {
            Ok(info) => info.state.and_then(|s| s.running).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Force-removes the container and its anonymous volumes. Never fails: an error is logged and
    /// the reaper gets another chance.
    pub async fn remove(&self) {
        if let Some(watch) = &self.disk {
            watch.stop();
        }
        remove_container(&self.docker, &self.id).await;
        for id in &self.companions {
            remove_container(&self.docker, id).await;
        }
        for name in &self.networks {
            remove_network(&self.docker, name).await;
        }
    }

    /// Makes this container's removal remove `egress` (its proxy and its network) too.
    pub fn attach_egress(&mut self, egress: &Egress) {
        self.companions.push(egress.proxy.clone());
        self.networks.push(egress.network.clone());
    }

    /// Reads one regular file out of the container through Docker's archive API (a tar stream
    /// holding the one file), following symlinks inside the container.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        self.guarded(self.read_file_unguarded(path)).await
    }

    async fn read_file_unguarded(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        let mut path = path.to_string();
        // A symlink comes back as a link entry; resolve it in the container (a chain resolves
        // at once with `readlink -f`, the loop only guards against a link that changes under us).
        for _ in 0..4 {
            match self.read_archive_entry(&path).await? {
                ArchiveEntry::File(bytes) => return Ok(bytes),
                ArchiveEntry::Symlink => {
                    let out = self.exec(&ExecRequest::new(format!("readlink -f -- {}", quote(&path))).timeout(Duration::from_secs(30))).await?;
                    let target = out.output.trim_end_matches('\n');
                    if out.exit_code != 0 || target.is_empty() || target.contains('\n') {
                        return Err(SandboxError::NotFound(path));
                    }
                    path = target.to_string();
                }
            }
        }
        Err(SandboxError::NotAFile(path))
    }

    async fn read_archive_entry(&self, path: &str) -> Result<ArchiveEntry, SandboxError> {
        let options = DownloadFromContainerOptionsBuilder::new().path(path).build();
        let mut stream = self.docker.download_from_container(&self.id, Some(options));
        let mut tar_bytes: Vec<u8> = Vec::new();
        // The tar stream is the file plus headers and padding; stop pulling well past the limit.
        let cap = MAX_READ_FILE_BYTES + (1 << 20);
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    tar_bytes.extend_from_slice(&bytes);
                    if tar_bytes.len() as u64 > cap {
                        return Err(SandboxError::TooLarge { path: path.to_string(), limit: MAX_READ_FILE_BYTES });
                    }
                }
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, message }) => {
                    // Docker answers 404 both for a missing path and for a missing container.
                    if message.contains("No such container") {
                        return Err(SandboxError::Engine(format!("read {path}: {message}")));
                    }
                    return Err(SandboxError::NotFound(path.to_string()));
                }
                Err(e) => return Err(SandboxError::Engine(format!("read {path}: {e}"))),
            }
        }
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let io = |e: std::io::Error| SandboxError::Io(format!("read {path}: the archive Docker returned is unreadable: {e}"));
        let mut entries = archive.entries().map_err(io)?;
        let Some(entry) = entries.next() else {
            return Err(SandboxError::Io(format!("read {path}: Docker returned an empty archive")));
        };
        let mut entry = entry.map_err(io)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            return Ok(ArchiveEntry::Symlink);
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(SandboxError::NotAFile(path.to_string()));
        }
        let size = entry.header().size().map_err(io)?;
        if size > MAX_READ_FILE_BYTES {
            return Err(SandboxError::TooLarge { path: path.to_string(), limit: MAX_READ_FILE_BYTES });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(io)?;
        Ok(ArchiveEntry::File(bytes))
    }

    /// Writes a file for [`Sandbox::write_file`]: unlike [`DockerContainer::write_file`] (always
    /// mode 0644, meant for agentmill's own files), an existing file keeps its permission bits
    /// and a symlink is written through to its target, as an editor would.
    async fn write_file_in_place(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        // One exec: create the parent, resolve a symlink, and read the mode to keep.
        let probe = format!(
            "p={}\n\
             mkdir -p -- \"$(dirname -- \"$p\")\" || exit 3\n\
             if [ -d \"$p\" ]; then echo \"is a directory\"; exit 4; fi\n\
             if [ -L \"$p\" ]; then readlink -f -- \"$p\"; else printf '%s\\n' \"$p\"; fi\n\
             stat -L -c %a -- \"$p\" 2>/dev/null || echo 644\n",
            quote(path)
        );
        let out = self.exec(&ExecRequest::new(probe).timeout(Duration::from_secs(30))).await?;
        if out.exit_code != 0 {
            return Err(SandboxError::WriteRefused { path: path.to_string(), reason: out.output.trim().to_string() });
        }
        let mut lines = out.output.lines();
        let target = lines.next().filter(|t| t.starts_with('/')).unwrap_or(path).to_string();
        let mode = lines.next().and_then(|m| u32::from_str_radix(m.trim(), 8).ok()).unwrap_or(0o644);
        let (dir, name) = target.rsplit_once('/').ok_or_else(|| SandboxError::Io(format!("{target} is not an absolute path")))?;
        let dir = if dir.is_empty() { "/" } else { dir };
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(mode);
        header.set_mtime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
        header.set_cksum();
        builder.append_data(&mut header, name, contents).map_err(|e| SandboxError::Io(format!("pack {target}: {e}")))?;
        let tar = builder.into_inner().map_err(|e| SandboxError::Io(format!("pack {target}: {e}")))?;
        let options = UploadToContainerOptionsBuilder::new().path(dir).build();
        match self.docker.upload_to_container(&self.id, Some(options), bollard::body_full(tar.into())).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code, message }) if (400..500).contains(&status_code) && !message.contains("No such container") => {
                Err(SandboxError::WriteRefused { path: path.to_string(), reason: message })
            }
            Err(e) => Err(SandboxError::Engine(format!("write {target}: {e}"))),
        }
    }
}

/// What the archive API returned for a path.
enum ArchiveEntry {
    File(Vec<u8>),
    Symlink,
}

#[async_trait::async_trait]
impl Sandbox for DockerContainer {
    fn episode(&self) -> &str {
        &self.episode
    }

    fn workdir(&self) -> &str {
        &self.workdir
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        DockerContainer::exec(self, req).await
    }

    async fn read_file(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        DockerContainer::read_file(self, path).await
    }

    async fn write_file(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        self.guarded(self.write_file_in_place(path, contents)).await
    }

    async fn is_alive(&self) -> bool {
        self.is_running().await
    }
}
