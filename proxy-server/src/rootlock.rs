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
        Self::acquire_within(root, std::time::Duration::ZERO)
    }

    /// Takes the lock, waiting up to `wait` for the process that holds it to exit (a
    /// hand-over's predecessor finishing its calls).
    pub fn acquire_within(root: &Path, wait: std::time::Duration) -> anyhow::Result<RootLock> {
        Self::lock(root, "root", wait)
    }

    /// The same lock on the task state folder (created 0711 if missing): a daemon adopts every
    /// task it finds there at start, so two daemons must never share one, whatever their roots.
    /// Taken after the root's, so a hand-over's successor has it once its predecessor is gone.
    pub fn acquire_state(state: &Path) -> anyhow::Result<RootLock> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(state)
            .with_context(|| format!("creating task state {}", state.display()))?;
        Self::lock(state, "task state", std::time::Duration::ZERO)
    }

    fn lock(root: &Path, what: &str, wait: std::time::Duration) -> anyhow::Result<RootLock> {
        let path = root.join("strata.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let until = std::time::Instant::now() + wait;
        while file.try_lock_exclusive().is_err() {
            if std::time::Instant::now() >= until {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                bail!(
                    "{what} {} is already served by another process (pid {})",
                    root.display(),
                    pid.trim()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(RootLock { _file: file })
    }
}
