//! Upgrades that lose no request. On SIGUSR2 the daemon starts its successor: the binary at
//! the path this process was started from (a package upgrade has replaced the file by then),
//! with the same arguments, the listening sockets as `LISTEN_FDS` ([`crate::listen`]) and the
//! write end of a pipe (`STRATA_HANDOVER_FD`). The successor reads its configuration, takes the
//! sockets, reports on the pipe, then waits for the root lock. Only after that report does this
//! process stop accepting, finish its in-flight calls, close the database and exit, which
//! releases the lock. Calls that arrive in between wait in the sockets' backlog. A successor
//! that fails before its report (a bad binary or configuration) is killed and this process
//! keeps serving.
//!
//! Under systemd, `systemctl restart` with the socket units in `contrib/systemd/` gives the
//! same guarantee without a hand-over (systemd keeps the sockets).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::listen::Socket;

/// The descriptor of the pipe a successor reports on.
pub const READY_FD_VAR: &str = "STRATA_HANDOVER_FD";

/// How long a successor may take to read its configuration and take the sockets.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a successor: the program and arguments as this process was started.
#[derive(Debug, Clone)]
pub struct Successor {
    exe: PathBuf,
    args: Vec<OsString>,
}

impl Successor {
    /// Recorded at start, before an upgrade can replace the file (`/proc/self/exe` would then
    /// name the old, deleted one).
    pub fn of_this_process() -> anyhow::Result<Successor> {
        Ok(Successor {
            exe: std::env::current_exe().context("finding this program's path")?,
            args: std::env::args_os().skip(1).collect(),
        })
    }

    /// Starts the successor and waits for its report; on failure the successor is gone.
    pub fn start(&self, sockets: &[Socket]) -> anyhow::Result<u32> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("creating the hand-over pipe")?;
        let mut child = self.spawn(sockets, write)?;
        let pid = child.id();
        match wait_ready(read, READY_TIMEOUT) {
            Ok(()) => Ok(pid),
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                Err(e.context(format!("successor {pid} exited or hung ({status:?})")))
            }
        }
    }

    /// Spawns the program with the sockets at fds 3.. and the pipe right after them.
    fn spawn(&self, sockets: &[Socket], write: OwnedFd) -> anyhow::Result<Child> {
        // Copies above the range they will be moved to, so that no dup2 in the child replaces
        // a descriptor a later one still needs; close-on-exec, so only the placed ones remain.
        let n = sockets.len() as RawFd;
        let mut high = Vec::with_capacity(sockets.len() + 1);
        for fd in sockets.iter().map(|s| &s.fd).chain([&write]) {
            let copy = nix::fcntl::fcntl(
                fd.as_raw_fd(),
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3 + n + 1),
            )
            .context("duplicating a socket for the successor")?;
            // SAFETY: `copy` is a descriptor fcntl just created, owned by nothing else.
            high.push(unsafe { OwnedFd::from_raw_fd(copy) });
        }
        let raw: Vec<RawFd> = high.iter().map(AsRawFd::as_raw_fd).collect();
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.args)
            .env("LISTEN_FDS", n.to_string())
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES")
            .env(READY_FD_VAR, (3 + n).to_string());
        // SAFETY: the closure runs in the forked child before exec and only calls dup2, which is
        // async-signal-safe; it allocates nothing (`raw` was built before the fork).
        unsafe {
            cmd.pre_exec(move || {
                for (i, fd) in raw.iter().enumerate() {
                    // dup2 clears close-on-exec on the copy at 3 + i.
                    if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        drop(high);
        drop(write);
        Ok(child)
    }
}

/// Waits for the successor's byte on `read`; EOF means it exited before reporting.
fn wait_ready(read: OwnedFd, timeout: Duration) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    // A blocking read on its own thread; on a timeout the caller kills the successor, which
    // closes the pipe's last write end and ends the read.
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let _ = tx.send(std::fs::File::from(read).read(&mut byte));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(1)) => Ok(()),
        Ok(Ok(_)) => bail!("the successor exited before taking the sockets"),
        Ok(Err(e)) => Err(e).context("reading the successor's report"),
        Err(_) => bail!("no report from the successor within {}s", timeout.as_secs()),
    }
}

/// The successor's side: the pipe to report on, when this process was started by a hand-over.
#[derive(Debug, Default)]
pub struct Report(Option<OwnedFd>);

impl Report {
    /// Takes the pipe named by `STRATA_HANDOVER_FD`.
    ///
    /// Must run before any other thread starts: it edits the environment.
    pub fn from_env() -> anyhow::Result<Report> {
        let Some(v) = std::env::var_os(READY_FD_VAR) else {
            return Ok(Report(None));
        };
        // SAFETY: called from `main` before the tokio runtime or any other thread exists, so
        // nothing reads the environment concurrently.
        unsafe { std::env::remove_var(READY_FD_VAR) };
        let fd: RawFd = v
            .to_str()
            .and_then(|s| s.parse().ok())
            .filter(|fd| *fd > 2)
            .with_context(|| format!("{READY_FD_VAR}={v:?} is not a descriptor"))?;
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)
            .with_context(|| format!("{READY_FD_VAR}={fd} is not open"))?;
        // SAFETY: the predecessor placed the pipe at `fd` for this process alone; nothing else
        // in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
        Ok(Report(Some(fd)))
    }

    /// Whether a predecessor is waiting for this process (which must then wait for the root
    /// lock instead of failing on it).
    pub fn is_handover(&self) -> bool {
        self.0.is_some()
    }

    /// Tells the predecessor to stop serving.
    pub fn send(&mut self) -> anyhow::Result<()> {
        if let Some(fd) = self.0.take() {
            std::fs::File::from(fd)
                .write_all(b"1")
                .context("reporting to the predecessor")?;
        }
        Ok(())
    }
}
