//! A process's standard streams. stdout and stderr fifos are handed to the process itself
//! (opened read-write, so the open never waits for a reader and a reader that goes away does
//! not kill the process with SIGPIPE). stdin is copied from its fifo into a pipe, so CloseIO can
//! close the pipe and the process reads end of file. A terminal's master side arrives on a
//! console socket from runc and is copied to and from the fifos.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Stdio as ProcStdio;
use std::sync::{Arc, Mutex};

use super::Failure;
use super::runc::Streams;

fn open_fifo(path: &str, write: bool) -> Result<File, Failure> {
    let mut o = OpenOptions::new();
    o.read(true).custom_flags(libc::O_NONBLOCK);
    if write {
        o.write(true);
    }
    let f = o
        .open(path)
        .map_err(|e| Failure::internal(format!("opening fifo {path}: {e}")))?;
    // Back to blocking: the non-blocking open only avoided waiting for the other side.
    // SAFETY: fcntl on a descriptor this function owns.
    unsafe {
        let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    Ok(f)
}

/// The write end of a process's stdin pipe; dropping it (CloseIO) gives the process EOF.
pub type StdinEnd = Arc<Mutex<Option<File>>>;

/// Copies `from` into the stdin pipe until either side ends.
fn pump_stdin(mut from: File, to: StdinEnd) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 32 << 10];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut guard = to.lock().unwrap_or_else(|p| p.into_inner());
            let Some(w) = guard.as_mut() else { break };
            if w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        to.lock().unwrap_or_else(|p| p.into_inner()).take();
    });
}

fn pipe() -> Result<(File, File), Failure> {
    let (r, w) = nix::unistd::pipe().map_err(|e| Failure::internal(format!("pipe: {e}")))?;
    Ok((File::from(r), File::from(w)))
}

/// The streams of a process without a terminal, and its stdin end (if it has a stdin).
pub fn plain(
    stdin: &str,
    stdout: &str,
    stderr: &str,
) -> Result<(Streams, Option<StdinEnd>), Failure> {
    let mut s = Streams::null();
    let mut end = None;
    if !stdin.is_empty() {
        let fifo = open_fifo(stdin, true)?;
        let (r, w) = pipe()?;
        let shared: StdinEnd = Arc::new(Mutex::new(Some(w)));
        pump_stdin(fifo, shared.clone());
        s.stdin = ProcStdio::from(r);
        end = Some(shared);
    }
    if !stdout.is_empty() {
        s.stdout = ProcStdio::from(open_fifo(stdout, true)?);
    }
    if !stderr.is_empty() {
        s.stderr = ProcStdio::from(open_fifo(stderr, true)?);
    }
    Ok((s, end))
}

/// A console socket for runc's `--console-socket` at `path`.
pub fn console_socket(path: &Path) -> Result<UnixListener, Failure> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).map_err(|e| Failure::internal(format!("console socket: {e}")))
}

/// Receives the terminal master runc sends on `listener`.
pub fn receive_master(listener: &UnixListener) -> Result<File, Failure> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let (conn, _) = listener
        .accept()
        .map_err(|e| Failure::internal(format!("console: {e}")))?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(|e| Failure::internal(format!("console: {e}")))?;
    for c in msg
        .cmsgs()
        .map_err(|e| Failure::internal(format!("console: {e}")))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel installed this descriptor for us with SCM_RIGHTS.
            return Ok(File::from(unsafe { OwnedFd::from_raw_fd(*fd) }));
        }
    }
    Err(Failure::internal("console: runc sent no terminal"))
}

/// Copies between a terminal master and the fifos; returns the stdin end (for CloseIO: closing
/// a terminal's input sends it EOF... by closing our copy only) and keeps the master for resize.
pub fn attach_terminal(
    master: &File,
    stdin: &str,
    stdout: &str,
) -> Result<Option<StdinEnd>, Failure> {
    let out = if stdout.is_empty() {
        None
    } else {
        Some(open_fifo(stdout, true)?)
    };
    if let Some(mut out) = out {
        let mut from = master
            .try_clone()
            .map_err(|e| Failure::internal(format!("console: {e}")))?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 32 << 10];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    if stdin.is_empty() {
        return Ok(None);
    }
    let fifo = open_fifo(stdin, true)?;
    let to = master
        .try_clone()
        .map_err(|e| Failure::internal(format!("console: {e}")))?;
    let shared: StdinEnd = Arc::new(Mutex::new(Some(to)));
    pump_stdin(fifo, shared.clone());
    Ok(Some(shared))
}

/// Sets a terminal's window size.
pub fn resize(master: &File, width: u16, height: u16) -> Result<(), Failure> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, valid for the call.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc != 0 {
        return Err(Failure::internal(format!(
            "resize: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}
