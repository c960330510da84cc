//! Filesystem helpers the backends share: a faithful recursive copy ([`copy_dir`]), disk usage
//! ([`disk_usage`]) and the snapshot directory layout ([`Dirs`]).

mod copy;
mod dirs;
mod du;
mod file;
mod xattr;

pub use copy::copy_dir;
pub use dirs::Dirs;
pub(crate) use dirs::{chmod, remove_all};
pub use du::disk_usage;

use crate::{Error, Result};

/// Runs blocking filesystem or database work off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::io("blocking task failed", std::io::Error::other(e.to_string())))?
}
