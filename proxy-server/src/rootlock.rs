//! One live server per root: an exclusive `flock` on `<root>/strata.lock` holding our pid.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, bail};
use fs2::FileExt;

/// Held for the life of the server; the lock goes with the process (also on kill -9).
#[derive(Debug)]
pub struct RootLock {
    _file: File,
}

impl RootLock {
    /// Takes the lock or says which process holds it.
    pub fn acquire(root: &Path) -> anyhow::Result<RootLock> {
        let path = root.join("strata.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if file.try_lock_exclusive().is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            bail!(
                "root {} is already served by another process (pid {})",
                root.display(),
                pid.trim()
            );
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(RootLock { _file: file })
    }
}
