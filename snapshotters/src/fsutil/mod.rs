//! Filesystem helpers the backends share: a faithful recursive copy ([`copy_dir`]), disk usage
//! ([`disk_usage`]) and the snapshot directory layout ([`Dirs`]).

pub(crate) mod at;
mod copy;
mod dirs;
mod du;
mod file;
mod xattr;

pub use at::syncfs;
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

/// Decodes `/proc/self/mountinfo`'s `\ooo` octal escapes (`\040` for a space).
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
