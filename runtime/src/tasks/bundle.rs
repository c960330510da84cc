//! A task's directory under the state root: the OCI bundle runc runs (`config.json` and the
//! container's rootfs mounted on `rootfs/`), the shim's files (pid and exit files, logs) and
//! Strata's record of the task (`task.json`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use strata_snapshotters::Mount;

use crate::{AnyValue, Error, Result};

/// Where one task's files go.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// `<state>/tasks/<namespace>/<id>`: the bundle.
    pub dir: PathBuf,
    /// `<state>/sockets/<hash>.sock`: short, as unix socket paths must be.
    pub socket: PathBuf,
    /// `<state>/runc/<namespace>`: runc's state root.
    pub runc_root: PathBuf,
}

impl Paths {
    pub fn new(state: &Path, ns: &str, id: &str) -> Paths {
        let hash = hex::encode(&Sha256::digest(format!("{ns}/{id}").as_bytes())[..10]);
        Paths {
            dir: state.join("tasks").join(ns).join(id),
            socket: state.join("sockets").join(format!("{hash}.sock")),
            runc_root: state.join("runc").join(ns),
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn record(&self) -> PathBuf {
        self.dir.join("task.json")
    }
}

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{what} {}: {e}", path.display()))
}

/// The container's OCI runtime spec, checked: JSON a runtime-spec `Spec` parses from.
pub(crate) fn spec_json(id: &str, spec: Option<&AnyValue>) -> Result<Vec<u8>> {
    let Some(spec) = spec else {
        return Err(Error::FailedPrecondition(format!(
            "container {id:?} has no spec"
        )));
    };
    serde_json::from_slice::<oci_spec::runtime::Spec>(&spec.value).map_err(|e| {
        Error::InvalidArgument(format!("container {id:?}: invalid runtime spec: {e}"))
    })?;
    Ok(spec.value.clone())
}

/// An exec process's spec, checked: JSON a runtime-spec `Process` parses from.
pub(crate) fn process_json(exec: &str, spec: Option<&AnyValue>) -> Result<String> {
    let Some(spec) = spec else {
        return Err(Error::InvalidArgument(format!(
            "exec {exec:?}: a process spec is required"
        )));
    };
    serde_json::from_slice::<oci_spec::runtime::Process>(&spec.value)
        .map_err(|e| Error::InvalidArgument(format!("exec {exec:?}: invalid process spec: {e}")))?;
    String::from_utf8(spec.value.clone())
        .map_err(|_| Error::InvalidArgument(format!("exec {exec:?}: process spec is not utf-8")))
}

/// Creates the bundle: `config.json`, and the rootfs mounted from `rootfs` (none: the spec's
/// root path is used as it is). A leftover directory of an earlier task is cleared first.
pub(crate) fn create(p: &Paths, spec: &[u8], rootfs: &[Mount]) -> Result<()> {
    if p.dir.exists() {
        remove(p)?;
    }
    for d in [&p.dir, &p.runc_root, p.socket.parent().unwrap_or(&p.dir)] {
        std::fs::create_dir_all(d).map_err(|e| io_error("creating", d, e))?;
    }
    let config = p.dir.join("config.json");
    std::fs::write(&config, spec).map_err(|e| io_error("writing", &config, e))?;
    if !rootfs.is_empty() {
        let root = p.rootfs();
        std::fs::create_dir(&root).map_err(|e| io_error("creating", &root, e))?;
        if let Err(e) = strata_snapshotters::mount::mount_all(rootfs, &root) {
            let _ = strata_snapshotters::mount::unmount_all(&root);
            return Err(Error::Internal(format!("mounting the rootfs: {e}")));
        }
    }
    Ok(())
}

/// Unmounts the rootfs and removes the bundle and the socket.
pub(crate) fn remove(p: &Paths) -> Result<()> {
    let root = p.rootfs();
    if root.exists() {
        strata_snapshotters::mount::unmount_all(&root)
            .map_err(|e| Error::Internal(format!("unmounting the rootfs: {e}")))?;
    }
    let _ = std::fs::remove_file(&p.socket);
    // The exiting shim may still write an exit file (a created task's init, killed by its
    // final `runc delete`): try again when the directory refills under us.
    let mut attempt = 0;
    loop {
        match std::fs::remove_dir_all(&p.dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempt < 5 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(io_error("removing", &p.dir, e)),
        }
    }
}
