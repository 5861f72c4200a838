//! OpenSWE rows' environments: the row's `Dockerfile` built with the repository as its context.
//!
//! OpenSWE builds `docker build -t <image_name> .` in the repository's checkout at
//! `base_commit`. Here the context is the task's repository archive (its content: the checkout's
//! tarball, `.git` included) with the row's Dockerfile added beside it as
//! [`DOCKERFILE_NAME`], kept out of `COPY .` by a line appended to the context's `.dockerignore`
//! (the archive's own `.dockerignore`, if any, comes back when the repository is placed). The
//! image is tagged by the context's hash ([`crate::sandbox::build`]), so a host builds it once.
//! The repository lives where the row's `workdir` says (default `/testbed`, where OpenSWE's
//! Dockerfiles `COPY` it); the episode then places the archive there at `base_commit` as for any
//! archive source, so the agent starts from a clean checkout whatever the Dockerfile left.

use std::io::Read;
use std::time::Duration;

use agentmill_proto::{Source, Task};

use crate::sandbox::SandboxError;
use crate::sandbox::build::Builder;

/// The Dockerfile's name in the build context.
pub const DOCKERFILE_NAME: &str = ".agentmill-openswe.Dockerfile";
/// A build's deadline when the worker sets none lower (`build.max_timeout` caps it).
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(3600);

/// The row's Dockerfile (`Dockerfile`, or `dockerfile`), when it has one.
pub fn dockerfile(task: &Task) -> Option<&str> {
    ["Dockerfile", "dockerfile"].into_iter().find_map(|k| task.extra.get(k).and_then(|v| v.as_str())).filter(|s| !s.is_empty())
}

/// The build context: the archive's entries, the Dockerfile added, `.dockerignore` extended.
pub fn build_context(archive: &[u8], dockerfile: &str) -> Result<Vec<u8>, String> {
    let gz = archive.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + '_> = if gz { Box::new(flate2::read::GzDecoder::new(archive)) } else { Box::new(archive) };
    let mut input = tar::Archive::new(reader);
    let mut out = tar::Builder::new(Vec::new());
    let mut ignore = String::new();
    for entry in input.entries().map_err(|e| format!("reading the archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("reading the archive: {e}"))?;
        let path = entry.path().map_err(|e| format!("reading the archive: {e}"))?.into_owned();
        let name = path.to_string_lossy().trim_start_matches("./").to_string();
        if name == DOCKERFILE_NAME {
            continue;
        }
        if name == ".dockerignore" {
            entry.read_to_string(&mut ignore).map_err(|e| format!("reading the archive's .dockerignore: {e}"))?;
            continue;
        }
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| format!("reading the archive: {e}"))?;
        out.append_data(&mut header, &path, data.as_slice()).map_err(|e| format!("packing the build context: {e}"))?;
    }
    if !ignore.is_empty() && !ignore.ends_with('\n') {
        ignore.push('\n');
    }
    ignore.push_str(&format!("{DOCKERFILE_NAME}\n.dockerignore\n"));
    for (name, body) in [(DOCKERFILE_NAME, dockerfile.as_bytes()), (".dockerignore", ignore.as_bytes())] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        out.append_data(&mut header, name, body).map_err(|e| format!("packing the build context: {e}"))?;
    }
    out.into_inner().map_err(|e| format!("packing the build context: {e}"))
}

/// The build context of an OpenSWE row that carries a Dockerfile (its archive read and packed
/// with the Dockerfile by [`build_context`]); the Dockerfile's name in it is [`DOCKERFILE_NAME`].
pub async fn row_context(inputs: &crate::inputs::Inputs, task: &Task, dockerfile: &str) -> Result<Vec<u8>, SandboxError> {
    let Source::Archive { path, .. } = &task.source else {
        return Err(SandboxError::Io(format!(
            "task {}: an OpenSWE row's Dockerfile is built with its repository as the context, which comes as the task's archive (agentmill submit packs it); give the row an archive source or an image_name",
            task.instance_id
        )));
    };
    let archive = inputs.read("archive", path).await.map_err(|e| SandboxError::Io(e.to_string()))?;
    inputs.check_archive("archive", &archive).map_err(|e| SandboxError::Io(e.to_string()))?;
    let dockerfile = dockerfile.to_string();
    tokio::task::spawn_blocking(move || build_context(&archive, &dockerfile))
        .await
        .map_err(|e| SandboxError::Io(format!("packing the build context: {e}")))?
        .map_err(|e| SandboxError::Io(format!("task {}: {e}", task.instance_id)))
}

/// Builds (or finds) the image of an OpenSWE row that carries a Dockerfile; returns its tag.
pub async fn ensure_image(builder: Option<&Builder>, inputs: &crate::inputs::Inputs, task: &Task, dockerfile: &str) -> Result<String, SandboxError> {
    let Some(builder) = builder else {
        return Err(SandboxError::Engine("this worker builds no images (no Docker engine): an OpenSWE row's Dockerfile needs one".into()));
    };
    let context = row_context(inputs, task, dockerfile).await?;
    Ok(builder.ensure(&task.instance_id, context, DOCKERFILE_NAME, BUILD_TIMEOUT).await?.tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn files_of(tar: &[u8]) -> Vec<(String, String)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .expect("entries")
            .map(|e| {
                let mut e = e.expect("entry");
                let mut s = String::new();
                e.read_to_string(&mut s).expect("read");
                (e.path().expect("path").to_string_lossy().into_owned(), s)
            })
            .collect()
    }

    #[test]
    fn the_context_is_the_repository_with_the_dockerfile_kept_out_of_copy() {
        let repo = tar_of(&[("./calc.py", "x = 1\n"), ("./.dockerignore", "build")]);
        let files = files_of(&build_context(&repo, "FROM scratch\nCOPY . /testbed\n").expect("context"));
        assert!(files.contains(&("calc.py".into(), "x = 1\n".into())), "{files:?}");
        assert!(files.contains(&(DOCKERFILE_NAME.into(), "FROM scratch\nCOPY . /testbed\n".into())), "{files:?}");
        assert!(files.contains(&(".dockerignore".into(), format!("build\n{DOCKERFILE_NAME}\n.dockerignore\n"))), "{files:?}");
        assert_eq!(files.iter().filter(|(n, _)| n.ends_with(".dockerignore")).count(), 1);
        // The same repository and Dockerfile make the same context (and so the same tag).
        let again = build_context(&repo, "FROM scratch\nCOPY . /testbed\n").expect("context");
        assert_eq!(crate::sandbox::build::context_tag(&again), crate::sandbox::build::context_tag(&build_context(&repo, "FROM scratch\nCOPY . /testbed\n").expect("context")));
    }
}
