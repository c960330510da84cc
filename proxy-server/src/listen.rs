//! Listening sockets that outlive the process: passed in by a service manager (systemd socket
//! activation, `sd_listen_fds(3)`: `LISTEN_FDS`, `LISTEN_PID`) or by the process this one
//! replaces ([`crate::handover`]). While no process serves such a socket, a client's connect
//! still succeeds and its calls wait in the socket's backlog until the next process accepts
//! them: a restart or an upgrade fails no request (a socket the daemon binds itself vanishes
//! with it, and containerd's proxy clients then fail calls with Unavailable until they redial).
//!
//! Each inherited socket is matched to a configured address by the path it is bound to; an
//! address no inherited socket matches is bound as before.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The environment variables of the protocol, removed once read so that no child process
/// (a shim, runc) takes the sockets for its own.
const VARS: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// Inherited listening unix sockets not yet claimed by an address.
#[derive(Debug, Default)]
pub struct Inherited {
    sockets: Vec<(PathBuf, std::os::unix::net::UnixListener)>,
}

impl Inherited {
    /// Takes the sockets passed to this process, if any.
    ///
    /// Must run before any other thread starts: it edits the environment.
    pub fn from_env() -> anyhow::Result<Inherited> {
        let mut fds = listenfd::ListenFd::from_env();
        let mut sockets = Vec::new();
        for i in 0..fds.len() {
            let listener = fds
                .take_unix_listener(i)
                .with_context(|| format!("passed socket {i} (fd {})", 3 + i))?
                .with_context(|| format!("passed socket {i} (fd {}): already taken", 3 + i))?;
            let path = listener
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf))
                .with_context(|| format!("passed socket {i} (fd {}) has no path", 3 + i))?;
            // Not inherited by the processes this one starts.
            nix::fcntl::fcntl(
                listener.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .context("setting close-on-exec on a passed socket")?;
            sockets.push((path, listener));
        }
        for v in VARS {
            // SAFETY: called from `main` before the tokio runtime or any other thread exists,
            // so nothing reads the environment concurrently.
            unsafe { std::env::remove_var(v) };
        }
        Ok(Inherited { sockets })
    }

    /// The inherited socket bound at `address`, if there is one.
    pub fn take(&mut self, address: &Path) -> anyhow::Result<Option<tokio::net::UnixListener>> {
        let want = absolute(address)?;
        let Some(i) = self.sockets.iter().position(|(p, _)| *p == want) else {
            return Ok(None);
        };
        let (_, l) = self.sockets.swap_remove(i);
        l.set_nonblocking(true)?;
        Ok(Some(tokio::net::UnixListener::from_std(l)?))
    }

    /// Fails when a passed socket matches no configured address (a unit file naming a path
    /// the config does not): better than serving nothing on it.
    pub fn check_all_taken(&self) -> anyhow::Result<()> {
        if let Some((p, _)) = self.sockets.first() {
            bail!(
                "a passed socket is bound to {}, which is not a configured address",
                p.display()
            );
        }
        Ok(())
    }
}

/// `p` made absolute against the current directory, without resolving links (the socket's
/// bound path is the name it was bound under).
fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

/// A listening socket the daemon serves, with a duplicate of its descriptor kept for a
/// hand-over.
#[derive(Debug)]
pub struct Socket {
    pub address: PathBuf,
    /// Passed in (systemd, a hand-over) rather than bound here: then the socket is not ours to
    /// remove at exit.
    pub inherited: bool,
    pub fd: OwnedFd,
}

impl Socket {
    pub fn new(
        address: &Path,
        listener: &tokio::net::UnixListener,
        inherited: bool,
    ) -> anyhow::Result<Self> {
        let fd = listener
            .as_fd()
            .try_clone_to_owned()
            .with_context(|| format!("duplicating the socket of {}", address.display()))?;
        Ok(Socket {
            address: address.to_path_buf(),
            inherited,
            fd,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inherited(paths: &[&Path]) -> Inherited {
        let sockets = paths
            .iter()
            .map(|p| {
                let l = std::os::unix::net::UnixListener::bind(p).unwrap();
                (absolute(p).unwrap(), l)
            })
            .collect();
        Inherited { sockets }
    }

    #[tokio::test]
    async fn a_passed_socket_serves_the_address_it_is_bound_to() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a.sock"), tmp.path().join("b.sock"));
        let mut passed = inherited(&[&a, &b]);
        assert!(passed.take(&tmp.path().join("c.sock")).unwrap().is_none());
        let lb = passed.take(&b).unwrap().expect("b was passed");
        let client = tokio::net::UnixStream::connect(&b);
        let (accepted, connected) = tokio::join!(lb.accept(), client);
        accepted.unwrap();
        connected.unwrap();
        assert!(passed.take(&b).unwrap().is_none(), "taken once only");
        let err = passed.check_all_taken().unwrap_err().to_string();
        assert!(err.contains("a.sock"), "{err}");
        assert!(passed.take(&a).unwrap().is_some());
        passed.check_all_taken().unwrap();
    }
}
